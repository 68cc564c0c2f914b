//! Reports of titled tables, rendered as aligned text (colored on a terminal) or as
//! Markdown for pull-request comments and CI step summaries: what `diff` and `compare`
//! print.

pub mod card;
pub mod compare;
pub mod diff;
pub mod html;
pub mod spark;
mod tensors;
pub mod vega;

use std::fmt::Write as _;

use super::Ctx;
pub use super::output::visible;
use crate::error::Failure;

/// Returns how a stage move's checks went, `2 of 3 passed`; empty for none.
pub fn checks_passed(checks: &[crate::manifest::state::CheckRecord]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let passed = checks.iter().filter(|c| c.passed).count();
    format!("{passed} of {} passed", checks.len())
}

/// Refuses `--md` together with `--json`: both choose what stdout holds.
pub fn refuse_md_with_json(ctx: &Ctx, md: bool) -> Result<(), Failure> {
    if md && ctx.out.is_json() {
        return Err(
            Failure::usage("--md and --json both choose the output; give one")
                .hint("--json for scripts, --md for pull-request comments"),
        );
    }
    Ok(())
}

/// Returns what a cell's text means, which sets its color (text) or weight (Markdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Nothing special.
    Plain,
    /// Something only the new side has.
    Added,
    /// Something only the old side has.
    Removed,
    /// Something both sides have, changed.
    Changed,
    /// A change for the better, or the best value of a row.
    Good,
    /// A change for the worse.
    Bad,
    /// The best value of a row: bold in Markdown too.
    Best,
    /// Less important text.
    Dim,
}

impl Tone {
    fn ansi(self) -> Option<&'static str> {
        match self {
            Tone::Plain => None,
            Tone::Added | Tone::Good => Some("32"),
            Tone::Removed | Tone::Bad => Some("31"),
            Tone::Changed => Some("33"),
            Tone::Best => Some("1;32"),
            Tone::Dim => Some("2"),
        }
    }
}

/// Returns one cell: its text and tone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The text, as printed without color.
    pub text: String,
    /// What it means.
    pub tone: Tone,
}

impl Cell {
    /// Returns a plain cell.
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            tone: Tone::Plain,
        }
    }

    /// Returns a cell with a tone.
    pub fn toned(text: impl Into<String>, tone: Tone) -> Cell {
        Cell {
            text: text.into(),
            tone,
        }
    }
}

/// Returns one titled table.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// The title line: `params: 1 changed, 1 added`.
    pub title: String,
    /// Column headers; an empty header over the first column marks it as the change
    /// marks (`+`, `-`, `~`), which Markdown shows as is.
    pub header: Vec<String>,
    /// Columns aligned right (numbers), by index.
    pub right: Vec<usize>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
    /// Lines after the table: summaries and errors.
    pub notes: Vec<Cell>,
}

/// Returns a whole report: heading lines, then blocks.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The first line: what is compared.
    pub title: String,
    /// Lines under the title, describing the sides.
    pub heading: Vec<String>,
    /// The tables.
    pub blocks: Vec<Block>,
    /// A closing line, when nothing differs.
    pub footer: Option<String>,
}

fn width_of(text: &str) -> usize {
    visible(text).chars().count()
}

fn paint(cell: &Cell, color: bool, width: usize, right: bool) -> String {
    let shown = visible(&cell.text);
    let pad = width.saturating_sub(shown.chars().count());
    let (before, after) = if right { (pad, 0) } else { (0, pad) };
    let text = match cell.tone.ansi() {
        Some(code) if color && !shown.is_empty() => format!("\x1b[{code}m{shown}\x1b[0m"),
        _ => shown,
    };
    format!("{}{text}{}", " ".repeat(before), " ".repeat(after))
}

