//! `mreg compare A B C…`: params and metrics of many versions or runs in one table.

use anyhow::Result;

use super::{Ctx, diff_report, report};
use crate::diff::compare::{self, CompareRow, Section, Table};
use crate::diff::{Goals, Side};
use crate::error::{EXIT_ERROR, EXIT_OK};
use crate::store::Registry;

/// Compare the params and metrics of versions or runs, a column each
///
/// Each side is a version (churn@3, churn@production) or a run id (or a unique prefix
/// of 4 or more hex digits). Rows are params, then metrics; only rows that differ are
/// shown unless --all. The best value of each metric is marked with '*' (and in
/// color on a terminal). `mreg runs --where … --compare` compares the runs a query
/// finds.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg compare churn@production churn@staging churn@latest
  mreg compare 3f9a0c1e 7b2d4e6f 0c55aa12 --all
  mreg compare churn@3 churn@4 --md >> \"$GITHUB_STEP_SUMMARY\"
  mreg compare churn@3 churn@4 --json | jq '.rows[] | select(.section == \"metrics\")'
  mreg runs --experiment churn --where 'acc > 0.8' --limit 5 --compare

Metrics whose name has a word like loss, error, latency or ms are best when lowest,
all others when highest; [metrics] minimize/maximize in config.toml overrides that.")]
pub struct CompareArgs {
    /// Two or more versions (NAME@N, NAME@STAGE) or run ids
    #[arg(value_name = "REF|RUN", num_args = 2.., required = true)]
    sides: Vec<String>,
    /// Show rows that are the same on every side too
    #[arg(long)]
    all: bool,
    /// Print Markdown, for pull-request comments and CI step summaries
    #[arg(long)]
    md: bool,
    /// Exit 1 when any row differs (and 0 when none does)
    #[arg(long)]
    exit_code: bool,
}

/// Runs `mreg compare`.
pub fn run(ctx: &Ctx, args: &CompareArgs) -> Result<u8> {
    report::refuse_md_with_json(ctx, args.md)?;
    let reg = ctx.registry()?;
    let sides = args
        .sides
        .iter()
        .map(|text| Side::load(&reg, text))
        .collect::<Result<Vec<_>>>()?;
    let differs = print(ctx, &reg, &sides, args.all, args.md)?;
    Ok(if args.exit_code && differs {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// Prints the table comparing `sides` (text, Markdown or JSON) and returns whether any
/// row differs.
pub fn print(ctx: &Ctx, reg: &Registry, sides: &[Side], all: bool, md: bool) -> Result<bool> {
    let goals = Goals::new(&reg.config()?.metrics);
    let mut table = compare::compare(sides, &goals);
    let differs = table.rows.iter().any(|r| !r.same);
    if !all {
        table.retain_changed();
    }
    let shown = render(&table, sides, all);
    let color = ctx.out.stdout_color();
    if md {
        ctx.out.emit(&(), || report::markdown(&shown))?;
    } else {
        ctx.out.emit(&table, || report::text(&shown, color))?;
    }
    Ok(differs)
}

fn render(table: &Table, sides: &[Side], all: bool) -> report::Report {
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
                let mut line = vec![report::Cell::plain(&row.key)];
                let quote = diff_report::mixed_types(row.values.iter().map(Option::as_ref));
                for (i, value) in row.values.iter().enumerate() {
                    let text = diff_report::value_text(value.as_ref(), quote);
                    // Metric values leave room for the best mark, so numbers line up.
                    line.push(if row.best.contains(&i) {
                        report::Cell::toned(format!("{text} *"), report::Tone::Best)
                    } else if numeric && !text.is_empty() {
                        report::Cell::plain(format!("{text}  "))
                    } else {
                        report::Cell::plain(text)
                    });
                }
                line
            })
            .collect();
        let differing = rows.iter().filter(|r| !r.same).count();
        blocks.push(report::Block {
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
    report::Report {
        title: format!("compare {}", labels.join(" ")),
        heading: sides
            .iter()
            .map(|s| diff_report::describe(None, s))
            .collect(),
        blocks,
        footer,
    }
}
