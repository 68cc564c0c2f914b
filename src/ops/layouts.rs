//! Pulling a version into a serving layout: a Triton model repository
//! (`--layout triton`) or a Hugging Face cache (`--layout hf-cache`). Both accumulate:
//! pulling more versions (or stages) into the same folder adds to it, each version's
//! folder appearing whole or not at all.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::pull::Fetched;
use crate::error::Failure;
use crate::id::ObjectId;
use crate::store::materialize::{self, Options, Plan};
use crate::store::select::Select;
use crate::store::{Progress, Registry, atomic, models, read};

/// The file of a Triton model's configuration, beside its version folders.
pub const TRITON_CONFIG: &str = "config.pbtxt";

/// What pulling into a layout did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Laid {
    /// `NAME@N`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The layout: `triton` or `hf-cache`.
    pub layout: &'static str,
    /// The folder the version's files are in now.
    pub path: String,
    /// Files of the version there.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// For Triton: whether `config.pbtxt` was written beside the version folders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<bool>,
    /// For a Hugging Face cache: the repo id, revision and the branch that names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<String>,
    /// The snapshot's revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The ref written (`refs/BRANCH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The revision the ref named before, when it named another (a Hub download's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
}

/// Returns the version's plan, with only the paths `select` takes.
fn plan_of(reg: &Registry, fetched: &Fetched, select: Option<&Select>) -> Result<Plan> {
    let graph = models::graph(reg, &fetched.record)?;
    let (plan, _) = super::pull::selected_plan(reg, &graph, select, &fetched.record.reference())?;
    if plan.files.is_empty() && plan.links.is_empty() {
        return Err(Failure::error(format!(
            "{} holds no file to pull",
            fetched.record.reference()
        ))
        .into());
    }
    Ok(plan)
}

/// Pulls a version into the Triton model repository `repo`, as model `name`: its files
/// into `repo/NAME/N/` (N the version number), a top-level `config.pbtxt` of the
/// version to `repo/NAME/config.pbtxt`. A version folder already there is replaced
/// only with `options.force`.
pub fn triton(
    reg: &Registry,
    fetched: &Fetched,
    repo: &Path,
    name: &str,
    options: Options,
    select: Option<&Select>,
    progress: &dyn Progress,
) -> Result<Laid> {
    crate::names::ModelName::parse(name).map_err(|e| {
        Failure::usage(format!("--name {name}: {}", e.message))
            .hint("a Triton model name is a folder name: letters, digits, `.`, `_` and `-`")
    })?;
    let record = &fetched.record;
    let mut plan = plan_of(reg, fetched, select)?;
    let config = plan
        .files
        .iter()
        .position(|f| f.path == TRITON_CONFIG)
        .map(|i| plan.files.remove(i));
    plan.bytes = plan.files.iter().map(|f| f.size).sum();
    if plan.files.is_empty() && plan.links.is_empty() {
        return Err(Failure::usage(format!(
            "{} holds nothing but {TRITON_CONFIG}, so its version folder would be empty",
            record.reference()
        ))
        .into());
    }
    let config_bytes = match &config {
        Some(config) => {
            let bytes = read::read_up_to(reg, config.id, CONFIG_LIMIT, TRITON_CONFIG)?;
            if let Some(named) = triton_name(&bytes).filter(|n| n != name) {
                return Err(Failure::error(format!(
                    "the {TRITON_CONFIG} of {} names the model \"{named}\", and Triton loads a model only from a folder of that name, not {name}",
                    record.reference()
                ))
                .hint(format!("pull with --name {named}, or push a {TRITON_CONFIG} without `name`"))
                .into());
            }
            Some(bytes)
        }
        None => None,
    };
    let model_dir = repo.join(name);
    let version_dir = model_dir.join(record.version.to_string());
    let config_path = model_dir.join(TRITON_CONFIG);
    if config_bytes.is_some()
        && std::fs::symlink_metadata(&config_path)
            .is_ok_and(|m| !m.is_file() && !m.file_type().is_symlink())
    {
        return Err(Failure::error(format!(
            "{} is there and is not a file, so the version's {TRITON_CONFIG} cannot go there",
            config_path.display()
        ))
        .into());
    }
    let written = materialize::materialize(reg, &plan, &version_dir, options, progress)?;
    if let Some(bytes) = &config_bytes {
        atomic::replace(&model_dir, &model_dir.join(TRITON_CONFIG), bytes)
            .with_context(|| format!("writing {}", model_dir.join(TRITON_CONFIG).display()))?;
    }
    Ok(Laid {
        reference: record.reference(),
        layout: "triton",
        path: std::fs::canonicalize(&written)
            .unwrap_or(written)
            .display()
            .to_string(),
        files: plan.files.len() as u64 + u64::from(config.is_some()),
        bytes: plan.bytes + config.as_ref().map_or(0, |c| c.size),
        config: Some(config.is_some()),
        repo_id: None,
        revision: None,
        branch: None,
        replaced: None,
    })
}

