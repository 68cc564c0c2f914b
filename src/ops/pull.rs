//! Pulling a version: the objects the registry lacks fetched first (from the bucket of
//! a mirror, else the default remote), then the version materialized beside the target
//! and renamed into place, every byte verified. Two steps, so that what was fetched can
//! be told before the folder is written.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::error::Failure;
use crate::id::TreeId;
use crate::manifest::VersionRecord;
use crate::refspec::ModelRef;
use crate::remote::known::Known;
use crate::remote::settings::Settings;
use crate::store::materialize::{self, Options, Plan};
use crate::store::select::Select;
use crate::store::{Progress, Registry, models, read};

/// Returns what a pull did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The model.
    pub model: String,
    /// The version pulled.
    pub version: u64,
    /// `NAME@N`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Its tree hash.
    pub tree: TreeId,
    /// The folder written.
    pub path: String,
    /// Regular files written.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Whether only some paths were pulled (`--only`, `--exclude`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The version's files, for a partial pull.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of_files: Option<u64>,
    /// Links a partial pull wrote whose targets it left out (`PATH -> TARGET`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dangling_links: Vec<String>,
}

/// A version about to be pulled, its objects all in the registry.
pub struct Fetched {
    /// The version.
    pub record: VersionRecord,
    /// The remote missing objects were fetched from, and the bytes fetched.
    pub from: Option<(String, u64)>,
}

/// Resolves the version `reference` names and fetches the objects the registry lacks
/// (with `select`, those the paths it takes need).
pub fn fetch(
    reg: &Registry,
    reference: &ModelRef,
    select: Option<&Select>,
    progress: &dyn Progress,
) -> Result<Fetched> {
    let record = models::resolve(reg, reference)?;
    let from = fetch_missing(reg, record.tree, select, progress)?;
    Ok(Fetched { record, from })
}

/// Materializes a fetched version into `to`; `options` say whether a folder that is not
/// empty is replaced and whether files are flushed first. With `signature` (the start
/// of a signer's key hint, or empty for the only signer), the version's signature is
/// written as `model.sig` among its files, appearing with them. With `select`, only the
/// paths it takes are written; a selection that takes nothing, or an `--only` pattern
/// that matches nothing, is a usage error and nothing is written.
pub fn pull(
    reg: &Registry,
    fetched: &Fetched,
    to: &Path,
    options: Options,
    signature: Option<&str>,
    select: Option<&Select>,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let record = &fetched.record;
    let graph = models::graph(reg, record)?;
    let whole = graph.shape().files;
    let (mut plan, dangling) = selected_plan(reg, &graph, select, &record.reference())?;
    if let Some(which) = signature {
        let bytes = super::sign::for_pull(reg, record, which, progress)?;
        plan.beside
            .push((crate::sign::oms::SIGNATURE_FILE.to_owned(), bytes));
    }
    let written = materialize::materialize(reg, &plan, to, options, progress)?;
    Ok(Outcome {
        model: record.model.clone(),
        version: record.version,
        reference: record.reference(),
        tree: record.tree,
        path: written.display().to_string(),
        files: plan.files.len() as u64,
        bytes: plan.bytes,
        partial: select.is_some(),
        of_files: select.map(|_| whole),
        dangling_links: dangling,
    })
}

/// Returns the plan of a version with only the paths `select` takes (the whole plan
/// without one), and the links it keeps whose targets it leaves out. An `--only`
/// pattern that matches no path of the version (`reference`), or a selection that
/// leaves nothing, is a usage error.
pub(crate) fn selected_plan(
    reg: &Registry,
    graph: &crate::store::walk::Graph,
    select: Option<&Select>,
    reference: &str,
) -> Result<(Plan, Vec<String>)> {
    let Some(select) = select else {
        return Ok((materialize::plan(reg, graph)?, Vec::new()));
    };
    let mut paths = Vec::new();
    graph.for_each(&mut |v| {
        if v.entry.kind != crate::store::tree::Kind::Dir {
            paths.push(v.path.to_owned());
        }
        Ok(())
    })?;
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    if let Some(typo) = select.unmatched(&paths).first() {
        return Err(Failure::usage(format!(
            "--only '{}' matches no file of {reference}",
            clip(typo)
        ))
        .hint(format!("`mreg show {reference} --files` lists its files"))
        .into());
    }
    let mut plan = materialize::plan_with(reg, graph, Some(select))?;
    let dangling = plan.select(select);
    if plan.files.is_empty() && plan.links.is_empty() {
        return Err(Failure::usage(format!(
            "--only and --exclude leave no file of {reference} to pull"
        ))
        .hint(format!("`mreg show {reference} --files` lists its files"))
        .into());
    }
    Ok((plan, dangling))
}

/// Returns a pattern cut to 200 characters, for a message.
fn clip(text: &str) -> String {
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// Fetches the objects of a version the registry lacks: from the bucket of a registry
/// used as `--registry s3://…`, else from the default remote, if there is one. Returns
/// the remote and the bytes fetched from it, for a fetch from a remote.
pub(crate) fn fetch_missing(
    reg: &Registry,
    tree: TreeId,
    select: Option<&Select>,
    progress: &dyn Progress,
) -> Result<Option<(String, u64)>> {
    if reg
        .backend()
        .fetch_tree(reg, tree, select, progress)?
        .is_some()
    {
        return Ok(None);
    }
    if read::missing_below(reg, tree).is_empty() {
        return Ok(None);
    }
    let settings = Settings::load(reg)?;
    if settings.default.is_none() {
        return Ok(None);
    }
    let (name, entry) = settings.pick(None)?;
    let remote = entry.open(false)?;
    let known = Known::load(reg, &entry.url)?;
    let moved = crate::remote::fetch_tree(reg, &*remote, &known, tree, select, progress)?;
    Ok(Some((name, moved)))
}
