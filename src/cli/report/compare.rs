//! The table `mreg compare` (and `mreg runs --compare`) prints: params and metrics of
//! many versions or runs, a column each, the best value of each metric marked.

use anyhow::Result;

use super::super::Ctx;
use super::{Block, Cell, Report, Tone, markdown, text};
use crate::diff::Side;
use crate::diff::compare::{CompareRow, Section, Table};
use crate::ops::diff::Compared;

/// Prints the table comparing `sides` (text, Markdown or JSON).
pub fn print(ctx: &Ctx, compared: &Compared, sides: &[Side], all: bool, md: bool) -> Result<()> {
    let table = &compared.table;
    let shown = render(table, sides, all);
    let color = ctx.out.stdout_color();
    if md {
        ctx.out.emit(&(), || markdown(&shown))
    } else {
        ctx.out.emit_painted(table, || text(&shown, color))
    }
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
