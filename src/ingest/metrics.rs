//! Metrics files: a series in JSON lines, or final metrics in one JSON, TOML or YAML file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Result, anyhow};

use super::files::{self, Format};
use super::json;
use super::tree::{self, Leaf, Node, SyntaxError};

/// Returns the metrics a file holds: final values, a series of points, skipped keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsFile {
    /// The final value of each metric: the file's value, or in a series the last one.
    pub finals: BTreeMap<String, f64>,
    /// One point per record of a series, in file order; empty for a single document.
    pub points: Vec<Point>,
    /// Dotted keys whose values are not numbers (strings, lists, nulls), sorted; the
    /// caller warns about them. In a series, nulls count as missing and are not listed.
    pub skipped: Vec<String>,
}

/// Returns one record of a metrics series: its step, its time and its values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    /// The record's `step`, when it has one.
    pub step: Option<i64>,
    /// The record's `time` (or `timestamp`): a string as given, or a number of Unix
    /// seconds written as RFC 3339 UTC (`2024-04-05T19:34:38Z`, `….250Z`).
    pub time: Option<String>,
    /// The record's other keys, nested objects joined with `.`, with their values.
    pub values: BTreeMap<String, f64>,
}

/// Returns the metrics in a file: a JSON lines series, or one JSON, TOML or YAML document.
///
/// A `.jsonl` or `.ndjson` file is a series: each non-blank line is one JSON object, and
/// becomes one [`Point`]. So is a `.json` file, or one with an unknown extension, whose
/// first line is a whole JSON object and which has more lines. A record's `step` (a whole
/// number) and `time` or `timestamp` (Unix seconds, or a string) are not metrics; its
/// other keys are, nested objects joined with `.`, and the last value of each key is its
/// final value. Errors name the line: `metrics.jsonl line 7, column 12: …`.
///
/// Any other file is one document, read as params are: its numbers are final metrics,
/// bools count as 1 and 0, and other leaves are listed in [`MetricsFile::skipped`].
///
/// JSON may hold Python's bare `NaN`, `Infinity` and `-Infinity`; TOML's `nan` and `inf`
/// and YAML's `.nan` and `.inf` are numbers too.
pub fn read_metrics_file(path: &Path) -> Result<MetricsFile> {
    let text = files::read_text(path, "metrics")?;
    let format = Format::of(path);
    let is_series = match format {
        Some(Format::JsonLines) => true,
        Some(Format::Json) | None => looks_like_json_lines(&text),
        Some(Format::Toml | Format::Yaml) => false,
    };
    if is_series {
        return read_series(path, &text);
    }
    let mut metrics = MetricsFile::default();
    for (key, leaf) in files::read_document(path, &text, format)? {
        match number_of(&leaf) {
            Some(value) => {
                metrics.finals.insert(key, value);
            }
            None => metrics.skipped.push(key),
        }
    }
    Ok(metrics)
}

/// Returns whether the first non-blank line is a JSON object and more lines follow.
fn looks_like_json_lines(text: &str) -> bool {
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let first_is_object = lines
        .next()
        .is_some_and(|line| matches!(json::parse(line), Ok(Node::Map(_))));
    first_is_object && lines.next().is_some()
}

/// Returns the metric value of a leaf: numbers as they are, bools as 1 and 0.
fn number_of(leaf: &Leaf) -> Option<f64> {
    match leaf {
        Leaf::Int(i) => Some(*i as f64),
        Leaf::Float(f) => Some(*f),
        Leaf::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Leaf::Null | Leaf::Str(_) | Leaf::List(_) => None,
    }
}

fn read_series(path: &Path, text: &str) -> Result<MetricsFile> {
    let mut metrics = MetricsFile::default();
    let mut skipped = BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let at_line = |message: String| anyhow!("{} line {number}: {message}", path.display());
        let entries = match json::parse(line) {
            Ok(Node::Map(entries)) => entries,
            Ok(other) => {
                return Err(at_line(format!(
                    "expected a JSON object, found {}",
                    other.kind()
                )));
            }
            Err(err) => {
                let err = SyntaxError {
                    line: number,
                    ..err
                };
                return Err(anyhow!("{} {err}", path.display()));
            }
        };
        let point = read_record(entries, &mut skipped).map_err(at_line)?;
        for (key, value) in &point.values {
            metrics.finals.insert(key.clone(), *value);
        }
        metrics.points.push(point);
    }
    metrics.skipped = skipped.into_iter().collect();
    Ok(metrics)
}