/// Returns the model name a `config.pbtxt` gives at its top level (`name: "…"`), if
/// any: a line of its own, outside every `{ … }` block.
fn triton_name(config: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(config);
    let mut depth = 0i64;
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or_default();
        if depth == 0
            && let Some(rest) = code.trim().strip_prefix("name")
            && let Some(value) = rest.trim_start().strip_prefix(':')
        {
            let value = value.trim();
            for quote in ['"', '\''] {
                if let Some(rest) = value.strip_prefix(quote) {
                    return rest.split(quote).next().map(str::to_owned);
                }
            }
        }
        depth += code.matches(['{', '[']).count() as i64 - code.matches(['}', ']']).count() as i64;
    }
    None
}

/// The largest `config.pbtxt` read into memory.
const CONFIG_LIMIT: u64 = 16 << 20;

/// Where a Hugging Face cache entry goes, and what names it.
pub struct HfTarget<'a> {
    /// The cache folder (`HF_HUB_CACHE`, by default `~/.cache/huggingface/hub`).
    pub cache: &'a Path,
    /// The repo id, `ORG/NAME` or `NAME`.
    pub repo_id: &'a str,
    /// The branch (or tag) whose ref names the snapshot.
    pub branch: &'a str,
}

/// Returns the revision of a version's snapshot: the first 40 hex digits of its tree
/// hash, which has the form of a commit hash, so the same files are one snapshot.
fn revision_of(fetched: &Fetched) -> String {
    fetched.record.tree.0.to_hex()[..40].to_owned()
}

/// Checks a repo id: one or two names of letters, digits, `-`, `_` and `.`, as the Hub
/// allows.
pub(crate) fn check_repo_id(repo_id: &str) -> Result<()> {
    let parts: Vec<&str> = repo_id.split('/').collect();
    let ok = (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 96
                && !p.starts_with(['.', '-'])
                && !p.ends_with(['.', '-'])
                && !p.contains("--")
                && !p.contains("..")
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(
            Failure::usage(format!("--repo-id {repo_id} is not a Hugging Face repo id"))
                .hint("give ORG/NAME or NAME: letters, digits, `-`, `_` and `.`")
                .into(),
        )
    }
}

/// Checks a branch name for `refs/`: names of up to 200 bytes in all, joined by `/`,
/// none empty, `.` or `..`.
fn check_branch(branch: &str) -> Result<()> {
    let branch_ok = branch.len() <= 200
        && branch.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && !part.chars().any(|c| c.is_control() || c == '\\')
        });
    if !branch_ok {
        return Err(
            Failure::usage(format!("--branch {branch} is not a branch name"))
                .hint(
                    "a branch is names of up to 200 bytes in all, joined by `/`, none `.` or `..`",
                )
                .into(),
        );
    }
    Ok(())
}

/// Pulls a version into a Hugging Face cache as `repo_id`: its files as blobs named
/// by their SHA-256 in `models--ORG--NAME/blobs/`, a snapshot folder
/// `snapshots/REVISION/` of links to them (appearing whole), and `refs/BRANCH` naming
/// the revision, written last. `from_pretrained(repo_id, local_files_only=True)` and
/// `HF_HUB_OFFLINE=1` then find it.
pub fn hf_cache(
    reg: &Registry,
    fetched: &Fetched,
    target: &HfTarget,
    options: Options,
    select: Option<&Select>,
    progress: &dyn Progress,
) -> Result<Laid> {
    check_repo_id(target.repo_id)?;
    check_branch(target.branch)?;
    let record = &fetched.record;
    let plan = plan_of(reg, fetched, select)?;
    let files = super::digested::version_files(reg, record, None, select, progress)?.files;
    let by_path: std::collections::HashMap<&str, &super::digested::DigestedFile> =
        files.iter().map(|f| (f.path.as_str(), f)).collect();
    let entry = target
        .cache
        .join(format!("models--{}", target.repo_id.replace('/', "--")));
    let blobs_dir = entry.join("blobs");
    // Every file and every link to a file becomes a link to its blob; a link to a
    // folder stays the link it is.
    let mut blobs: Vec<(ObjectId, u64, String)> = Vec::new();
    let mut snapshot = Plan {
        dirs: plan.dirs.clone(),
        ..Plan::default()
    };
    let paths = plan
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(plan.links.iter().map(|(p, _)| p.as_str()));
    for path in paths {
        let Some(file) = by_path.get(path) else {
            let target = &plan
                .links
                .iter()
                .find(|(p, _)| p == path)
                .expect("a link")
                .1;
            snapshot.links.push((path.to_owned(), target.clone()));
            continue;
        };
        let name = crate::id::hex(&file.sha256);
        let up = "../".repeat(path.matches('/').count() + 2);
        snapshot
            .links
            .push((path.to_owned(), format!("{up}blobs/{name}")));
        blobs.push((file.id, file.size, name));
    }
    materialize::write_blobs(reg, &blobs_dir, &blobs, progress)?;
    let revision = revision_of(fetched);
    let snapshot_dir = entry.join("snapshots").join(&revision);
    let written = write_snapshot(reg, &snapshot, &snapshot_dir, options, progress)?;
    let refs = entry.join("refs");
    let ref_path = refs.join(target.branch);
    if std::fs::symlink_metadata(&ref_path).is_ok_and(|m| !m.is_file()) {
        return Err(Failure::usage(format!(
            "--branch {}: {} is there and is not a ref file",
            target.branch,
            ref_path.display()
        ))
        .into());
    }
    let replaced = crate::store::files::read_cache(&ref_path, 256)
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|before| *before != revision);
    std::fs::create_dir_all(ref_path.parent().unwrap_or(&refs))
        .with_context(|| format!("creating {}", refs.display()))?;
    atomic::replace(
        ref_path.parent().unwrap_or(&refs),
        &ref_path,
        revision.as_bytes(),
    )
    .with_context(|| format!("writing {}", ref_path.display()))?;
    Ok(Laid {
        reference: record.reference(),
        layout: "hf-cache",
        path: written.display().to_string(),
        files: snapshot.links.len() as u64,
        bytes: {
            let mut seen = std::collections::HashSet::new();
            blobs
                .iter()
                .filter(|(_, _, name)| seen.insert(name))
                .map(|(_, size, _)| size)
                .sum()
        },
        config: None,
        repo_id: Some(target.repo_id.to_owned()),
        revision: Some(revision),
        branch: Some(target.branch.to_owned()),
        replaced,
    })
}

