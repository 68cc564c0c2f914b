//! The report `mreg diff` prints: a block per section, built from a [`Diff`]; and the
//! cells the compare table and the tensor tables share (marks, counts, values).

use super::super::output;
use super::tensors::tensor_block;
use super::{Block, Cell, Report, Tone};
use crate::diff::values::{SeriesBest, Verdict};
use crate::diff::{Change, Diff, FileChange, MetricRow, Side, TextRow, ValueRow};
use crate::manifest::Value;
use crate::manifest::value::format_float;

/// Returns the report of a diff whose rows are already filtered; with `files_wanted`,
/// a side that is a run says why no files were compared.
pub fn report(diff: &Diff, old: &Side, new: &Side, files_wanted: bool) -> Report {
    let mut blocks = Vec::new();
    blocks.extend(params(&diff.params));
    blocks.extend(metrics(&diff.metrics));
    if let Some(files) = &diff.files {
        blocks.extend(files_block(files));
    } else if files_wanted {
        let runs: Vec<String> = [old, new]
            .iter()
            .filter(|s| s.version.is_none())
            .map(|s| format!("{} is a run", s.label()))
            .collect();
        if !runs.is_empty() {
            blocks.push(Block {
                title: "files: not compared".to_owned(),
                notes: vec![Cell::toned(
                    format!("{}; only model versions have files", runs.join(" and ")),
                    Tone::Dim,
                )],
                ..Block::default()
            });
        }
    }
    for file in &diff.tensors {
        blocks.push(tensor_block(file));
    }
    for (title, noun, rows) in [
        ("source", "FIELD", &diff.source),
        ("data", "INPUT", &diff.data),
        ("parents", "MODEL", &diff.parents),
        ("environment", "FIELD", &diff.environment),
        ("packages", "PACKAGE", &diff.packages),
    ] {
        blocks.extend(text_block(title, noun, rows));
    }
    if !diff.package_problems.is_empty() {
        blocks.push(Block {
            title: "packages: not compared".to_owned(),
            notes: diff
                .package_problems
                .iter()
                .map(|p| Cell::toned(p.clone(), Tone::Bad))
                .collect(),
            ..Block::default()
        });
    }
    let footer = (!diff.differs).then(|| {
        format!(
            "No differences between {} and {}.",
            diff.old.label, diff.new.label
        )
    });
    Report {
        title: format!("diff {} → {}", diff.old.label, diff.new.label),
        heading: vec![describe(Some("old"), old), describe(Some("new"), new)],
        blocks,
        footer,
    }
}

/// Returns a line describing a side: `old  churn@3  tree …  run 3f9a0c1e  pushed … by …`,
/// with `which` in front when given.
pub fn describe(which: Option<&str>, side: &Side) -> String {
    let mut parts: Vec<String> = which.map(str::to_owned).into_iter().collect();
    if let Some(v) = &side.version {
        parts.push(v.reference());
        if side.given != v.reference() {
            parts.push(format!("({})", side.given));
        }
        parts.push(format!("tree {}", v.tree.0.short(12)));
        if let Some(run) = &v.run {
            parts.push(format!("run {}", run.short()));
        }
        parts.push(format!("pushed {} by {}", v.created, v.actor));
    } else if let Some(r) = &side.run {
        parts.push(format!("run {}", r.id.short()));
        if let Some(name) = &r.name {
            parts.push(format!("({name})"));
        }
        parts.push(format!("experiment {}", r.experiment));
        parts.push(format!("started {} by {}", r.start, r.actor));
    }
    parts.join("  ")
}

/// Returns the mark of a change: `+`, `-`, `~`, or nothing.
pub(super) fn mark(change: Change) -> Cell {
    match change {
        Change::Added => Cell::toned("+", Tone::Added),
        Change::Removed => Cell::toned("-", Tone::Removed),
        Change::Changed => Cell::toned("~", Tone::Changed),
        Change::Same => Cell::plain(""),
    }
}

/// Returns `3 changed, 1 added` for the changes of a section's rows.
pub(super) fn counts(changes: impl Iterator<Item = &'static str>) -> String {
    let mut tally: Vec<(&str, usize)> = Vec::new();
    for c in changes {
        match tally.iter_mut().find(|(name, _)| *name == c) {
            Some((_, n)) => *n += 1,
            None => tally.push((c, 1)),
        }
    }
    tally.sort_by_key(|(name, _)| {
        [
            "changed", "modified", "added", "removed", "renamed", "retyped", "reshaped", "same",
        ]
        .iter()
        .position(|k| k == name)
    });
    let parts: Vec<String> = tally.iter().map(|(c, n)| format!("{n} {c}")).collect();
    parts.join(", ")
}

