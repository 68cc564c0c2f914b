//! `mreg show`: print a version record (optionally with its files) or a run record
//! (optionally with its metric series).

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, output, show_run};
use crate::error::Failure;
use crate::refspec::ModelRef;
use crate::store::materialize;
use crate::store::{ObjectId, models, runs, stages};

/// Print a model version's record or a run's record (TOML, or JSON with --json)
///
/// A run is named by its id or a unique prefix of 4 or more hex digits; anything with
/// an '@', or naming a model, is a version. A run is shown with every logged event
/// folded in; its series are summarized (count, last, min, max) unless --series.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg show churn@3
  mreg show churn@production
  mreg show churn --files
  mreg show churn@latest --json | jq -r .tree
  mreg show 3f9a0c1e
  mreg show 3f9a0c1e --series loss
  mreg show 3f9a0c1e --json | jq .metrics")]
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
}

#[derive(Serialize)]
struct FileRow {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    kind: &'static str,
    size: u64,
    hash: ObjectId,
}

#[derive(Serialize)]
struct Outcome {
    /// The record as JSON, by way of TOML so that NaN metrics stay `"NaN"`.
    #[serde(flatten)]
    record: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_list: Option<Vec<FileRow>>,
}

/// Runs `mreg show`.
pub fn run(ctx: &Ctx, args: &ShowArgs) -> Result<()> {
    let reg = ctx.registry()?;
    if let Some(id) = runs::named(&reg, &args.reference)? {
        if args.files {
            return Err(Failure::usage(format!(
                "{} is a run; --files lists a version's files",
                args.reference
            ))
            .hint("`mreg show NAME@N --files` lists the files of a version")
            .into());
        }
        return show_run::show(ctx, &reg, &id, args.series.as_deref());
    }
    if args.series.is_some() {
        return Err(Failure::usage(format!(
            "{} is not a run; --series shows a run's metric series",
            args.reference
        ))
        .hint("give a run id, as `mreg runs` lists them")
        .into());
    }
    let reference = ModelRef::parse(&args.reference)?;
    let record = models::resolve(&reg, &reference)?;
    let file_list = if args.files {
        let plan = materialize::plan(&reg, record.tree)?;
        let mut rows: Vec<FileRow> = plan
            .files
            .iter()
            .map(|f| FileRow {
                path: f.path.clone(),
                target: None,
                kind: if f.exec { "exec" } else { "file" },
                size: f.size,
                hash: f.id,
            })
            .chain(plan.links.iter().map(|(path, target)| FileRow {
                path: path.clone(),
                target: Some(target.clone()),
                kind: "link",
                size: target.len() as u64,
                hash: ObjectId::of(target.as_bytes()),
            }))
            .collect();
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        Some(rows)
    } else {
        None
    };
    let held: Vec<String> = match stages::current(&reg, &record.model)? {
        Some((_, state)) => reg
            .config()?
            .stage_names()
            .into_iter()
            .filter(|s| state.holder(s) == Some(record.version))
            .collect(),
        None => Vec::new(),
    };
    let mut toml = record.to_toml()?;
    if !held.is_empty() {
        toml = format!("# holds stage: {}\n{toml}", held.join(", "));
    }
    let mut json = output::json_of_manifest(&record)?;
    if let Some(object) = json.as_object_mut() {
        object.insert("stages".to_owned(), held.into());
    }
    let outcome = Outcome {
        record: json,
        file_list,
    };
    ctx.out.emit(&outcome, || {
        let mut text = toml;
        if let Some(rows) = &outcome.file_list {
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