/// Writes the snapshot folder `dir`: a snapshot there already (a pull of other files of
/// the version, the Hub's own downloads) gains what it lacks; with `--force`, or when
/// there is none, it is built beside and renamed into place.
fn write_snapshot(
    reg: &Registry,
    snapshot: &Plan,
    snapshot_dir: &Path,
    options: Options,
    progress: &dyn Progress,
) -> Result<PathBuf> {
    let there = || std::fs::symlink_metadata(snapshot_dir).is_ok_and(|m| m.is_dir());
    if there() && !options.force {
        add_links(snapshot, snapshot_dir)?;
        return Ok(snapshot_dir.to_path_buf());
    }
    let forced = Options {
        force: true,
        ..options
    };
    match materialize::materialize(reg, snapshot, snapshot_dir, forced, progress) {
        Ok(written) => Ok(written),
        // Another pull made it meanwhile.
        Err(_) if there() => {
            add_links(snapshot, snapshot_dir)?;
            Ok(snapshot_dir.to_path_buf())
        }
        Err(err) => Err(err),
    }
}

/// Adds to the snapshot folder `dir` the folders and links of `plan` it lacks; a link
/// there to another target is replaced (in one rename).
fn add_links(plan: &Plan, dir: &Path) -> Result<()> {
    for sub in &plan.dirs {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    for (path, target) in &plan.links {
        let link = dir.join(path);
        if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(target)) {
            continue;
        }
        let parent = link.parent().unwrap_or(dir);
        let temp = parent.join(format!(".mreg-{}.link", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        std::os::unix::fs::symlink(target, &temp)
            .and_then(|()| std::fs::rename(&temp, &link))
            .with_context(|| format!("creating link {}", link.display()))?;
    }
    Ok(())
}

/// Returns the Hugging Face cache folder the environment names: `HF_HUB_CACHE`, else
/// `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn default_hf_cache() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| {
            var("XDG_CACHE_HOME")
                .or_else(|| var("HOME").map(|h| h.join(".cache")))
                .map(|c| c.join("huggingface").join("hub"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_level_name_of_a_triton_config_is_found() {
        let config = b"name: \"churn\"\nbackend: \"onnxruntime\"\ninput [\n  { name: \"x\" }\n]\n";
        assert_eq!(triton_name(config).as_deref(), Some("churn"));
        let nested = b"backend: \"onnxruntime\"\ninput [\n  {\n    name: \"x\"\n  }\n]\n";
        assert_eq!(
            triton_name(nested),
            None,
            "an input's name is no model name"
        );
        assert_eq!(triton_name(b"# name: \"old\"\nplatform: \"x\"\n"), None);
    }

    #[test]
    fn repo_ids_are_checked() {
        assert!(check_repo_id("acme/churn-v2").is_ok() && check_repo_id("gpt2").is_ok());
        for bad in ["", "a/b/c", "../x", "a--b/c", "-a/b", "a/b c", "a/"] {
            assert!(check_repo_id(bad).is_err(), "{bad}");
        }
    }
}
