//! What a removal prints on stderr, for `rm` and for `gc --policy`.

use crate::ops::rm::Outcome;

/// Returns the status lines of a removal: one per version, then what follows.
/// `policy` says the versions were the retention policy's choice.
pub fn status_lines(outcome: &Outcome, dry_run: bool, policy: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let nothing =
        outcome.removed.is_empty() && outcome.runs.is_empty() && outcome.already_removed.is_empty();
    if nothing && policy {
        lines.push("The retention policy keeps every version; nothing to remove.".to_owned());
    } else if nothing {
        lines.push("Nothing to remove.".to_owned());
    }
    for row in &outcome.removed {
        let emptied = if row.emptied.is_empty() {
            String::new()
        } else {
            format!(", emptying {}", row.emptied.join(" and "))
        };
        let verb = if dry_run { "Would remove" } else { "Removed" };
        lines.push(format!("{verb} {}@{}{emptied}.", row.model, row.version));
    }
    for row in &outcome.runs {
        let verb = if dry_run { "Would remove" } else { "Removed" };
        lines.push(format!(
            "{verb} run {} (experiment {}).",
            row.run, row.experiment
        ));
    }
    for kept in &outcome.kept_runs {
        lines.push(format!(
            "Kept run {}: {} came from it.",
            kept.run,
            kept.versions.join(" and ")
        ));
    }
    for reference in &outcome.already_removed {
        lines.push(format!("{reference} was removed before; nothing to do."));
    }
    if dry_run {
        lines.push("Dry run: nothing was written.".to_owned());
    } else if !outcome.removed.is_empty() || !outcome.runs.is_empty() {
        lines.push("`mreg gc` frees the files no surviving version or run holds.".to_owned());
    }
    lines
}
