//! `mreg show`: print a version record (optionally with its files) or a run record
//! (optionally with its metric series).

use std::fmt::Write as _;

use anyhow::Result;

use super::report::spark;
use super::{Ctx, output};
use crate::manifest::info::ModelInfo;
use crate::manifest::value::format_float;
use crate::ops::show::{self, RunView, Shown, VersionView};

/// Print a model version's record or a run's record (TOML, or JSON with --json)
///
/// A run is named by its id or a unique prefix of 4 or more hex digits; anything with
/// an '@', or naming a model, is a version. A run is shown with every logged event
/// folded in; its series are summarized (count, last, min, max) unless --series, and
/// drawn as sparklines after the record (ASCII outside a UTF-8 locale and with --color
/// never), and
/// the Python packages of its environment are listed after it (as `# name==version`
/// comments; `environment.python.package_list` in JSON). --lockfile prints the content
/// of a lock file the run recorded (requirements.txt, uv.lock…), for a run or for the run
/// a version came from.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg show churn@3
  mreg show churn@production
  mreg show churn --files
  mreg show churn@latest --json | jq -r .tree
  mreg show 3f9a0c1e
  mreg show 3f9a0c1e --series loss
  mreg show 3f9a0c1e --json | jq .metrics
  mreg show churn@production --lockfile requirements.txt   # what trained production
  mreg show 3f9a0c1e --json | jq -r '.environment.python.package_list.torch'")]
pub struct ShowArgs {
    /// A version (NAME, NAME@3, NAME@latest, NAME@production, NAME@<tree-hash prefix>) or a
    /// run id
    #[arg(value_name = "REF|RUN")]
    reference: String,
    /// Also list the version's files
    #[arg(long)]
    files: bool,
    /// Also list the points of the run's metric series (of KEY only, when given)
    #[arg(long, value_name = "KEY", num_args = 0..=1, default_missing_value = "")]
    series: Option<String>,
    /// Print the stored content of this lock file of the run (or of the version's run),
    /// as the run recorded it: requirements.txt, uv.lock, poetry.lock…
    #[arg(long, value_name = "NAME", conflicts_with_all = ["files", "series"])]
    lockfile: Option<String>,
}

/// Runs `mreg show`.
pub fn run(ctx: &Ctx, args: &ShowArgs) -> Result<()> {
    let reg = ctx.registry()?;
    if let Some(name) = &args.lockfile {
        if ctx.out.is_json() {
            return Err(crate::error::Failure::usage(
                "--lockfile prints the file as it is and has no JSON form",
            )
            .hint("leave out --json")
            .into());
        }
        let (_, bytes) = show::lockfile(&reg, &args.reference, name)?;
        let text = String::from_utf8_lossy(&bytes);
        return ctx.out.emit(&(), || text.trim_end_matches('\n').to_owned());
    }
    let curves = !ctx.out.is_json();
    match show::show(
        &reg,
        &args.reference,
        args.files,
        args.series.as_deref(),
        curves,
    )? {
        Shown::Run(view) => show_run(ctx, &view),
        Shown::Version(view) => show_version(ctx, &view),
    }
}

/// Returns the comment line that says when, by whom and why something was removed.
fn removed_line(time: &str, actor: &str, reason: Option<&str>) -> String {
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    format!("# removed at {time} by {actor}{why}\n")
}

