//! Output: data on stdout as text or JSON, status and progress on stderr.
//!
//! Text holds strings read from records, and a record may come from a remote: every
//! control character in text output (a terminal escape, a carriage return, a bell) is
//! written visibly as an escape (`\e`, `\r`, `\u{7}`), here, for every command. A table
//! cell shows its newlines as `\n` too, so a value cannot add rows; JSON stays exact.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::ColorChoice;
use crate::error::StdoutClosed;
pub use crate::lineage::shell_word;
use crate::store::Progress;

/// Returns whether color goes to stderr under `choice`.
pub fn stderr_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

/// Prints a command's results in the form the user asked for.
#[derive(Clone)]
pub struct Printer {
    json: bool,
    quiet: bool,
    progress: bool,
    color: bool,
    stdout_color: bool,
    unicode: bool,
}

impl Printer {
    /// Returns a printer for the given global flags.
    pub fn new(json: bool, quiet: bool, no_progress: bool, color: ColorChoice) -> Printer {
        let progress = !json && !quiet && !no_progress && std::io::stderr().is_terminal();
        Printer {
            json,
            quiet,
            progress,
            color: stderr_color(color),
            stdout_color: match color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                        && std::io::stdout().is_terminal()
                }
            },
            unicode: color != ColorChoice::Never && utf8_locale(&|name| std::env::var(name).ok()),
        }
    }

    /// Returns whether text may use characters beyond ASCII (sparkline blocks): not with
    /// `--color never`, which asks for plain output, nor outside a UTF-8 locale.
    pub fn unicode(&self) -> bool {
        self.unicode
    }

    /// Returns whether data printed on stdout may be colored: on a terminal, unless
    /// `NO_COLOR` or `--color never`.
    pub fn stdout_color(&self) -> bool {
        self.stdout_color && !self.json
    }

    /// Returns whether `--quiet` was given.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Returns whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as JSON, or the text `text` makes, on stdout; in text, every
    /// control character but the newline is written as an escape ([`visible_lines`]).
    pub fn emit<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        self.emit_text(value, || visible_lines(&text()))
    }

    /// Prints `value` as JSON, or the text `text` makes as it is, on stdout: for a report
    /// that colors its own text and has made every string of a record in it visible
    /// (`report::text`).
    pub fn emit_painted<T: Serialize>(
        &self,
        value: &T,
        text: impl FnOnce() -> String,
    ) -> Result<()> {
        self.emit_text(value, text)
    }

    fn emit_text<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        let mut body = if self.json {
            serde_json::to_string_pretty(value)?
        } else {
            text()
        };
        if !body.is_empty() && !body.ends_with('\n') {
            body.push('\n');
        }
        write_stdout(body.as_bytes())
    }

    /// Prints one line of data on stdout as it comes, for a command that prints as it
    /// goes (`demo`).
    pub fn line(&self, line: &str) -> Result<()> {
        write_stdout(format!("{}\n", visible_lines(line)).as_bytes())
    }

    /// Prints a status sentence on stderr, unless `--quiet`.
    pub fn status(&self, line: &str) {
        if !self.quiet {
            to_stderr(&visible_lines(line));
        }
    }

    /// Prints a warning on stderr, even with `--quiet`.
    pub fn warn(&self, line: &str) {
        let label = if self.color {
            "\x1b[1;33mwarning:\x1b[0m"
        } else {
            "warning:"
        };
        to_stderr(&format!("{label} {}", visible_lines(line)));
    }

    /// Prints an error on stderr, even with `--quiet`: for a command that reports
    /// several failures (the conflicts of a sync) and exits non-zero once they are told.
    pub fn error(&self, line: &str) {
        let label = if self.color {
            "\x1b[1;31merror:\x1b[0m"
        } else {
            "error:"
        };
        to_stderr(&format!("{label} {}", visible_lines(line)));
    }

    /// Prints what to do next on stderr, after a warning, even with `--quiet`.
    pub fn hint(&self, line: &str) {
        to_stderr(&format!("hint: {}", visible_lines(line)));
    }

    /// Returns a progress reporter: a bar on a terminal, nothing otherwise.
    pub fn progress(&self) -> Bar {
        Bar {
            bar: self.progress.then(ProgressBar::hidden),
        }
    }
}

/// Writes data to stdout. Every write of data goes through here, so that a stdout closed
/// by its reader is told apart from every other broken pipe: it is [`StdoutClosed`],
/// which `main` ends quietly with 0 on. Any other failure (a full disk under `>`) is an
/// error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(stdout_error)
}

/// Returns the error a failed write to stdout is.
fn stdout_error(err: std::io::Error) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(err).context("writing to stdout")
    }
}

/// Returns the outcome of a command that prints its data before it knows its outcome
/// (`promote` prints the checks, then refuses): a stdout closed by its reader leaves the
/// outcome as it is, since the command did what it did either way; any other failure
/// to print is the outcome, and `outcome` is not run.
pub fn after_print<T>(printed: Result<()>, outcome: impl FnOnce() -> Result<T>) -> Result<T> {
    match printed {
        Err(err) if !err.is::<StdoutClosed>() => Err(err),
        _ => outcome(),
    }
}

/// Writes a line to stderr. Status and warnings are for people; when nobody reads
/// stderr any more (`2>&1 | head`), they are dropped rather than failing the command.
pub fn to_stderr(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A progress bar on stderr, or nothing.
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>9} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_message(what.to_owned());
            bar.set_length(total);
            bar.set_position(0);
            bar.enable_steady_tick(Duration::from_millis(200));
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn phase(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{msg:>9} {spinner} {elapsed}")
                    .expect("the template is valid"),
            );
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
        }
    }
}

