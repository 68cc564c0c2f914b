//! `mreg report`'s page: one self-contained HTML file (inline CSS and SVG, no script, no
//! network), readable from disk on a machine without a network.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::cli::output;
use crate::diff::goal::Goal;
use crate::manifest::series::Point;
use crate::manifest::value::format_float;
use crate::ops::report::{ModelReport, RunsReport};

/// How many buckets a series is drawn with: each keeps its lowest and highest point, so
/// 20 runs of 10,000 steps draw in a few hundred KiB and no spike is lost.
pub const BUCKETS: usize = 400;

/// The most charts one page draws: a run logging thousands of series keys would
/// otherwise make a page no browser opens.
pub const CHART_LIMIT: usize = 100;

/// The size of one chart, in SVG pixels.
const CHART: (u32, u32) = (860, 340);

/// Returns text escaped for HTML: a name from a record is never markup. Line breaks and
/// tabs stay (a text shown with `white-space: pre-wrap` keeps its lines); any other
/// control character becomes U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Returns text the chart library may write into SVG as it is: letters, digits and a
/// few marks; anything else (`<`, quotes, control characters) becomes `?`.
fn svg_safe(text: &str) -> String {
    text.chars()
        .take(60)
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-/:@+()".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Returns a run's label in charts and tables: its short id, and its name when it has one.
fn label(record: &crate::manifest::RunRecord) -> String {
    match &record.name {
        Some(name) => format!("{} {name}", record.id.short()),
        None => record.id.short().to_owned(),
    }
}

/// Returns the points of a series to draw: finite values in step order, each bucket of
/// steps reduced to its lowest and highest point.
pub fn downsample(points: &[Point], buckets: usize) -> Vec<(f64, f64)> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|p| (p.0 as f64, p.1))
        .collect();
    if finite.len() <= buckets * 2 {
        return finite;
    }
    let mut out = Vec::with_capacity(buckets * 2);
    for i in 0..buckets {
        let share = &finite[i * finite.len() / buckets..(i + 1) * finite.len() / buckets];
        let lo = share.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        let hi = share.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(lo), Some(hi)) = (lo, hi) {
            // In step order, so the line goes through both.
            let (a, b) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
            out.push(*a);
            if a != b {
                out.push(*b);
            }
        }
    }
    out
}

/// Returns the page for a runs report.
pub fn runs_page(report: &RunsReport, generated: &str) -> Result<String> {
    let mut body = String::new();
    let keys: Vec<&String> = report.goals.keys().collect();
    let _ = writeln!(body, "<h2>Series</h2>");
    if keys.is_empty() {
        let _ = writeln!(body, "<p>None of these runs logged a series.</p>");
    }
    if keys.len() > CHART_LIMIT {
        let _ = writeln!(
            body,
            "<p>{} series; the first {CHART_LIMIT} by name are drawn.</p>",
            keys.len()
        );
    }
    for key in keys.into_iter().take(CHART_LIMIT) {
        let goal = report.goals.get(key).copied().unwrap_or(Goal::Max);
        let svg = chart(report, key, goal)?;
        let better = match goal {
            Goal::Min => "lower is better",
            Goal::Max => "higher is better",
        };
        let _ = writeln!(
            body,
            "<figure><figcaption>{} <span class=\"dim\">({better}; the best point of each run is circled)</span></figcaption>\n{svg}\n</figure>",
            escape(key)
        );
    }
    values_table(&mut body, report);
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>mreg report: {n}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>mreg report: {n}</h1>\n<p class=\"dim\">{}</p>\n{body}</body>\n</html>\n",
        escape(generated),
        n = output::count(report.runs.len() as u64, "run")
    ))
}

