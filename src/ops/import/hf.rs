//! `mreg import hf PATH`: a Hugging Face cache snapshot, cache entry or local repository
//! folder becomes a version of a model, the repo id and revision kept as lineage: the
//! run recorded for it has the repository (`https://huggingface.co/ORG/NAME`) and the
//! revision as its git source, and the tags `hf.repo_id` and `hf.revision`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::error::Failure;
use crate::manifest::lineage::Source;
use crate::names::ModelName;
use crate::ops::inputs::Inputs;
use crate::ops::push::{self, Notice, Pushed, Request};
use crate::store::snapshot::Reading;
use crate::store::{Progress, Registry};

/// What `mreg import hf` is asked to do.
pub struct HfRequest<'a> {
    /// A snapshot folder, a cache entry (`models--ORG--NAME`) or a repository folder.
    pub path: &'a Path,
    /// The model to import into [default: the repo's name].
    pub model: Option<&'a str>,
    /// The repo id, when the path does not say it.
    pub repo_id: Option<&'a str>,
    /// For a cache entry: the branch, tag or commit to import [default: main].
    pub revision: Option<&'a str>,
    /// A message kept with the version [default: where it came from].
    pub message: Option<&'a str>,
    /// The folder the command runs in.
    pub cwd: &'a Path,
}

/// Where a Hugging Face model's files are, and what names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The folder holding the files.
    #[serde(skip)]
    pub folder: PathBuf,
    /// `ORG/NAME` or `NAME`, when known.
    pub repo_id: Option<String>,
    /// The commit hash, when known.
    pub revision: Option<String>,
    /// The branch or tag the revision was found by.
    pub branch: Option<String>,
    /// Whether the folder is a git work tree (its `.git` is left out).
    #[serde(skip)]
    pub git: bool,
    /// Whether the folder is one `hf download --local-dir` wrote (its `.cache` of
    /// download bookkeeping is left out).
    #[serde(skip)]
    pub local_dir: bool,
    /// For a cache snapshot: the cache entry's `blobs/` folder, the only place its
    /// links may lead.
    #[serde(skip)]
    pub blobs: Option<PathBuf>,
}

/// What an import did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Imported {
    /// What the push did.
    #[serde(flatten)]
    pub pushed: push::Outcome,
    /// Where it came from.
    pub origin: Origin,
}

/// The first bytes of a Git LFS pointer file.
const LFS_POINTER: &[u8] = b"version https://git-lfs.github.com/spec/v1";

/// Returns the repo id a cache entry's folder name (`models--ORG--NAME`) stands for.
fn repo_of_entry(name: &str) -> Option<String> {
    let rest = name.strip_prefix("models--")?;
    let parts: Vec<&str> = rest.split("--").collect();
    match parts.as_slice() {
        [name] if !name.is_empty() => Some((*name).to_owned()),
        [org, name] if !org.is_empty() && !name.is_empty() => Some(format!("{org}/{name}")),
        _ => None,
    }
}

