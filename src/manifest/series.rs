//! Metric series: points (step, value, time), their summary (count, last, min, max),
//! and where they are: inline in a run record or event when few, else in an object
//! whose bytes are one `step<TAB>value<TAB>time` line per point.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::id::ObjectId;

/// How many points of a series a record or event keeps inline; longer series go to
/// an object the record points at, so manifests stay small.
pub const INLINE_POINTS: usize = 16;

/// Returns one point of a metric series: step, value, time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point(pub i64, pub f64, pub String);

impl Point {
    /// Returns the step.
    pub fn step(&self) -> i64 {
        self.0
    }

    /// Returns the value.
    pub fn value(&self) -> f64 {
        self.1
    }
}

/// Returns a part of a series: points inline, or stored in objects.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    /// Objects holding longer runs of points (see [`encode_points`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectId>,
    /// Points kept inline: `[step, value, time]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<Point>,
}

/// Returns one metric's series: a summary, and where its points are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Number of points.
    pub count: u64,
    /// The highest step.
    pub last_step: i64,
    /// The value at the highest step (the latest logged among equal steps).
    pub last: f64,
    /// The smallest value (NaN ignored), and the step of its first occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The step at which `min` was first reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_step: Option<i64>,
    /// The largest value (NaN ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The step at which `max` was first reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_step: Option<i64>,
    /// Where the points are.
    #[serde(flatten)]
    pub chunk: Chunk,
}

impl Series {
    /// Adds points (already stored in `chunk`) to the summary. Returns whether the
    /// newest of them reached the highest step, so it is the metric's final value.
    pub(crate) fn summarize(&mut self, points: &[Point]) -> bool {
        let mut reached_last = false;
        for p in points {
            if self.count == 0 || p.step() >= self.last_step {
                self.last_step = p.step();
                self.last = p.value();
                reached_last = true;
            }
            self.count += 1;
            let v = p.value();
            if v.is_nan() {
                continue;
            }
            if self.min.is_none_or(|m| v < m) {
                self.min = Some(v);
                self.min_step = Some(p.step());
            }
            if self.max.is_none_or(|m| v > m) {
                self.max = Some(v);
                self.max_step = Some(p.step());
            }
        }
        reached_last
    }
}

/// Returns the summary-and-location form of series points about to be written: inline
/// when short, else in an object the caller stores (`store` returns its id).
pub fn chunk_of(
    points: Vec<Point>,
    store: &mut dyn FnMut(&[u8]) -> Result<ObjectId>,
) -> Result<Chunk> {
    if points.len() <= INLINE_POINTS {
        return Ok(Chunk {
            objects: Vec::new(),
            points,
        });
    }
    let id = store(&encode_points(&points))?;
    Ok(Chunk {
        objects: vec![id],
        points: Vec::new(),
    })
}

/// Returns points in the series-object form: a header line, then one
/// `step<TAB>value<TAB>time` line per point; values as TOML writes floats (`nan`, `inf`).
pub fn encode_points(points: &[Point]) -> Vec<u8> {
    let mut out = String::from("mreg series 1\n");
    for p in points {
        let _ = writeln!(out, "{}\t{}\t{}", p.0, toml_float(p.1), p.2);
    }
    out.into_bytes()
}

/// Parses a series object.
pub fn decode_points(bytes: &[u8]) -> Result<Vec<Point>> {
    let text = std::str::from_utf8(bytes)?;
    let mut lines = text.lines();
    if lines.next() != Some("mreg series 1") {
        bail!("it is not a series object (its first line is not `mreg series 1`)");
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let mut parts = line.splitn(3, '\t');
            let (Some(step), Some(value), Some(time)) = (parts.next(), parts.next(), parts.next())
            else {
                bail!("line {}: expected step, value and time", i + 2);
            };
            let step = step
                .parse()
                .map_err(|_| anyhow::anyhow!("line {}: bad step", i + 2))?;
            let value = parse_toml_float(value)
                .ok_or_else(|| anyhow::anyhow!("line {}: bad value {value:?}", i + 2))?;
            Ok(Point(step, value, time.to_owned()))
        })
        .collect()
}

fn toml_float(f: f64) -> String {
    if f.is_nan() {
        "nan".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{f:?}")
    }
}

fn parse_toml_float(text: &str) -> Option<f64> {
    match text {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

impl Series {
    /// Adds a logged part of a series, described by its own summary, to this one.
    pub(super) fn summarize_logged(&mut self, logged: &Series) -> bool {
        if logged.count == 0 {
            return false;
        }
        let reached = self.count == 0 || logged.last_step >= self.last_step;
        if reached {
            self.last_step = logged.last_step;
            self.last = logged.last;
        }
        self.count += logged.count;
        if let (Some(v), Some(step)) = (logged.min, logged.min_step)
            && self.min.is_none_or(|m| v < m)
        {
            self.min = Some(v);
            self.min_step = Some(step);
        }
        if let (Some(v), Some(step)) = (logged.max, logged.max_step)
            && self.max.is_none_or(|m| v > m)
        {
            self.max = Some(v);
            self.max_step = Some(step);
        }
        reached
    }

    /// Returns a series holding exactly `points`, located by `chunk`.
    pub fn of(points: &[Point], chunk: Chunk) -> Series {
        let mut series = Series::default();
        series.summarize(points);
        series.chunk = chunk;
        series
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::fuzz;

    fn pts(values: &[(i64, f64)]) -> Vec<Point> {
        values
            .iter()
            .map(|&(s, v)| Point(s, v, "2026-01-01T00:00:00Z".to_owned()))
            .collect()
    }

    #[test]
    fn series_summary_tracks_last_min_max_and_ignores_nan() {
        let points = pts(&[(1, 0.7), (2, f64::NAN), (3, 0.4), (4, 0.5)]);
        let s = Series::of(&points, Chunk::default());
        assert_eq!((s.count, s.last_step, s.last), (4, 4, 0.5));
        assert_eq!((s.min, s.min_step), (Some(0.4), Some(3)));
        assert_eq!((s.max, s.max_step), (Some(0.7), Some(1)));
    }

    #[test]
    fn series_objects_round_trip_with_nan_and_infinities() {
        let points = pts(&[
            (0, f64::NAN),
            (1, f64::INFINITY),
            (2, f64::NEG_INFINITY),
            (3, 0.1),
        ]);
        let back = decode_points(&encode_points(&points)).unwrap();
        assert_eq!(back.len(), 4);
        assert!(back[0].1.is_nan());
        assert_eq!(back[1].1, f64::INFINITY);
        assert_eq!(back[2].1, f64::NEG_INFINITY);
        assert_eq!(back[3], points[3]);
        assert!(decode_points(b"not a series\n").is_err());
    }

    #[test]
    fn an_out_of_order_point_does_not_become_the_final_value() {
        let mut s = Series::of(&pts(&[(5, 0.3)]), Chunk::default());
        assert!(!s.summarize(&pts(&[(3, 0.9)])));
        assert_eq!((s.last_step, s.last, s.count), (5, 0.3, 2));
        assert!(s.summarize(&pts(&[(5, 0.2)])));
        assert_eq!(s.last, 0.2);
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn decoding_any_bytes_never_panics(bytes in fuzz::bytes(256)) {
            let _ = decode_points(&bytes);
        }

        #[test]
        fn decoding_a_mutated_series_never_panics(
            bytes in fuzz::mutated(encode_points(&pts(&[(0, 0.5), (1, f64::NAN), (7, -1e300)])))
        ) {
            let _ = decode_points(&bytes);
        }
    }
}
