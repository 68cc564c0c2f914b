//! `mreg report --vega`: the same charts as Vega-Lite specs with their data inline, for
//! tools that draw Vega-Lite (as `dvc plots` users do).

use serde_json::{Value, json};

use super::html::downsample;
use crate::diff::goal::Goal;
use crate::ops::report::RunsReport;

/// The Vega-Lite schema the specs follow.
const SCHEMA: &str = "https://vega.github.io/schema/vega-lite/v5.json";

/// Returns one Vega-Lite spec: a line chart per metric series (the first 100 by name, as
/// the page draws), stacked (`vconcat`), each
/// with its points inline (`run`, `step`, `value`), drawn from the same reduced points
/// as the HTML page, on a log scale where the page uses one.
pub fn spec(report: &RunsReport, buckets: usize) -> Value {
    let charts: Vec<Value> = report
        .goals
        .iter()
        .take(super::html::CHART_LIMIT)
        .map(|(key, goal)| {
            let mut values = Vec::new();
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for (record, series) in &report.runs {
                let Some(points) = series.get(key) else {
                    continue;
                };
                let run = match &record.name {
                    Some(name) => format!("{} {name}", record.id.short()),
                    None => record.id.short().to_owned(),
                };
                for (step, value) in downsample(points, buckets) {
                    lo = lo.min(value);
                    hi = hi.max(value);
                    // Steps are whole numbers: written as such, not as 25.0.
                    let step = if step.fract() == 0.0 && step.abs() < 9e15 {
                        json!(step as i64)
                    } else {
                        json!(step)
                    };
                    values.push(json!({"run": run, "step": step, "value": value}));
                }
            }
            let scale = if lo > 0.0 && hi >= lo * 10.0 {
                json!({"type": "log"})
            } else {
                json!({"zero": false})
            };
            let better = match goal {
                Goal::Min => "lower is better",
                Goal::Max => "higher is better",
            };
            json!({
                "title": {"text": key, "subtitle": better},
                "width": 640,
                "height": 260,
                "data": {"values": values},
                "mark": {"type": "line"},
                "encoding": {
                    "x": {"field": "step", "type": "quantitative", "title": "step"},
                    "y": {"field": "value", "type": "quantitative", "title": key, "scale": scale},
                    "color": {"field": "run", "type": "nominal", "title": "run"}
                }
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "description": format!("mreg report: {} runs", report.runs.len()),
        "vconcat": charts
    })
}

/// Returns a spec as text: indented, but each data row on one line, so that a spec of
/// 20 runs of 10,000 steps stays a few megabytes, not five times that.
pub fn text(spec: &Value) -> serde_json::Result<String> {
    // The placeholders name a hash of the spec, which no string inside it can spell.
    let token = &blake3::hash(spec.to_string().as_bytes()).to_hex()[..16];
    let mut spec = spec.clone();
    let mut rows = Vec::new();
    if let Some(charts) = spec.get_mut("vconcat").and_then(Value::as_array_mut) {
        for chart in charts {
            if let Some(values) = chart.pointer_mut("/data/values") {
                let placeholder = Value::String(format!("rows {token} {}", rows.len()));
                rows.push(std::mem::replace(values, placeholder));
            }
        }
    }
    let mut out = serde_json::to_string_pretty(&spec)?;
    for (i, values) in rows.iter().enumerate() {
        let lines: Vec<String> = values
            .as_array()
            .map(|a| a.iter().map(Value::to_string).collect())
            .unwrap_or_default();
        let block = if lines.is_empty() {
            "[]".to_owned()
        } else {
            format!("[\n          {}\n        ]", lines.join(",\n          "))
        };
        out = out.replacen(&format!("\"rows {token} {i}\""), &block, 1);
    }
    Ok(out)
}