/// Returns text with control characters written as escapes (`\n`, `\t`, `\e`,
/// `\u{7f}`), so a value from a record can neither break a table nor drive the terminal.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    out
}

/// Returns text as [`visible`] writes it, but for its newlines and tabs, which are
/// kept: for text made of lines (a tab moves the cursor and does nothing else).
pub fn visible_lines(text: &str) -> String {
    let kept = |c: char| matches!(c, '\n' | '\t');
    if !text
        .chars()
        .any(|c| !kept(c) && (c.is_control() || is_bidi(c)))
    {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if kept(c) {
            out.push(c);
        } else {
            push_visible(&mut out, c);
        }
    }
    out
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\x1b' => out.push_str("\\e"),
        c if c.is_control() || is_bidi(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// Returns whether `c` reorders the text around it (Unicode bidirectional controls):
/// written raw, a record's text could show other words than it holds.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Returns rows laid out in aligned columns under a header, without borders. Each cell
/// is one line: its control characters, newlines included, are written visibly.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let rows = rows
        .into_iter()
        .map(|row| row.iter().map(|cell| visible(cell)).collect())
        .collect();
    layout(header, rows)
}

/// Returns rows laid out as [`table`] does, each cell made of lines (shown one under the
/// other), each line written visibly.
pub fn table_of_lines(header: &[&str], rows: Vec<Vec<Vec<String>>>) -> String {
    let rows = rows
        .into_iter()
        .map(|row| {
            row.iter()
                .map(|lines| {
                    lines
                        .iter()
                        .map(|l| visible(l))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect()
        })
        .collect();
    layout(header, rows)
}

fn layout(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(header.iter().copied());
    for row in rows {
        t.add_row(row);
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut out = String::new();
    for line in t.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Returns a byte count for people: `1.3 GiB`.
pub fn bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}

/// Returns `1 file`, `2 files`: a count with its noun.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Returns how long ago an RFC 3339 time was, for people: "just now", "4 minutes ago";
/// "at TIME" when it is in the future or cannot be read.
pub fn ago(time: &str) -> String {
    let (Ok(now), Ok(then)) = (crate::clock::now(), crate::clock::parse_time(time)) else {
        return format!("at {time}");
    };
    let Ok(elapsed) = now.duration_since(then) else {
        return format!("at {time}");
    };
    let s = elapsed.as_secs();
    match s {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} ago", count(s / 60, "minute")),
        3600..86_400 => format!("{} ago", count(s / 3600, "hour")),
        _ => format!("{} ago", count(s / 86_400, "day")),
    }
}

/// Returns whether the locale the variables name is UTF-8: the first of `LC_ALL`,
/// `LC_CTYPE` and `LANG` that is set decides (`C.UTF-8`, `en_US.utf8`); none set is the C
/// locale, which is not.
pub fn utf8_locale(getenv: &dyn Fn(&str) -> Option<String>) -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|name| getenv(name).filter(|v| !v.is_empty()))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

/// Returns seconds for people: `0.42s`, `12.3s`, `4m 05s`, `2h 03m`.
pub fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2}s")
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        let whole = s as u64;
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        let whole = s as u64;
        format!("{}h {:02}m", whole / 3600, (whole % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use anyhow::Result;

    use super::{after_print, stdout_error, table, table_of_lines, visible, visible_lines};
    use crate::error::{EXIT_ERROR, EXIT_GATE, Ending, Failure, StdoutClosed, ending};

    #[test]
    fn a_broken_pipe_on_stdout_is_stdout_closed_and_other_failures_are_errors() {
        let closed = stdout_error(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(closed.is::<StdoutClosed>());
        assert_eq!(ending(&closed), Ending::StdoutClosed);
        let full = stdout_error(io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(ending(&full), Ending::Failed(EXIT_ERROR));
        assert!(format!("{full:#}").starts_with("writing to stdout: "));
    }

    #[test]
    fn control_characters_are_written_visibly() {
        assert_eq!(visible("a\x1b[31mred\nb\u{7}"), "a\\e[31mred\\nb\\u{7}");
        assert_eq!(visible_lines("a\rb\nc\u{9b}\td"), "a\\rb\nc\\u{9b}\td");
        let t = table(&["A"], vec![vec!["x\ny\x1b[2J".to_owned()]]);
        assert_eq!(t, "A\nx\\ny\\e[2J\n");
        let t = table_of_lines(&["A"], vec![vec![vec!["x".to_owned(), "y\rz".to_owned()]]]);
        assert_eq!(t, "A\nx\ny\\rz\n");
        // Text that reorders what follows it is shown for what it is.
        assert_eq!(visible("ok \u{202e}gpj.exe"), "ok \\u{202e}gpj.exe");
        assert_eq!(visible_lines("a\u{2066}b\nc"), "a\\u{2066}b\nc");
        assert_eq!(visible("naïve ünïcode"), "naïve ünïcode");
    }

    #[test]
    fn a_closed_stdout_leaves_the_outcome_as_it_is() {
        let refused = || -> Result<()> { Err(Failure::gate("acc is 0.8").into()) };
        let closed = Err(StdoutClosed.into());
        assert_eq!(
            ending(&after_print(closed, refused).expect_err("refused")),
            Ending::Failed(EXIT_GATE)
        );
        assert_eq!(
            after_print(Err(StdoutClosed.into()), || Ok(7)).ok(),
            Some(7)
        );
        let full = Err(stdout_error(io::Error::from(io::ErrorKind::StorageFull)));
        let ran = std::cell::Cell::new(false);
        let printed = after_print(full, || {
            ran.set(true);
            Ok(())
        });
        assert!(printed.is_err() && !ran.get());
    }
}
