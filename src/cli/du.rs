//! `mreg du`: the bytes each model and the runs hold, what they share, what gc frees.

use anyhow::Result;

use super::{Ctx, output};
use crate::ops::du::{self, Outcome};

/// Show the stored bytes of each model and of the runs, and what `mreg gc` would free
///
/// SIZE is what a model's surviving versions (and the versions its stages hold) reach,
/// as stored on disk (compressed where stored compressed); UNIQUE is the part no other
/// model and no run reaches: what removing the whole model and collecting would free.
/// Reads every record, as gc does, and deletes nothing.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg du
  mreg du --json | jq '.rows[] | select(.kind == \"model\") | {name, bytes}'
  mreg du && mreg gc --dry-run

Exit codes: 0 done, 1 error (a record does not read), 2 usage error.")]
pub struct DuArgs {}

/// Runs `mreg du`.
pub fn run(ctx: &Ctx, _args: &DuArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let outcome = du::du(&reg)?;
    ctx.out.emit(&outcome, || table(&outcome))
}

/// Returns the table: one row per model, then the runs, then the totals.
fn table(outcome: &Outcome) -> String {
    let mut cells: Vec<Vec<String>> = outcome
        .rows
        .iter()
        .map(|r| {
            vec![
                // In parentheses, as the totals: a model may be named `runs`.
                if r.kind == "runs" {
                    "(runs)".to_owned()
                } else {
                    r.name.clone()
                },
                r.versions.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                r.objects.to_string(),
                output::bytes(r.bytes),
                output::bytes(r.unique_bytes),
            ]
        })
        .collect();
    for (name, amount) in [
        ("(shared)", &outcome.shared),
        ("(gc frees)", &outcome.reclaimable),
        ("(stored)", &outcome.stored),
    ] {
        cells.push(vec![
            name.to_owned(),
            "-".to_owned(),
            amount.count.to_string(),
            output::bytes(amount.bytes),
            "-".to_owned(),
        ]);
    }
    output::table(&["NAME", "VERSIONS", "OBJECTS", "SIZE", "UNIQUE"], cells)
}