/// Returns the page for a model's report: each metric over its versions, the stage
/// history (refusals marked), and per version its run, commit, data and environment.
pub fn model_page(report: &ModelReport, generated: &str) -> Result<String> {
    let mut body = String::new();
    model_fields(&mut body, &report.info.fields);
    let _ = writeln!(body, "<h2>Metrics by version</h2>");
    if report.goals.is_empty() {
        let _ = writeln!(body, "<p>No version of this model has metrics.</p>");
    }
    for (key, goal) in report.goals.iter().take(CHART_LIMIT) {
        let points: Vec<(f64, f64)> = report
            .versions
            .iter()
            .filter_map(|(v, _)| {
                let m = *v.metrics.get(key)?;
                m.is_finite().then_some((v.version as f64, m))
            })
            .collect();
        let lines = vec![(report.model.clone(), points)];
        let better = match goal {
            Goal::Min => "lower is better",
            Goal::Max => "higher is better",
        };
        let svg = lines_chart(&lines, key, *goal, "version")?;
        let _ = writeln!(
            body,
            "<figure><figcaption>{} <span class=\"dim\">({better}; the best version is circled)</span></figcaption>\n{svg}\n</figure>",
            escape(key)
        );
    }
    let _ = writeln!(
        body,
        "<h2>Stage history</h2>\n<table>\n<tr><th>#</th><th>time</th><th>action</th><th>stage</th><th>version</th><th>by</th><th>checks</th><th>reason</th></tr>"
    );
    for s in &report.moves {
        let refused = s.action == crate::manifest::state::Action::Refused;
        let class = if refused { " class=\"refused\"" } else { "" };
        let checks = super::checks_passed(&s.checks);
        let _ = writeln!(
            body,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}@{}</td><td>{}</td><td>{checks}</td><td>{}</td></tr>",
            s.number,
            escape(&s.time),
            s.action.as_str(),
            escape(&s.stage),
            escape(&s.model),
            s.version,
            escape(&s.actor),
            escape(s.reason.as_deref().unwrap_or("")),
        );
    }
    body.push_str("</table>\n");
    versions_table(&mut body, report);
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>mreg report: {m}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>mreg report: model {m}</h1>\n<p class=\"dim\">{}</p>\n{body}</body>\n</html>\n",
        escape(generated),
        m = escape(&report.model)
    ))
}