/// Returns the point one record stands for, adding its non-numeric keys to `skipped`.
fn read_record(
    entries: Vec<(String, Node)>,
    skipped: &mut BTreeSet<String>,
) -> Result<Point, String> {
    let mut point = Point::default();
    let mut step = None;
    let mut time = None;
    let mut timestamp = None;
    let mut rest = Vec::with_capacity(entries.len());
    for (key, node) in entries {
        let slot = match key.as_str() {
            "step" => &mut step,
            "time" => &mut time,
            "timestamp" => &mut timestamp,
            _ => {
                rest.push((key, node));
                continue;
            }
        };
        if slot.replace(node).is_some() {
            return Err(format!("{key:?} is given twice"));
        }
    }
    point.step = step.map(|node| whole_number(&node)).transpose()?.flatten();
    let (time_key, time_node) = match (time, timestamp) {
        (Some(node), _) => ("time", Some(node)),
        (None, node) => ("timestamp", node),
    };
    point.time = time_node
        .map(|node| time_text(time_key, &node))
        .transpose()?
        .flatten();

    let mut leaves = BTreeMap::new();
    tree::flatten(rest, "", &mut leaves)
        .map_err(|key| format!("key {key:?} is given twice (nested keys are joined with \".\")"))?;
    for (key, leaf) in leaves {
        match (number_of(&leaf), leaf) {
            (Some(value), _) => {
                point.values.insert(key, value);
            }
            (None, Leaf::Null) => {}
            (None, _) => {
                skipped.insert(key);
            }
        }
    }
    Ok(point)
}

/// Returns a step: an integer, or a float with no fraction; `null` is no step.
fn whole_number(node: &Node) -> Result<Option<i64>, String> {
    // i64::MAX as f64 is 2^63, the first float too large for an i64.
    let in_range = |f: f64| f >= i64::MIN as f64 && f < i64::MAX as f64;
    match *node {
        Node::Null => Ok(None),
        Node::Int(i) => Ok(Some(i)),
        Node::Float(f) if f.fract() == 0.0 && in_range(f) => Ok(Some(f as i64)),
        _ => Err(format!(
            "\"step\" must be a whole number, found {}",
            tree::to_compact_json(node)
        )),
    }
}

/// Returns a record's time: a string as given, Unix seconds as RFC 3339; `null` is none.
fn time_text(key: &str, node: &Node) -> Result<Option<String>, String> {
    let seconds = match *node {
        Node::Null => return Ok(None),
        Node::Str(ref text) => return Ok(Some(text.clone())),
        Node::Int(i) => i as f64,
        Node::Float(f) => f,
        _ => {
            return Err(format!(
                "{key:?} must be Unix seconds or a string, found {}",
                tree::to_compact_json(node)
            ));
        }
    };
    rfc3339(seconds).map(Some).ok_or_else(|| {
        let shown = tree::to_compact_json(node);
        if seconds.abs() >= 1e11 && seconds.is_finite() {
            format!("{key:?} is {shown}, too large for Unix seconds; is it milliseconds?")
        } else {
            format!("{key:?} is {shown}, not a time in Unix seconds from 1970 to 9999")
        }
    })
}

/// Returns Unix seconds as RFC 3339 in UTC, to the millisecond or microsecond when the
/// time has a fraction; `None` before 1970 or from the year 10000 on.
fn rfc3339(seconds: f64) -> Option<String> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    // 10000-01-01T00:00:00Z.
    const END: f64 = 253_402_300_800.0;
    if !(0.0..END).contains(&seconds) {
        return None;
    }
    let micros = (seconds * 1e6).round() as i64;
    let (days, of_day) = (micros / MICROS_PER_DAY, micros % MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (secs, fraction) = (of_day / 1_000_000, of_day % 1_000_000);
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    let fraction = match fraction {
        0 => String::new(),
        f if f % 1000 == 0 => format!(".{:03}", f / 1000),
        f => format!(".{f:06}"),
    };
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z"
    ))
}

