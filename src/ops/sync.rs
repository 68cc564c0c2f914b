//! Exchanging a registry's content with a remote: `sync` both ways, and `clone`, a new
//! local registry that fetches everything a remote holds.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::error::Failure;
use crate::remote::known::Known;
use crate::remote::settings::{Entry, Settings};
use crate::remote::sync::{Options, Report, Sync};
use crate::remote::{self, bootstrap, probe};
use crate::store::{Progress, Registry, registry};

/// What `mreg sync` is asked to do, as given.
pub struct Request<'a> {
    /// The remote's name; the default remote when `None`.
    pub remote: Option<&'a str>,
    /// Models whose diverged stages take the remote's chain.
    pub take_remote_stages: &'a [String],
    /// Models whose differing versions are published under new numbers.
    pub renumber: &'a [String],
    /// Whether to forget what the remote is remembered to hold and check again.
    pub recheck: bool,
}

/// Returns what a sync or clone did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The remote's name.
    pub remote: String,
    /// Its URL.
    pub url: String,
    /// What moved each way, and what was left unsynced.
    #[serde(flatten)]
    pub report: Report,
}

/// Syncs a local registry with one of its remotes; conflicts are in the report.
pub fn sync(reg: &Registry, request: &Request, progress: &dyn Progress) -> Result<Outcome> {
    if reg.bucket_url().is_some() {
        return Err(Failure::usage(
            "a registry on a bucket is used directly and has nothing to sync",
        )
        .hint("sync a local registry with it: `mreg clone URL DIR`, or `mreg remote add NAME URL` then `mreg sync NAME`")
        .into());
    }
    let settings = Settings::load(reg)?;
    let (name, entry) = settings.pick(request.remote)?;
    // A folder remote was made a registry when it was added: one that holds none now
    // (an unmounted share, say) is an error, not a new registry.
    let remote = entry.open(false)?;
    let known = Known::load(reg, &entry.url)?;
    if request.recheck {
        known.forget()?;
    }
    let options = Options {
        objects: true,
        send: true,
        take_remote_stages: request.take_remote_stages.to_vec(),
        renumber: request.renumber.to_vec(),
        may_move_remote_stages: entry.may_move_stages(),
        recheck: request.recheck,
    };
    let guard = stage_guard(reg)?;
    let report = Sync::new(reg, &*remote, &known, options, progress)
        .with_stage_guard(&guard)
        .run()?;
    Ok(Outcome {
        remote: name,
        url: entry.url,
        report,
    })
}

/// Returns what a clone did.
pub struct Cloned {
    /// What `--json` prints.
    pub outcome: Outcome,
    /// The new registry's folder.
    pub root: String,
    /// Whether the remote was shown to enforce conditional writes.
    pub enforced: bool,
}

/// Makes `dir/.mreg` a copy of the registry at `url`, with the remote as its default
/// remote, `origin`.
///
/// The registry is made whole (config and `origin`) beside its place and renamed into
/// it, so a clone killed before then leaves no registry; one killed while fetching
/// leaves a clone of `url`, and running the same clone again finishes it.
pub fn clone(url: &str, dir: &Path, progress: &dyn Progress) -> Result<Cloned> {
    if dir.join(registry::DIR_NAME).exists() {
        if let Some((enforced, reg)) = clone_of(dir, url) {
            return fetch_clone(&reg, url, enforced, progress);
        }
        return Err(
            Failure::usage(format!("{} holds a registry already", dir.display()))
                .hint("clone into a new folder, or add the remote to that registry with `mreg remote add NAME URL` and run `mreg sync NAME`")
                .into(),
        );
    }
    let remote = remote::open(url, false)?;
    let config =
        bootstrap::config_of(&*remote, format!("create one there with `mreg init {url}`"))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    remove_unfinished_clones(dir);
    let making = tempfile::Builder::new()
        .prefix(UNFINISHED)
        .tempdir_in(dir)
        .with_context(|| format!("creating a temp folder in {}", dir.display()))?;
    let (reg, _) = Registry::init(making.path())?;
    bootstrap::adopt_config(&reg, &config, url)?;
    // Moving stages needs conditional writes; a clone that cannot write to the remote
    // is still a clone, told to check again later.
    let enforced = probe::run(&*remote).is_ok_and(|p| p.enforced());
    let entry = Entry::probed(
        remote::absolute_url(url)?,
        remote::current_endpoint(url),
        enforced,
        false,
    );
    let settings = Settings {
        default: Some("origin".to_owned()),
        remotes: [("origin".to_owned(), entry)].into(),
    };
    settings.save(&reg)?;
    drop(reg);
    crate::crash::point("clone-made");
    let place = dir.join(registry::DIR_NAME);
    if let Err(err) = fs::rename(making.path().join(registry::DIR_NAME), &place) {
        // Another clone of the same URL into the same folder got there first: this
        // one finishes it, as a rerun would.
        if let Some((enforced, reg)) = clone_of(dir, url) {
            return fetch_clone(&reg, url, enforced, progress);
        }
        return Err(err).with_context(|| format!("moving the new registry to {}", place.display()));
    }
    drop(making);
    let reg = Registry::open(&dir.to_string_lossy())?;
    fetch_clone(&reg, url, enforced, progress)
}