/// Writes a model's versions, newest first: when and by whom, tree, run, commit, data,
/// Python and message.
fn versions_table(body: &mut String, report: &ModelReport) {
    let _ = writeln!(
        body,
        "<h2>Versions</h2>\n<table>\n<tr><th>version</th><th>pushed</th><th>by</th><th>tree</th><th>run</th><th>commit</th><th>data</th><th>Python</th><th>message</th></tr>"
    );
    for (v, run) in report.versions.iter().rev() {
        let source = run.as_ref().and_then(|r| r.source.as_ref());
        let commit = source
            .and_then(|s| s.commit.as_deref())
            .map(|c| {
                let dirty = if source.is_some_and(|s| s.dirty) {
                    " (dirty)"
                } else {
                    ""
                };
                format!("{}{dirty}", &c[..c.len().min(12)])
            })
            .unwrap_or_default();
        let data = run
            .as_ref()
            .map(|r| {
                r.data
                    .iter()
                    .map(|d| match &d.hash {
                        Some(h) => format!("{} ({})", d.path, &h[..h.len().min(12)]),
                        None => d.path.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let python = run
            .as_ref()
            .and_then(|r| r.environment.as_ref())
            .and_then(|e| e.python.as_ref())
            .map(|p| {
                format!(
                    "{} ({} packages)",
                    p.version.as_deref().unwrap_or("?"),
                    p.packages
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&v.reference()),
            escape(&v.created),
            escape(&v.actor),
            v.tree.0.short(12),
            v.run
                .as_ref()
                .map(|id| id.short().to_owned())
                .unwrap_or_default(),
            escape(&commit),
            escape(&data),
            escape(&python),
            escape(v.message.as_deref().unwrap_or("")),
        );
    }
    body.push_str("</table>\n");
}

/// Returns the page of a diff: its tables (params, metrics, files, the tensors of changed
/// `.safetensors` files, lineage), as `mreg diff` prints them, best values bold.
pub fn diff_page(report: &super::Report, generated: &str) -> String {
    let mut body = String::new();
    for line in &report.heading {
        let _ = writeln!(body, "<p class=\"dim\">{}</p>", escape(line.trim()));
    }
    for block in &report.blocks {
        let _ = writeln!(body, "<h2>{}</h2>", escape(&block.title));
        if !block.rows.is_empty() {
            body.push_str("<table>\n<tr>");
            for h in &block.header {
                let _ = write!(body, "<th>{}</th>", escape(h));
            }
            body.push_str("</tr>\n");
            for row in &block.rows {
                body.push_str("<tr>");
                for cell in row {
                    let class = match cell.tone {
                        super::Tone::Added | super::Tone::Good => " class=\"good\"",
                        super::Tone::Removed | super::Tone::Bad => " class=\"bad\"",
                        super::Tone::Changed => " class=\"differs\"",
                        super::Tone::Best => " class=\"best\"",
                        super::Tone::Plain | super::Tone::Dim => "",
                    };
                    let _ = write!(body, "<td{class}>{}</td>", escape(cell.text.trim()));
                }
                body.push_str("</tr>\n");
            }
            body.push_str("</table>\n");
        }
        for note in &block.notes {
            let _ = writeln!(body, "<p>{}</p>", escape(&note.text));
        }
    }
    if let Some(footer) = &report.footer {
        let _ = writeln!(body, "<p>{}</p>", escape(footer));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>mreg report: {t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>mreg report: {t}</h1>\n<p class=\"dim\">{}</p>\n{body}</body>\n</html>\n",
        escape(generated),
        t = escape(&report.title)
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}\
figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:.3em}\
.dim{color:#777;font-weight:normal}\
table{border-collapse:collapse;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
td.differs{background:#fff3c4}td.good{color:#11722a}td.bad{color:#b3261e}td.best{font-weight:bold}th.section{background:#eee}tr.refused td{background:#fde2e2}\
ul.legend{list-style:none;padding:0;margin:.2em 0 0 4em;columns:3;font-size:.85em}\
.text{white-space:pre-wrap;max-width:50em}\
ul.legend span{display:inline-block;width:1.4em;height:.3em;margin-right:.4em;vertical-align:middle}";

/// Writes what a person wrote of the model (`mreg model set`): its description, then a
/// table of the other fields; nothing when none was written.
fn model_fields(body: &mut String, fields: &crate::manifest::info::Fields) {
    use crate::manifest::info::Field;
    if let Some(description) = &fields.description {
        let _ = writeln!(body, "<p class=\"text\">{}</p>", escape(description));
    }
    let rows: Vec<String> = fields
        .present()
        .into_iter()
        .filter(|f| *f != Field::Description)
        .map(|f| {
            let value = match f {
                Field::Tags => fields.tags.clone().unwrap_or_default().join(", "),
                other => fields.text(other).unwrap_or_default().to_owned(),
            };
            format!(
                "<tr><th>{}</th><td class=\"text\">{}</td></tr>",
                f.as_str().replace('_', " "),
                escape(&value)
            )
        })
        .collect();
    if !rows.is_empty() {
        let _ = writeln!(
            body,
            "<table class=\"fields\">\n{}\n</table>",
            rows.join("\n")
        );
    }
}

/// Draws one series of every run that has it, overlaid, with its legend below (HTML:
/// twenty runs' names would cover the lines inside the chart).
fn chart(report: &RunsReport, key: &str, goal: Goal) -> Result<String> {
    let lines: Vec<(String, Vec<(f64, f64)>)> = report
        .runs
        .iter()
        .filter_map(|(record, series)| {
            let drawn = downsample(series.get(key)?, BUCKETS);
            (!drawn.is_empty()).then(|| (label(record), drawn))
        })
        .collect();
    lines_chart(&lines, key, goal, "step")
}

/// The largest magnitude drawn: beyond it a value is drawn at it, so that the axis's
/// span (and its ticks) stay finite; tables show the values themselves.
const DRAWN_LIMIT: f64 = 1e300;

/// Draws `lines` (a name and its points each) in one chart, with its legend below.
fn lines_chart(
    lines: &[(String, Vec<(f64, f64)>)],
    key: &str,
    goal: Goal,
    x_desc: &str,
) -> Result<String> {
    let clamped: Vec<(String, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|(name, points)| {
            let points = points
                .iter()
                .map(|(x, y)| (*x, y.clamp(-DRAWN_LIMIT, DRAWN_LIMIT)))
                .collect();
            (name.clone(), points)
        })
        .collect();
    let lines = &clamped[..];
    let mut legend = String::from("<ul class=\"legend\">");
    for (i, (name, _)) in lines.iter().enumerate() {
        let (r, g, b) = Palette99::pick(i).rgb();
        let _ = write!(
            legend,
            "<li><span style=\"background:#{r:02x}{g:02x}{b:02x}\"></span>{}</li>",
            escape(name)
        );
    }
    legend.push_str("</ul>");
    let all = || lines.iter().flat_map(|(_, l)| l.iter());
    let (x0, x1) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let (y0, y1) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    let mut svg = String::new();
    if !x0.is_finite() {
        return Ok("<p class=\"dim\">no finite points</p>".to_owned());
    }
    // One step or version alone sits in the middle of its chart, its value too.
    let x = if x1 > x0 { x0..x1 } else { x0 - 1.0..x0 + 1.0 };
    let pad = if y1 > y0 {
        (y1 - y0) * 0.05
    } else if y0 != 0.0 {
        y0.abs() * 0.1
    } else {
        0.5
    };
    {
        let area = SVGBackend::with_string(&mut svg, CHART).into_drawing_area();
        area.fill(&WHITE)
            .map_err(|e| anyhow!("drawing {key}: {e}"))?;
        if y0 > 0.0 && y1 >= y0 * 10.0 {
            let y = (y0 * 0.9..y1 * 1.1).log_scale();
            draw(&area, key, lines, goal, x, y, (x_desc, "log scale"))?;
        } else {
            draw(&area, key, lines, goal, x, y0 - pad..y1 + pad, (x_desc, ""))?;
        }
        area.present().map_err(|e| anyhow!("drawing {key}: {e}"))?;
    }
    // The XML declaration plotters writes is not needed inside HTML.
    Ok(format!(
        "{}\n{legend}",
        svg.trim_start_matches(|c| c != '<')
    ))
}

/// Draws the lines of one chart on `area`, `y` being a linear or a log range.
fn draw<Y>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    key: &str,
    lines: &[(String, Vec<(f64, f64)>)],
    goal: Goal,
    x: std::ops::Range<f64>,
    y: Y,
    (x_desc, note): (&str, &str),
) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let fail = |e: &dyn std::fmt::Display| anyhow!("drawing {key}: {e}");
    // Whole steps and versions: no more ticks than there are whole numbers to name.
    let ticks = ((x.end - x.start).round() as usize + 1).clamp(2, 12);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(|e| fail(&e))?;
    let y_desc = if note.is_empty() {
        svg_safe(key)
    } else {
        format!("{} ({note})", svg_safe(key))
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(ticks)
        .x_label_formatter(&|v| format!("{}", v.round() as i64))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(|e| fail(&e))?;
    for (i, (_, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?;
        let best = match goal {
            Goal::Min => points.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
            Goal::Max => points.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
        };
        if let Some(best) = best {
            chart
                .draw_series(std::iter::once(Circle::new(
                    *best,
                    5,
                    color.stroke_width(2),
                )))
                .map_err(|e| fail(&e))?;
        }
    }
    Ok(())
}

/// Writes the params and final metrics of the runs, a column each; rows whose values
/// differ are highlighted.
fn values_table(body: &mut String, report: &RunsReport) {
    let _ = writeln!(body, "<h2>Params and metrics</h2>\n<table>\n<tr><th></th>");
    for (record, _) in &report.runs {
        let _ = write!(body, "<th>{}</th>", escape(&label(record)));
    }
    body.push_str("</tr>\n");
    let mut section = |title: &str, rows: BTreeMap<&String, Vec<Option<String>>>| {
        let _ = writeln!(
            body,
            "<tr><th class=\"section\" colspan=\"{}\">{title}</th></tr>",
            report.runs.len() + 1
        );
        for (key, values) in rows {
            let differs = values.iter().any(|v| *v != values[0]);
            let class = if differs { " class=\"differs\"" } else { "" };
            let _ = write!(body, "<tr><th>{}</th>", escape(key));
            for v in values {
                let _ = write!(
                    body,
                    "<td{class}>{}</td>",
                    escape(v.as_deref().unwrap_or(""))
                );
            }
            body.push_str("</tr>\n");
        }
    };
    let mut params: BTreeMap<&String, Vec<Option<String>>> = BTreeMap::new();
    let mut metrics: BTreeMap<&String, Vec<Option<String>>> = BTreeMap::new();
    let n = report.runs.len();
    for (i, (record, _)) in report.runs.iter().enumerate() {
        for (k, v) in &record.params {
            params.entry(k).or_insert_with(|| vec![None; n])[i] = Some(v.to_string());
        }
        for (k, v) in &record.metrics {
            metrics.entry(k).or_insert_with(|| vec![None; n])[i] = Some(format_float(*v));
        }
    }
    section("params", params);
    section("metrics", metrics);
    body.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_each_buckets_extremes_in_step_order() {
        let points: Vec<Point> = (0..10_000)
            .map(|i| {
                Point(
                    i,
                    if i == 5_001 {
                        99.0
                    } else {
                        1.0 / f64::from(i as i32 + 1)
                    },
                    String::new(),
                )
            })
            .collect();
        let drawn = downsample(&points, 100);
        assert!(drawn.len() <= 200, "{}", drawn.len());
        assert!(drawn.iter().any(|p| p.1 > 98.0), "the spike is kept");
        assert!(drawn.windows(2).all(|w| w[0].0 <= w[1].0), "in step order");
        assert_eq!(
            downsample(&[Point(0, f64::NAN, String::new())], 100),
            vec![]
        );
    }

    #[test]
    fn record_text_is_never_markup() {
        assert_eq!(
            escape("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
        assert_eq!(svg_safe("a<b>\"c"), "a?b??c");
    }
}