/// Returns the report as aligned text, with ANSI colors when `color`.
pub fn text(report: &Report, color: bool) -> String {
    let mut out = String::new();
    let bold = |s: &str| {
        if color {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let _ = writeln!(out, "{}", bold(&visible(&report.title)));
    for line in &report.heading {
        let _ = writeln!(out, "{}", visible(line));
    }
    for block in &report.blocks {
        let _ = writeln!(out, "\n{}", bold(&visible(&block.title)));
        let columns = block.header.len();
        let mut widths: Vec<usize> = block.header.iter().map(|h| width_of(h)).collect();
        if block.header.first().is_some_and(String::is_empty) {
            // The marks column keeps its place when no row is marked.
            widths[0] = widths[0].max(1);
        }
        for row in &block.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(width_of(&cell.text));
            }
        }
        let header: Vec<Cell> = block.header.iter().map(Cell::plain).collect();
        let has_header = block.header.iter().any(|h| !h.is_empty());
        let rows = has_header
            .then_some(&header)
            .into_iter()
            .chain(block.rows.iter());
        for row in rows {
            let mut line = String::from("  ");
            for (i, cell) in row.iter().enumerate().take(columns) {
                let last = i + 1 == columns;
                let right = block.right.contains(&i);
                let width = if last && !right { 0 } else { widths[i] };
                line.push_str(&paint(cell, color, width, right));
                if !last {
                    line.push_str("  ");
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        for note in &block.notes {
            let _ = writeln!(out, "  {}", paint(note, color, 0, false));
        }
    }
    if let Some(footer) = &report.footer {
        let _ = writeln!(out, "\n{footer}");
    }
    out
}

/// Returns text escaped for Markdown: every character Markdown or HTML could read as
/// markup is escaped, so a value shows as written and cannot break a table.
pub fn md_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in visible(text).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Returns the report as GitHub-flavored Markdown: a heading, then a table per block.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {}\n", md_cell(&report.title));
    for line in &report.heading {
        let _ = writeln!(out, "- {}", md_cell(line.trim()));
    }
    for block in &report.blocks {
        let _ = writeln!(out, "\n**{}**\n", md_cell(&block.title));
        if !block.rows.is_empty() {
            let header: Vec<String> = block.header.iter().map(|h| md_cell(h)).collect();
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let rule: Vec<&str> = (0..block.header.len())
                .map(|i| {
                    if block.right.contains(&i) {
                        "--:"
                    } else {
                        "---"
                    }
                })
                .collect();
            let _ = writeln!(out, "|{}|", rule.join("|"));
            for row in &block.rows {
                let cells: Vec<String> = row
                    .iter()
                    .map(|c| {
                        let text = md_cell(c.text.trim());
                        if c.tone == Tone::Best && !text.is_empty() {
                            format!("**{text}**")
                        } else {
                            text
                        }
                    })
                    .collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
        }
        if !block.notes.is_empty() {
            out.push('\n');
            for note in &block.notes {
                let _ = writeln!(out, "{}  ", md_cell(&note.text));
            }
        }
    }
    if let Some(footer) = &report.footer {
        let _ = writeln!(out, "\n{}", md_cell(footer));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            title: "a → b".into(),
            heading: vec!["old  a".into()],
            blocks: vec![Block {
                title: "metrics: 1 changed".into(),
                header: vec![String::new(), "METRIC".into(), "OLD".into(), "NEW".into()],
                right: vec![2, 3],
                rows: vec![vec![
                    Cell::toned("~", Tone::Changed),
                    Cell::plain("acc|top1"),
                    Cell::plain("0.9"),
                    Cell::toned("0.95", Tone::Best),
                ]],
                notes: vec![Cell::plain("one note")],
            }],
            footer: None,
        }
    }

    #[test]
    fn control_characters_are_shown_as_escapes() {
        assert_eq!(visible("a\x1b[31mred\nb\u{7}"), "a\\e[31mred\\nb\\u{7}");
        let mut report = sample();
        report.blocks[0].rows[0][1] = Cell::plain("\x1b[2J");
        assert!(!text(&report, false).contains('\x1b'));
    }

    #[test]
    fn text_aligns_columns_and_colors_only_when_asked() {
        let plain = text(&sample(), false);
        assert_eq!(
            plain,
            "a → b\nold  a\n\nmetrics: 1 changed\n     METRIC    OLD   NEW\n  ~  acc|top1  0.9  0.95\n  one note\n"
        );
        let colored = text(&sample(), true);
        assert!(colored.contains("\x1b[1;32m0.95\x1b[0m"), "{colored:?}");
        assert!(!plain.contains('\x1b'));
    }

    #[test]
    fn markdown_escapes_cells_and_bolds_the_best() {
        let md = markdown(&sample());
        assert!(md.contains("| \\~ | acc\\|top1 | 0.9 | **0.95** |"), "{md}");
        assert_eq!(
            md_cell("<img src=x> [a](b) __m__ `c` a\tb"),
            "&lt;img src=x&gt; \\[a\\](b) \\_\\_m\\_\\_ \\`c\\` a\\\\tb"
        );
        assert!(md.contains("|---|---|--:|--:|"), "{md}");
    }
}
