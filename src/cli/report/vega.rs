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