/// Returns whether `text` is a full commit hash.
fn is_commit(text: &str) -> bool {
    text.len() == 40
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Finds what `path` is: a snapshot, a cache entry, or a repository folder.
pub fn locate(path: &Path, repo_id: Option<&str>, revision: Option<&str>) -> Result<Origin> {
    let folder =
        fs::canonicalize(path).with_context(|| format!("{} cannot be read", path.display()))?;
    if !folder.is_dir() {
        return Err(Failure::usage(format!("{} is not a folder", path.display()))
            .hint("give a snapshot folder, a cache entry (models--ORG--NAME) or a repository folder")
            .into());
    }
    let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    let parent = folder.parent().map(Path::to_path_buf);
    // models--ORG--NAME/snapshots/REV
    if let Some(parent) = &parent
        && name(parent).as_deref() == Some("snapshots")
        && let Some(entry) = parent.parent()
        && let Some(repo) = name(entry).as_deref().and_then(repo_of_entry)
    {
        let rev = name(&folder).unwrap_or_default();
        let blobs = fs::canonicalize(entry.join("blobs")).ok();
        return Ok(Origin {
            repo_id: Some(repo_id.map_or(repo, str::to_owned)),
            revision: is_commit(&rev).then_some(rev),
            branch: None,
            git: false,
            local_dir: false,
            blobs,
            folder,
        });
    }
    // models--ORG--NAME, with refs/ and snapshots/
    if let Some(repo) = name(&folder).as_deref().and_then(repo_of_entry)
        && folder.join("snapshots").is_dir()
    {
        let wanted = revision.unwrap_or("main");
        if wanted.is_empty() {
            return Err(Failure::usage("--revision is empty: give a branch, tag or commit").into());
        }
        let (commit, branch) = if is_commit(wanted) {
            (wanted.to_owned(), None)
        } else {
            let ref_path = folder.join("refs").join(wanted);
            if wanted.contains("..") || !ref_path.starts_with(folder.join("refs")) {
                return Err(
                    Failure::usage(format!("--revision {wanted} is not a ref name")).into(),
                );
            }
            let text = crate::store::files::read_cache(&ref_path, 256).ok_or_else(|| {
                Failure::error(format!(
                    "{} has no ref {wanted} (no {})",
                    folder.display(),
                    ref_path.display()
                ))
                .hint("give --revision with a branch, tag or commit the cache holds (refs/, snapshots/)")
            })?;
            let commit = String::from_utf8_lossy(&text).trim().to_owned();
            if !is_commit(&commit) {
                return Err(Failure::error(format!(
                    "{} does not hold a commit hash",
                    ref_path.display()
                ))
                .into());
            }
            (commit, Some(wanted.to_owned()))
        };
        let snapshot = folder.join("snapshots").join(&commit);
        if fs::symlink_metadata(&snapshot).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Failure::error(format!(
                "{} is a link; a cache's snapshots are folders, and mreg does not follow it",
                snapshot.display()
            ))
            .into());
        }
        if !snapshot.is_dir() {
            return Err(
                Failure::error(format!("{} has no snapshot {commit}", folder.display()))
                    .hint("download that revision first (`hf download`)")
                    .into(),
            );
        }
        return Ok(Origin {
            folder: snapshot,
            repo_id: Some(repo_id.map_or(repo, str::to_owned)),
            revision: Some(commit),
            branch,
            git: false,
            local_dir: false,
            blobs: fs::canonicalize(folder.join("blobs")).ok(),
        });
    }
    // A repository folder: a git clone, one `hf download --local-dir` wrote, or files.
    let git = folder.join(".git").exists();
    let local_dir = folder.join(".cache").join("huggingface").is_dir();
    let revision = revision
        .map(str::to_owned)
        .or_else(|| local_dir.then(|| downloaded_revision(&folder)).flatten());
    Ok(Origin {
        repo_id: repo_id.map(str::to_owned),
        revision,
        branch: None,
        git,
        local_dir,
        blobs: None,
        folder,
    })
}

/// Returns the commit `hf download --local-dir` recorded in its bookkeeping
/// (`.cache/huggingface/download/…metadata`, whose first line is the commit).
fn downloaded_revision(folder: &Path) -> Option<String> {
    walkdir::WalkDir::new(folder.join(".cache").join("huggingface").join("download"))
        .max_depth(8)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".metadata"))
        .find_map(|e| {
            let text = crate::store::files::read_cache(e.path(), 4096)?;
            let first = String::from_utf8_lossy(&text)
                .lines()
                .next()?
                .trim()
                .to_owned();
            is_commit(&first).then_some(first)
        })
}

