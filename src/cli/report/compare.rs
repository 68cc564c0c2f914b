//! The table `mreg compare` (and `mreg runs --compare`) prints: params and metrics of
//! many versions or runs, a column each, the best value of each metric marked.

use anyhow::Result;

use super::super::Ctx;
use super::{Block, Cell, Report, Tone, markdown, spark, text};
use crate::diff::Side;
use crate::diff::compare::{CompareRow, Section, Table};
use crate::ops::diff::Compared;
use crate::store::{Registry, runs};

/// How wide a series is drawn in a comparison's column.
const CURVE_WIDTH: usize = 16;

/// Prints the table comparing `sides` (text, Markdown or JSON); in text, each series of
/// the sides' runs drawn, a sparkline per side, under the table.
pub fn print(
    ctx: &Ctx,
    reg: &Registry,
    compared: &Compared,
    sides: &[Side],
    all: bool,
    md: bool,
) -> Result<()> {
    let table = &compared.table;
    let mut shown = render(table, sides, all);
    if !md && !ctx.out.is_json() {
        shown.blocks.extend(curves(reg, sides, ctx.out.unicode()));
    }
    let color = ctx.out.stdout_color();
    if md {
        ctx.out.emit(&(), || markdown(&shown))
    } else {
        ctx.out.emit_painted(table, || text(&shown, color))
    }
}

/// Returns the block drawing each series any side's run has, a column per side; a side
/// whose run lacks it, or whose points are over what one command reads, is blank.
fn curves(reg: &Registry, sides: &[Side], unicode: bool) -> Option<Block> {
    let mut keys: Vec<&String> = sides
        .iter()
        .filter_map(|s| s.run.as_ref())
        .flat_map(|r| r.series.keys())
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return None;
    }
    let mut budget = runs::SeriesBudget::new();
    let rows = keys
        .iter()
        .map(|key| {
            let mut line = vec![Cell::plain(key.as_str())];
            for side in sides {
                let drawn = side
                    .run
                    .as_ref()
                    .and_then(|r| r.series.get(*key))
                    .and_then(|s| runs::load_points(reg, &s.chunk, &mut budget).ok())
                    .map(|points| {
                        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
                        spark::sparkline(&values, CURVE_WIDTH, unicode)
                    })
                    .unwrap_or_default();
                line.push(Cell::plain(drawn));
            }
            line
        })
        .collect();
    let mut header = vec!["SERIES".to_owned()];
    header.extend(sides.iter().map(|s| s.given.clone()));
    Some(Block {
        title: format!("series: {}", keys.len()),
        header,
        right: Vec::new(),
        rows,
        notes: Vec::new(),
    })
}

fn render(table: &Table, sides: &[Side], all: bool) -> Report {
    // Columns are headed as the user named them (churn@production); the heading lines
    // say which version each resolved to.
    let labels: Vec<String> = table.columns.iter().map(|c| c.given.clone()).collect();
    let mut blocks = Vec::new();
    for (section, title, noun) in [
        (Section::Params, "params", "PARAM"),
        (Section::Metrics, "metrics", "METRIC"),
    ] {
        let rows: Vec<&CompareRow> = table.rows.iter().filter(|r| r.section == section).collect();
        if rows.is_empty() {
            continue;
        }
        let mut header = vec![noun.to_owned()];
        header.extend(labels.iter().cloned());
        let numeric = section == Section::Metrics;
        let cells = rows
            .iter()
            .map(|row| {
                let mut line = vec![Cell::plain(&row.key)];
                let quote = super::diff::mixed_types(row.values.iter().map(Option::as_ref));
                for (i, value) in row.values.iter().enumerate() {
                    let text = super::diff::value_text(value.as_ref(), quote);
                    // Metric values leave room for the best mark, so numbers line up.
                    line.push(if row.best.contains(&i) {
                        Cell::toned(format!("{text} *"), Tone::Best)
                    } else if numeric && !text.is_empty() {
                        Cell::plain(format!("{text}  "))
                    } else {
                        Cell::plain(text)
                    });
                }
                line
            })
            .collect();
        let differing = rows.iter().filter(|r| !r.same).count();
        blocks.push(Block {
            title: if all {
                format!("{title}: {differing} of {} differ", rows.len())
            } else {
                format!("{title}: {differing} differ")
            },
            header,
            right: if numeric {
                (1..=labels.len()).collect()
            } else {
                Vec::new()
            },
            rows: cells,
            notes: Vec::new(),
        });
    }
    let footer = blocks.is_empty().then(|| {
        if table.rows.is_empty() && all {
            "No params or metrics on any side.".to_owned()
        } else {
            "Every param and metric is the same on every side.".to_owned()
        }
    });
    Report {
        title: format!("compare {}", labels.join(" ")),
        heading: sides
            .iter()
            .map(|s| super::diff::describe(None, s))
            .collect(),
        blocks,
        footer,
    }
}
