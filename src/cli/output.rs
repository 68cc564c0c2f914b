//! Output: data on stdout as text or JSON, status and progress on stderr.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::ColorChoice;
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
pub struct Printer {
    json: bool,
    quiet: bool,
    progress: bool,
    color: bool,
    stdout_color: bool,
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
        }
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

    /// Prints `value` as JSON, or the text `text` makes, on stdout.
    pub fn emit<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        let mut body = if self.json {
            serde_json::to_string_pretty(value)?
        } else {
            text()
        };
        if !body.is_empty() && !body.ends_with('\n') {
            body.push('\n');
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(body.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }

    /// Prints a status sentence on stderr, unless `--quiet`.
    pub fn status(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// Prints a warning on stderr, even with `--quiet`.
    pub fn warn(&self, line: &str) {
        let label = if self.color {
            "\x1b[1;33mwarning:\x1b[0m"
        } else {
            "warning:"
        };
        eprintln!("{label} {line}");
    }

    /// Prints what to do next on stderr, after a warning, even with `--quiet`.
    pub fn hint(&self, line: &str) {
        eprintln!("hint: {line}");
    }

    /// Returns a progress reporter: a bar on a terminal, nothing otherwise.
    pub fn progress(&self) -> Bar {
        Bar {
            bar: self.progress.then(ProgressBar::hidden),
        }
    }
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
}

/// Returns rows laid out in aligned columns under a header, without borders.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
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