/// Returns the registry in `dir` when it is a clone of `url` (its `origin` is `url`),
/// with whether that remote enforces conditional writes.
fn clone_of(dir: &Path, url: &str) -> Option<(bool, Registry)> {
    let reg = Registry::open(&dir.to_string_lossy()).ok()?;
    let settings = Settings::load(&reg).ok()?;
    let absolute = remote::absolute_url(url).ok()?;
    let origin = settings.remotes.get("origin")?;
    (origin.url == absolute || origin.url == url).then_some((origin.conditional_writes, reg))
}

/// The prefix of the folder a clone makes its registry in, beside where it goes.
const UNFINISHED: &str = ".mreg-clone-";

/// Removes the folders killed clones left in `dir`, once old enough that no clone can
/// be making one now. Errors are ignored.
fn remove_unfinished_clones(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(UNFINISHED));
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|m| {
            m.elapsed()
                .is_ok_and(|age| age >= crate::store::lock::GRACE)
        });
        if ours && old && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Fetches everything of `url` into the clone `reg`.
fn fetch_clone(
    reg: &Registry,
    url: &str,
    enforced: bool,
    progress: &dyn Progress,
) -> Result<Cloned> {
    let remote = remote::open(url, false)?;
    let known = Known::load(reg, url)?;
    let options = Options {
        objects: true,
        ..Options::default()
    };
    let guard = stage_guard(reg)?;
    let report = Sync::new(reg, &*remote, &known, options, progress)
        .with_stage_guard(&guard)
        .run()?;
    Ok(Cloned {
        outcome: Outcome {
            remote: "origin".to_owned(),
            url: url.to_owned(),
            report,
        },
        root: reg.root().display().to_string(),
        enforced,
    })
}

/// Returns the check a sync makes of each stage move it would take from a remote: the
/// stage's signing rules (`require_signature`, `approvals`), as this registry's
/// `[signers]` and the signatures and approvals it now holds decide them. A move that
/// fails them is refused: a teammate who can only sync cannot put an unapproved version
/// on a stage here.
fn stage_guard(
    reg: &Registry,
) -> Result<impl Fn(&str, &str, u64) -> Result<(), String> + std::marker::Sync + '_> {
    let config = reg.config()?;
    Ok(move |model: &str, stage: &str, version: u64| {
        let policy = config.policy(stage);
        if policy.require_signature.is_empty() && policy.approvals == 0 {
            return Ok(());
        }
        let record = crate::store::models::load_version(reg, model, version)
            .map_err(|e| format!("{e:#}"))?;
        let checks = super::approve::policy_checks(
            reg,
            &config,
            &policy,
            &record,
            stage,
            &crate::store::NoProgress,
        )
        .map_err(|e| format!("{e:#}"))?;
        super::approve::failing(&checks).map_or(Ok(()), Err)
    })
}