/// Returns the year, month and day of a count of days since 1970-01-01 (not negative).
///
/// Counts in 400-year eras of 146097 days from 0000-03-01, so a leap day ends each year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
// Exact float equality is what these tests check.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write file");
        (dir, path)
    }

    fn metrics(name: &str, text: &str) -> MetricsFile {
        let (_dir, path) = file(name, text);
        read_metrics_file(&path).unwrap_or_else(|e| panic!("{name}: {e:#}"))
    }

    /// Returns the error message, with the temp dir taken out of it.
    fn metrics_error(name: &str, text: &str) -> String {
        let (dir, path) = file(name, text);
        let err = read_metrics_file(&path).expect_err("an error");
        format!("{err:#}").replace(&format!("{}/", dir.path().display()), "")
    }

    fn finals(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
        entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), *value))
            .collect()
    }

    /// The fixture `eval.json`, as mreg's `fixtures/` holds it.
    const EVAL_JSON: &str = r#"{
  "acc": 0.871,
  "f1": 0.853,
  "latency_ms": 12.4,
  "holdout": {"auc": 0.912, "rows": 20000}
}
"#;

    /// The fixture `metrics.jsonl`, as mreg's `fixtures/` holds it.
    const METRICS_JSONL: &str = r#"{"step": 1, "loss": 0.693, "acc": 0.52}
{"step": 2, "loss": 0.541, "acc": 0.71}
{"step": 3, "loss": 0.412, "acc": 0.83}
{"step": 4, "loss": 0.388, "acc": 0.86}
"#;

    #[test]
    fn eval_json_gives_final_metrics() {
        let got = metrics("eval.json", EVAL_JSON);
        let want = finals(&[
            ("acc", 0.871),
            ("f1", 0.853),
            ("latency_ms", 12.4),
            ("holdout.auc", 0.912),
            ("holdout.rows", 20000.0),
        ]);
        assert_eq!(got.finals, want);
        assert!(got.points.is_empty());
        assert!(got.skipped.is_empty());
    }

    #[test]
    fn jsonl_gives_points_and_last_values() {
        let got = metrics("metrics.jsonl", METRICS_JSONL);
        assert_eq!(got.points.len(), 4);
        assert_eq!(
            got.points[1],
            Point {
                step: Some(2),
                time: None,
                values: finals(&[("loss", 0.541), ("acc", 0.71)]),
            }
        );
        assert_eq!(got.finals, finals(&[("loss", 0.388), ("acc", 0.86)]));
        assert!(got.skipped.is_empty());
    }

    #[test]
    fn jsonl_records_may_nest_skip_steps_and_carry_times() {
        let text = concat!(
            "{\"step\": 10.0, \"time\": 1712345678, \"train\": {\"loss\": 0.5}}\n",
            "\n",
            "{\"timestamp\": \"2024-04-05 19:40\", \"val\": {\"loss\": 0.6}, \"ok\": true}\n",
            "{\"time\": 1712345678.25, \"step\": null, \"phase\": \"eval\", \"x\": null}\r\n",
        );
        let got = metrics("m.ndjson", text);
        assert_eq!(got.points.len(), 3);
        assert_eq!(got.points[0].step, Some(10));
        assert_eq!(got.points[0].time.as_deref(), Some("2024-04-05T19:34:38Z"));
        assert_eq!(got.points[0].values, finals(&[("train.loss", 0.5)]));
        assert_eq!(got.points[1].step, None);
        assert_eq!(got.points[1].time.as_deref(), Some("2024-04-05 19:40"));
        assert_eq!(
            got.points[1].values,
            finals(&[("val.loss", 0.6), ("ok", 1.0)])
        );
        assert_eq!(
            got.points[2].time.as_deref(),
            Some("2024-04-05T19:34:38.250Z")
        );
        assert!(got.points[2].values.is_empty());
        assert_eq!(
            got.finals,
            finals(&[("train.loss", 0.5), ("val.loss", 0.6), ("ok", 1.0)])
        );
        assert_eq!(got.skipped, ["phase"]);
    }

    #[test]
    fn nan_and_infinity_tokens_survive_in_json_and_jsonl() {
        let got = metrics(
            "eval.json",
            r#"{"loss": NaN, "ppl": Infinity, "margin": -Infinity, "note": "NaN"}"#,
        );
        assert!(got.finals["loss"].is_nan());
        assert_eq!(got.finals["ppl"], f64::INFINITY);
        assert_eq!(got.finals["margin"], f64::NEG_INFINITY);
        assert_eq!(got.skipped, ["note"]);

        let got = metrics(
            "m.jsonl",
            "{\"step\": 1, \"loss\": NaN, \"tag\": \"Infinity\"}\n{\"step\": 2, \"ppl\": -Infinity}\n",
        );
        assert!(got.points[0].values["loss"].is_nan());
        assert_eq!(got.points[1].values["ppl"], f64::NEG_INFINITY);
        assert_eq!(got.skipped, ["tag"]);
    }

    #[test]
    fn non_numeric_leaves_are_skipped_not_failed() {
        let text = "acc: 0.9\nok: true\nbad: false\nmodel: resnet\nlayers: [1, 2]\nmissing: ~\n\
                    nested:\n  auc: .nan\n  name: x\n";
        let got = metrics("eval.yaml", text);
        assert_eq!(got.finals.len(), 4);
        assert_eq!(got.finals["acc"], 0.9);
        assert_eq!(got.finals["ok"], 1.0);
        assert_eq!(got.finals["bad"], 0.0);
        assert!(got.finals["nested.auc"].is_nan());
        assert_eq!(got.skipped, ["layers", "missing", "model", "nested.name"]);

        let got = metrics(
            "eval.toml",
            "acc = 0.9\nn = 3\nwhen = 2024-01-01\ninf = inf\n",
        );
        assert_eq!(
            got.finals,
            finals(&[("acc", 0.9), ("n", 3.0), ("inf", f64::INFINITY)])
        );
        assert_eq!(got.skipped, ["when"]);
    }

    #[test]
    fn json_file_holding_lines_is_a_series() {
        let got = metrics("metrics.json", METRICS_JSONL);
        assert_eq!(got.points.len(), 4);
        let got = metrics("metrics.log", METRICS_JSONL);
        assert_eq!(got.points.len(), 4);
        // One line is one document, however it is named.
        let got = metrics("eval.json", "{\"step\": 3, \"acc\": 0.5}\n");
        assert!(got.points.is_empty());
        assert_eq!(got.finals, finals(&[("step", 3.0), ("acc", 0.5)]));
    }

    #[test]
    fn unknown_extension_falls_back_to_documents() {
        assert_eq!(metrics("eval.out", EVAL_JSON).finals.len(), 5);
        assert_eq!(
            metrics("eval.out", "acc = 0.5\n").finals,
            finals(&[("acc", 0.5)])
        );
        assert_eq!(
            metrics("eval", "acc: 0.5\n").finals,
            finals(&[("acc", 0.5)])
        );
        assert!(
            metrics_error("eval.out", "acc 0.5\n").starts_with("eval.out: not JSON, TOML or YAML")
        );
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let text = "{\"step\": 1, \"loss\": 0.5}\n\n{\"step\": 2, \"loss\": 0.4,}\n";
        assert_eq!(
            metrics_error("metrics.jsonl", text),
            "metrics.jsonl line 3, column 25: trailing comma"
        );
        assert_eq!(
            metrics_error("metrics.jsonl", "{\"a\": 1}\n[1, 2]\n"),
            "metrics.jsonl line 2: expected a JSON object, found a list"
        );
        assert_eq!(
            metrics_error("metrics.jsonl", "{\"step\": 1.5, \"a\": 1}\n"),
            "metrics.jsonl line 1: \"step\" must be a whole number, found 1.5"
        );
        assert_eq!(
            metrics_error("metrics.jsonl", "{\"step\": \"3\"}\n"),
            "metrics.jsonl line 1: \"step\" must be a whole number, found \"3\""
        );
        assert_eq!(
            metrics_error("metrics.jsonl", "{\"time\": 1712345678000}\n"),
            "metrics.jsonl line 1: \"time\" is 1712345678000, too large for Unix seconds; \
             is it milliseconds?"
        );
        assert_eq!(
            metrics_error("metrics.jsonl", "{\"timestamp\": true}\n"),
            "metrics.jsonl line 1: \"timestamp\" must be Unix seconds or a string, found true"
        );
        // A .json file whose first line is an object and more lines follow is a series.
        assert_eq!(
            metrics_error("metrics.json", "{\"a\": 1}\n{\"a\": 2\n"),
            "metrics.json line 2, column 7: EOF while parsing an object"
        );
    }

    #[test]
    fn document_syntax_errors_name_the_line() {
        assert_eq!(
            metrics_error("eval.json", "{\n  \"acc\": 0.9\n  \"f1\": 0.8\n}\n"),
            "eval.json line 3, column 3: expected `,` or `}`"
        );
        assert_eq!(
            metrics_error("eval.yaml", "acc: 0.9\nf1: [0.8\n"),
            "eval.yaml line 3, column 1: while parsing a flow sequence, expected ',' or ']'"
        );
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0.0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(951_782_400.0).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(
            rfc3339(951_868_799.5).as_deref(),
            Some("2000-02-29T23:59:59.500Z")
        );
        assert_eq!(
            rfc3339(1_709_251_199.000_001).as_deref(),
            Some("2024-02-29T23:59:59.000001Z")
        );
        assert_eq!(
            rfc3339(253_402_300_799.0).as_deref(),
            Some("9999-12-31T23:59:59Z")
        );
        assert_eq!(rfc3339(-1.0), None);
        assert_eq!(rfc3339(f64::NAN), None);
        assert_eq!(rfc3339(253_402_300_800.0), None);
    }
}