/// Returns the version of `model` an import of `repo` at `revision` made before: the
/// one whose run carries those `hf.repo_id` and `hf.revision` tags.
fn imported_before(
    reg: &Registry,
    model: &str,
    repo: &str,
    revision: &str,
) -> Result<Option<crate::manifest::VersionRecord>> {
    for record in crate::store::models::load_live_versions(reg, model)? {
        let Some(run) = &record.run else { continue };
        if !crate::store::runs::record_path(reg, run).is_file() {
            continue;
        }
        let tags = crate::store::runs::load(reg, run)?.tags;
        if tags.get("hf.repo_id").map(String::as_str) == Some(repo)
            && tags.get("hf.revision").map(String::as_str) == Some(revision)
        {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// Returns the cache entry a repo id (`acme/llm`) given as PATH stands for, when no
/// such path exists: the entry in the user's Hugging Face cache.
fn entry_in_cache(path: &Path) -> Result<Option<PathBuf>> {
    let Some(text) = path.to_str() else {
        return Ok(None);
    };
    if path.exists() || crate::ops::layouts::check_repo_id(text).is_err() {
        return Ok(None);
    }
    let Some(cache) = crate::ops::layouts::default_hf_cache() else {
        return Ok(None);
    };
    let entry = cache.join(format!("models--{}", text.replace('/', "--")));
    if !entry.is_dir() {
        return Err(Failure::error(format!(
            "{text} is no folder here, and the Hugging Face cache {} holds no {}",
            cache.display(),
            entry.display()
        ))
        .hint(format!(
            "download it first (`hf download {text}`), or give its folder"
        ))
        .into());
    }
    Ok(Some(entry))
}

/// Returns the repo id a git remote URL of the Hub names
/// (`https://huggingface.co/ORG/NAME[.git]`).
fn repo_of_remote(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://huggingface.co/")
        .or_else(|| url.strip_prefix("git@hf.co:"))
        .or_else(|| url.strip_prefix("https://hf.co/"))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let parts: Vec<&str> = rest.split('/').collect();
    (1..=2)
        .contains(&parts.len())
        .then(|| rest.to_owned())
        .filter(|r| !r.is_empty())
}

/// Refuses a folder holding Git LFS pointers instead of the files they stand for: a
/// clone made without `git lfs`, whose weights were never downloaded.
fn refuse_lfs_pointers(folder: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(folder)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() != 1 || e.file_name() != ".git")
    {
        let entry = entry.with_context(|| format!("reading {}", folder.display()))?;
        if !entry.file_type().is_file() || entry.metadata().map_or(true, |m| m.len() > 1024) {
            continue;
        }
        let mut head = [0u8; LFS_POINTER.len()];
        let read = fs::File::open(entry.path())
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        if read == head.len() && head == LFS_POINTER {
            return Err(Failure::error(format!(
                "{} is a Git LFS pointer, not the file it stands for",
                entry.path().display()
            ))
            .hint("run `git lfs pull` in the repository, then import again")
            .into());
        }
    }
    Ok(())
}

/// Refuses a folder holding no file (a `.git` aside): it would be a version of nothing.
fn refuse_empty(folder: &Path) -> Result<()> {
    let holds_a_file = walkdir::WalkDir::new(folder)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.depth() != 1 || e.file_name() != ".git")
        .filter_map(Result::ok)
        .any(|e| !e.file_type().is_dir());
    if !holds_a_file {
        return Err(Failure::error(format!("{} holds no file to import", folder.display())).into());
    }
    Ok(())
}

/// Returns the message a version imported from `origin` gets, unless one is given.
fn default_message(origin: &Origin) -> String {
    let revision = origin
        .revision
        .as_deref()
        .map(|r| format!(" at {r}"))
        .unwrap_or_default();
    format!(
        "imported from Hugging Face {}{revision}",
        origin.repo_id.as_deref().unwrap_or("(a local folder)")
    )
}

/// Returns the model an import goes into: `--model`, else the repo's name, else the
/// folder's.
fn model_of(given: Option<&str>, origin: &Origin) -> Result<ModelName> {
    let model_text = match (given, &origin.repo_id) {
        (Some(model), _) => model.to_owned(),
        (None, Some(repo)) => repo.rsplit('/').next().unwrap_or(repo).to_owned(),
        (None, None) => origin
            .folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned(),
    };
    ModelName::parse(&model_text)
        .map_err(|e| {
            Failure::usage(format!(
                "{model_text} cannot be a model name: {}",
                e.message
            ))
            .hint("give --model NAME: letters, digits, `.`, `_` and `-`")
        })
        .map_err(Into::into)
}

/// Imports the model at `request.path`.
pub fn import(
    reg: &Registry,
    request: &HfRequest,
    progress: &dyn Progress,
    notify: &mut dyn FnMut(Notice),
) -> Result<Imported> {
    let in_cache = entry_in_cache(request.path)?;
    let path = in_cache.as_deref().unwrap_or(request.path);
    let mut origin = locate(path, request.repo_id, request.revision)?;
    if let Some(repo) = request.repo_id {
        crate::ops::layouts::check_repo_id(repo)?;
    }
    refuse_empty(&origin.folder)?;
    let mut source = None;
    if origin.git {
        refuse_lfs_pointers(&origin.folder)?;
        if let Some(found) = crate::lineage::source(&origin.folder) {
            if origin.repo_id.is_none() {
                origin.repo_id = found.remote.as_deref().and_then(repo_of_remote);
            }
            if origin.revision.is_none() {
                origin.revision.clone_from(&found.commit);
            }
            origin.branch.clone_from(&found.branch);
            source = Some(found);
        }
    }
    if origin.repo_id.is_none() && origin.blobs.is_some() {
        return Err(Failure::usage("the cache entry's repo id is unknown; give --repo-id").into());
    }
    let model = model_of(request.model, &origin)?;
    if source.is_none() {
        source = Some(Source {
            commit: origin.revision.clone().filter(|r| is_commit(r)),
            branch: origin.branch.clone(),
            dirty: false,
            diff_hash: None,
            remote: origin
                .repo_id
                .as_ref()
                .map(|r| format!("https://huggingface.co/{r}")),
            root: origin.folder.display().to_string(),
        });
    }
    let mut tags = Vec::new();
    if let Some(repo) = &origin.repo_id {
        tags.push(format!("hf.repo_id={repo}"));
    }
    if let Some(revision) = &origin.revision {
        tags.push(format!("hf.revision={revision}"));
    }
    let inputs = Inputs {
        tags,
        ..Inputs::default()
    };
    if let (Some(repo), Some(revision)) = (&origin.repo_id, &origin.revision)
        && crate::store::models::list_models(reg)?
            .iter()
            .any(|m| m == model.as_str())
        && let Some(record) = imported_before(reg, model.as_str(), repo, revision)?
    {
        return Ok(Imported {
            pushed: push::Outcome::unchanged(&record, reg.backend().sent_bytes()),
            origin,
        });
    }
    let message = request
        .message
        .map_or_else(|| default_message(&origin), str::to_owned);
    let push_request = Request {
        dir: &origin.folder,
        model: &model,
        message: Some(&message),
        run: None,
        experiment: None,
        inputs: &inputs,
        stage: None,
        cwd: request.cwd,
        reading: Reading {
            follow_into: origin.blobs.clone(),
            leave_out: [(origin.git, ".git"), (origin.local_dir, ".cache")]
                .into_iter()
                .filter(|(left, _)| *left)
                .map(|(_, name)| name.to_owned())
                .collect(),
        },
        source,
    };
    let Pushed { outcome, .. } = push::push(reg, &push_request, progress, notify)?;
    Ok(Imported {
        pushed: outcome,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_come_from_cache_entries_and_hub_remotes() {
        assert_eq!(
            repo_of_entry("models--acme--llm").as_deref(),
            Some("acme/llm")
        );
        assert_eq!(repo_of_entry("models--gpt2").as_deref(), Some("gpt2"));
        assert_eq!(repo_of_entry("datasets--a--b"), None);
        assert_eq!(repo_of_entry("models--a--b--c"), None);
        assert_eq!(
            repo_of_remote("https://huggingface.co/acme/llm.git").as_deref(),
            Some("acme/llm")
        );
        assert_eq!(
            repo_of_remote("git@hf.co:acme/llm").as_deref(),
            Some("acme/llm")
        );
        assert_eq!(repo_of_remote("https://github.com/acme/llm"), None);
    }
}