fn show_version(ctx: &Ctx, view: &VersionView) -> Result<()> {
    let mut toml = view.record.to_toml()?;
    for (stage, keys) in view.signed.approvals.iter().rev() {
        toml = format!(
            "# approved for {stage} by {} (keys {}; `mreg promote` checks them)\n{toml}",
            output::count(keys.len() as u64, "key"),
            keys.join(", ")
        );
    }
    if !view.signed.signatures.is_empty() {
        toml = format!(
            "# signed by {} (keys {}; `mreg verify` checks them)\n{toml}",
            output::count(view.signed.signatures.len() as u64, "key"),
            view.signed.signatures.join(", ")
        );
    }
    if !view.held.is_empty() {
        toml = format!("# holds stage: {}\n{toml}", view.held.join(", "));
    }
    if let Some(removal) = &view.removal {
        toml = format!(
            "{}# it no longer pulls; `mreg gc` frees what no other version or run holds\n{toml}",
            removed_line(&removal.time, &removal.actor, removal.reason.as_deref())
        );
    }
    if view.whole_model {
        if let Ok(info) = &view.info {
            super::model::warn_left_out(ctx, &info.refused);
        }
        toml = format!("{}{toml}", model_fields(&view.record.model, &view.info));
    }
    ctx.out.emit(&view.json()?, || {
        let mut text = toml;
        if let Some(rows) = &view.files {
            text.push('\n');
            let cells = rows
                .iter()
                .map(|r| {
                    vec![
                        r.kind.to_owned(),
                        output::bytes(r.size),
                        r.hash.short(12),
                        match &r.target {
                            Some(target) => format!("{} -> {target}", r.path),
                            None => r.path.clone(),
                        },
                    ]
                })
                .collect();
            text.push_str(&output::table(&["KIND", "SIZE", "HASH", "PATH"], cells));
        }
        text
    })
}

/// Returns a model's own fields as comment lines, before its newest version's record.
fn model_fields(model: &str, info: &Result<ModelInfo, String>) -> String {
    let info = match info {
        Ok(info) if info.changes == 0 => return String::new(),
        Ok(info) => info,
        Err(why) => return format!("# model {model}: its fields cannot be read: {why}\n"),
    };
    let mut text = format!("# model {model}\n");
    for field in info.fields.present() {
        let name = field.as_str().replace('_', " ");
        match info.fields.text(field) {
            Some(value) if value.contains('\n') => {
                let _ = writeln!(text, "#   {name}:");
                for line in value.lines() {
                    let _ = writeln!(text, "#     {line}");
                }
            }
            Some(value) => {
                let _ = writeln!(text, "#   {name}: {value}");
            }
            None => {
                let tags = info.fields.tags.clone().unwrap_or_default();
                let _ = writeln!(text, "#   {name}: {}", tags.join(", "));
            }
        }
    }
    if let (Some(time), Some(actor)) = (&info.updated, &info.updated_by) {
        let _ = writeln!(
            text,
            "#   ({}, the newest at {time} by {actor}: `mreg model log {model}`)",
            output::count(info.changes as u64, "change")
        );
    }
    text.push_str("# newest version:\n");
    text
}

/// Prints a run: its record, then a table of each series asked for.
fn show_run(ctx: &Ctx, view: &RunView) -> Result<()> {
    if ctx.out.is_json() {
        return ctx.out.emit(&view.json()?, String::new);
    }
    let mut text = view.summary.to_toml()?;
    if let Some(removal) = &view.removal {
        text = format!(
            "{}# it no longer lists, compares or takes events; `mreg gc` frees its stored series and data\n{text}",
            removed_line(&removal.time, &removal.actor, removal.reason.as_deref())
        );
    }
    if !view.curves.is_empty() {
        let width = view
            .curves
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0);
        let _ = writeln!(text, "\n# Series:");
        for (key, values) in &view.curves {
            let _ = writeln!(
                text,
                "#   {key:<width$}  {}",
                spark::line(values, ctx.out.unicode())
            );
        }
    }
    match &view.packages {
        Some(Ok(packages)) => {
            let _ = writeln!(text, "\n# Python packages ({}):", packages.len());
            for (name, version) in packages {
                let _ = writeln!(text, "#   {name}=={version}");
            }
        }
        Some(Err(why)) => {
            let _ = writeln!(text, "\n# Python packages: the list cannot be read: {why}");
        }
        None => {}
    }
    for (key, list) in &view.points {
        let _ = writeln!(
            text,
            "\n# series {key}: {}",
            output::count(list.len() as u64, "point")
        );
        let cells = list
            .iter()
            .map(|p| vec![p.0.to_string(), format_float(p.1), p.2.clone()])
            .collect();
        text.push_str(&output::table(&["STEP", "VALUE", "TIME"], cells));
    }
    ctx.out.emit(&(), || text)
}