pub(super) fn change_word(change: Change) -> &'static str {
    match change {
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Changed => "changed",
        Change::Same => "same",
    }
}

/// Returns a value as a cell shows it; with `quote`, text is quoted, so that `"3"` and
/// `3` read apart where a row's values differ in type.
pub fn value_text(value: Option<&Value>, quote: bool) -> String {
    match value {
        Some(Value::Str(s)) if quote => format!("{s:?}"),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// Returns whether the values present differ in type (text against a number, say).
pub fn mixed_types<'a>(values: impl IntoIterator<Item = Option<&'a Value>>) -> bool {
    let mut kinds = values.into_iter().flatten().map(std::mem::discriminant);
    let first = kinds.next();
    kinds.any(|k| Some(k) != first)
}

fn params(rows: &[ValueRow]) -> Option<Block> {
    if rows.is_empty() {
        return None;
    }
    Some(Block {
        title: format!(
            "params: {}",
            counts(rows.iter().map(|r| change_word(r.change)))
        ),
        header: vec![String::new(), "PARAM".into(), "OLD".into(), "NEW".into()],
        right: Vec::new(),
        rows: rows
            .iter()
            .map(|r| {
                let quote = mixed_types([r.old.as_ref(), r.new.as_ref()]);
                vec![
                    mark(r.change),
                    Cell::plain(&r.key),
                    Cell::plain(value_text(r.old.as_ref(), quote)),
                    Cell::plain(value_text(r.new.as_ref(), quote)),
                ]
            })
            .collect(),
        notes: Vec::new(),
    })
}

/// Returns a float with at most 6 significant digits, for deltas: `0.031`, `-1.25e-7`.
pub fn short_float(f: f64) -> String {
    if !f.is_finite() {
        return format_float(f);
    }
    if f == 0.0 {
        return "0".to_owned();
    }
    let magnitude = f.abs().log10().floor() as i32;
    if !(-4..15).contains(&magnitude) {
        return format!("{f:.5e}");
    }
    let decimals = (5 - magnitude).max(0) as usize;
    let text = format!("{f:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn signed(f: f64) -> String {
    let text = short_float(f);
    if f > 0.0 { format!("+{text}") } else { text }
}

/// Returns a relative change as a percentage: `+3.56%`, `-12.5%`, `+250%`.
fn relative_text(relative: f64) -> String {
    let p = relative * 100.0;
    if p != 0.0 && p.abs() < 0.005 {
        return if p > 0.0 { "+<0.01%" } else { "-<0.01%" }.to_owned();
    }
    let text = if p.abs() >= 100.0 {
        format!("{p:+.0}%")
    } else if p.abs() >= 10.0 {
        format!("{p:+.1}%")
    } else {
        format!("{p:+.2}%")
    };
    text.replace("+-", "-")
}

fn best_text(best: Option<&SeriesBest>) -> String {
    best.map(|b| format!("{} (step {})", format_float(b.best.0), b.step))
        .unwrap_or_default()
}

fn metrics(rows: &[MetricRow]) -> Option<Block> {
    if rows.is_empty() {
        return None;
    }
    let series = rows
        .iter()
        .any(|r| r.old_series.is_some() || r.new_series.is_some());
    let mut header: Vec<String> = ["", "METRIC", "OLD", "NEW", "DELTA", "REL", ""]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if series {
        header.push("BEST OLD".into());
        header.push("BEST NEW".into());
    }
    let cells = rows
        .iter()
        .map(|r| {
            let (verdict, tone) = match r.verdict {
                Some(Verdict::Better) => ("better", Tone::Good),
                Some(Verdict::Worse) => ("worse", Tone::Bad),
                _ => ("", Tone::Plain),
            };
            let mut line = vec![
                mark(r.change),
                Cell::plain(&r.key),
                Cell::plain(r.old.map(|v| format_float(v.0)).unwrap_or_default()),
                Cell::plain(r.new.map(|v| format_float(v.0)).unwrap_or_default()),
                Cell::toned(r.delta.map(|d| signed(d.0)).unwrap_or_default(), tone),
                Cell::toned(
                    r.relative.map(|d| relative_text(d.0)).unwrap_or_default(),
                    tone,
                ),
                Cell::toned(verdict, tone),
            ];
            if series {
                line.push(Cell::plain(best_text(r.old_series.as_ref())));
                line.push(Cell::plain(best_text(r.new_series.as_ref())));
            }
            line
        })
        .collect();
    Some(Block {
        title: format!(
            "metrics: {}",
            counts(rows.iter().map(|r| change_word(r.change)))
        ),
        header,
        right: vec![2, 3, 4, 5],
        rows: cells,
        notes: Vec::new(),
    })
}

fn file_word(change: FileChange) -> &'static str {
    match change {
        FileChange::Added => "added",
        FileChange::Removed => "removed",
        FileChange::Modified => "modified",
        FileChange::Renamed => "renamed",
        FileChange::Same => "same",
    }
}

fn files_block(files: &crate::diff::FilesDiff) -> Option<Block> {
    if files.entries.is_empty() {
        return None;
    }
    let size = |f: Option<&crate::diff::files::FileSide>| {
        f.map(|f| output::bytes(f.size)).unwrap_or_default()
    };
    let rows = files
        .entries
        .iter()
        .map(|r| {
            let mark = match r.change {
                FileChange::Added => Cell::toned("+", Tone::Added),
                FileChange::Removed => Cell::toned("-", Tone::Removed),
                FileChange::Modified => Cell::toned("~", Tone::Changed),
                FileChange::Renamed => Cell::toned(">", Tone::Changed),
                FileChange::Same => Cell::plain(""),
            };
            let path = match &r.old_path {
                Some(from) => format!("{from} → {}", r.path),
                None => r.path.clone(),
            };
            let note = match (r.change, &r.old, &r.new) {
                (FileChange::Renamed, _, _) => "same content".to_owned(),
                (FileChange::Modified, Some(a), Some(b)) if a.kind != b.kind => {
                    format!("{} → {}", a.kind, b.kind)
                }
                (_, Some(a), _) | (_, None, Some(a)) if a.kind != "file" => a.kind.to_owned(),
                _ => String::new(),
            };
            vec![
                mark,
                Cell::plain(path),
                Cell::plain(size(r.old.as_ref())),
                Cell::plain(size(r.new.as_ref())),
                Cell::toned(note, Tone::Dim),
            ]
        })
        .collect();
    Some(Block {
        title: format!(
            "files: {}",
            counts(files.entries.iter().map(|r| file_word(r.change)))
        ),
        header: vec![
            String::new(),
            "PATH".into(),
            "OLD".into(),
            "NEW".into(),
            String::new(),
        ],
        right: vec![2, 3],
        rows,
        notes: Vec::new(),
    })
}

/// Returns text with every run of 20 or more hex digits (hashes, commits) cut to 12.
fn short_hashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 20 {
            out.push_str(&run[..12]);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn text_block(title: &str, noun: &str, rows: &[TextRow]) -> Option<Block> {
    if rows.is_empty() {
        return None;
    }
    Some(Block {
        title: format!(
            "{title}: {}",
            counts(rows.iter().map(|r| change_word(r.change)))
        ),
        header: vec![String::new(), noun.into(), "OLD".into(), "NEW".into()],
        right: Vec::new(),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    mark(r.change),
                    Cell::plain(&r.key),
                    Cell::plain(short_hashes(r.old.as_deref().unwrap_or_default())),
                    Cell::plain(short_hashes(r.new.as_deref().unwrap_or_default())),
                ]
            })
            .collect(),
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_read_short() {
        assert_eq!(short_float(0.031_000_000_000_000_028), "0.031");
        assert_eq!(short_float(-0.03), "-0.03");
        assert_eq!(short_float(1234.5678), "1234.57");
        assert_eq!(short_float(2.0), "2");
        assert_eq!(short_float(1.25e-7), "1.25000e-7");
        assert_eq!(signed(0.5), "+0.5");
        assert_eq!(relative_text(0.035_591), "+3.56%");
        assert_eq!(relative_text(-0.125), "-12.5%");
        assert_eq!(relative_text(2.5), "+250%");
        assert_eq!(relative_text(0.0), "+0.00%");
        assert_eq!(relative_text(-1e-7), "-<0.01%");
    }

    #[test]
    fn long_hex_runs_are_cut() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(short_hashes(commit), "0123456789ab");
        assert_eq!(
            short_hashes(&format!("file blake3:{} 10 bytes", "ab".repeat(32))),
            "file blake3:abababababab 10 bytes"
        );
        assert_eq!(short_hashes("550.54.15"), "550.54.15");
    }
}
