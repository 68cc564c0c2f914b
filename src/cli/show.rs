//! `mreg show`: print a version record, and optionally its files.

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, output};
use crate::manifest::VersionRecord;
use crate::refspec::ModelRef;
use crate::store::materialize;
use crate::store::{ObjectId, models};

/// Print a model version's record (TOML, or JSON with --json)
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  mreg show churn@3\n  mreg show churn --files\n  mreg show churn@latest --json | jq -r .tree"
)]
pub struct ShowArgs {
    /// The version: NAME, NAME@3, NAME@v3, NAME@latest or NAME@<tree-hash prefix>
    #[arg(value_name = "REF")]
    reference: String,
    /// Also list the version's files
    #[arg(long)]
    files: bool,
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
    #[serde(flatten)]
    record: VersionRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_list: Option<Vec<FileRow>>,
}

/// Runs `mreg show`.
pub fn run(ctx: &Ctx, args: &ShowArgs) -> Result<()> {
    let reference = ModelRef::parse(&args.reference)?;
    let reg = ctx.registry()?;
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
    let toml = record.to_toml()?;
    let outcome = Outcome { record, file_list };
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
