//! `mreg show RUN`: a run's record with its events folded in, and its series.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;

use super::{Ctx, output};
use crate::error::Failure;
use crate::manifest::RunId;
use crate::manifest::run::{Chunk, Point};
use crate::manifest::value::format_float;
use crate::store::{Registry, runs};

/// Prints a run; with `series` (empty for all), the points of its series too.
pub fn show(ctx: &Ctx, reg: &Registry, id: &RunId, series: Option<&str>) -> Result<()> {
    let record = runs::load(reg, id)?;
    let wanted: Vec<&String> = match series {
        None => Vec::new(),
        Some("") => record.series.keys().collect(),
        Some(key) => {
            let Some((key, _)) = record.series.get_key_value(key) else {
                let known: Vec<&str> = record.series.keys().map(String::as_str).collect();
                return Err(
                    Failure::error(format!("run {id} has no series named {key:?}"))
                        .hint(if known.is_empty() {
                            "it has no series: log some with `mreg log --metric KEY=V --step N`"
                                .to_owned()
                        } else {
                            format!("its series are: {}", known.join(", "))
                        })
                        .into(),
                );
            };
            vec![key]
        }
    };
    let mut points: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for key in wanted {
        points.insert(key, runs::load_points(reg, &record.series[key].chunk)?);
    }
    let mut summary = record.clone();
    for s in summary.series.values_mut() {
        s.chunk = Chunk::default();
    }
    if ctx.out.is_json() {
        let mut json = output::json_of_manifest(&summary)?;
        for (key, list) in &points {
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "step": p.0,
                        "value": output::json_of_value(&crate::manifest::Value::Float(p.1)),
                        "time": p.2,
                    })
                })
                .collect();
            if let Some(entry) = json.pointer_mut(&format!("/series/{}", escape_pointer(key)))
                && let Some(object) = entry.as_object_mut()
            {
                object.insert("points".to_owned(), serde_json::Value::Array(rows));
            }
        }
        return ctx.out.emit(&json, String::new);
    }
    let mut text = summary.to_toml()?;
    for (key, list) in &points {
        let _ = writeln!(
            text,
            "\n# series {key}: {}",
            output::count(list.len() as u64, "point")
        );
        let cells = list
            .iter()
            .map(|p| vec![p.0.to_string(), format_float(p.1), p.2.clone()])
            .collect();
        text.push_str(&output::table(&["STEP", "VALUE", "TIME"], cells));
    }
    ctx.out.emit(&(), || text)
}

/// Returns a key escaped for a JSON pointer.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
