//! The remotes a local registry syncs with: adding one (after proving it enforces
//! conditional writes), listing, forgetting, and checking one again.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::error::Failure;
use crate::remote::probe::{self, Probe};
use crate::remote::settings::{Entry, Settings};
use crate::remote::{self, Location};
use crate::store::Registry;

/// Returns a local registry's remotes; a registry on a bucket has none of its own.
pub fn settings(reg: &Registry) -> Result<Settings> {
    if reg.bucket_url().is_some() {
        return Err(Failure::usage(
            "a registry on a bucket has no remotes of its own; remotes belong to a local registry",
        )
        .hint("run `mreg remote` in a local registry, e.g. one made with `mreg clone`")
        .into());
    }
    Settings::load(reg)
}

/// One remote as `mreg remote list --json` prints it.
#[derive(Debug, Serialize)]
pub struct Listed<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its URL.
    pub url: &'a str,
    /// The S3 endpoint it was added with.
    pub endpoint: Option<&'a str>,
    /// Whether it is the default remote.
    pub default: bool,
    /// Whether the last check found conditional writes enforced.
    pub conditional_writes: bool,
    /// When that check ran.
    pub checked: Option<&'a str>,
    /// Whether the user vouched for a single writer.
    pub single_writer: bool,
}

/// What `remote add` and `remote check` found, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Checked<'a> {
    name: &'a str,
    url: &'a str,
    endpoint: Option<&'a str>,
    default: bool,
    create_only: bool,
    compare_and_swap: bool,
    enforced: bool,
    single_writer: bool,
}

/// Returns what the probe of a remote found, as `--json` prints it.
pub fn checked<'a>(
    settings: &Settings,
    name: &'a str,
    entry: &'a Entry,
    probe: &Probe,
) -> Checked<'a> {
    Checked {
        name,
        url: &entry.url,
        endpoint: entry.endpoint.as_deref(),
        default: settings.default.as_deref() == Some(name),
        create_only: probe.create_only,
        compare_and_swap: probe.compare_and_swap,
        enforced: probe.enforced(),
        single_writer: entry.single_writer,
    }
}

/// What `mreg remote add` is asked to do, as given.
pub struct Add<'a> {
    /// The remote's name.
    pub name: &'a str,
    /// A folder or `s3://BUCKET/PREFIX`.
    pub url: &'a str,
    /// Whether the user vouches that one writer ever uses it.
    pub single_writer: bool,
    /// Whether it becomes the default remote (the first one added is anyway).
    pub default: bool,
}

/// Adds a remote (a folder is made a registry if it holds none) after probing it, and
/// returns its settings and what the probe found.
pub fn add(reg: &Registry, settings: &mut Settings, request: &Add) -> Result<(Entry, Probe)> {
    let Add {
        name,
        url,
        single_writer,
        default,
    } = *request;
    crate::names::check_remote_name(name)?;
    if let Some(old) = settings.remotes.get(name) {
        return Err(Failure::usage(format!(
            "a remote named {name} exists already ({})",
            old.url
        ))
        .hint(format!("remove it first with `mreg remote remove {name}`"))
        .into());
    }
    if url.trim().is_empty() {
        return Err(Failure::usage("a remote needs a URL")
            .hint("name a folder or s3://BUCKET/PREFIX")
            .into());
    }
    if let Location::Folder(path) = Location::parse(url)? {
        check_folder_remote(reg, &path, url)?;
    }
    let endpoint = remote::current_endpoint(url);
    let opened = remote::open_at(url, endpoint.as_deref(), true)?;
    // A folder is recorded by its absolute path: the registry is used from any folder.
    let absolute = remote::absolute_url(url)?;
    let probe = probe::run(&*opened)?;
    let entry = Entry::probed(absolute, endpoint, probe.enforced(), single_writer);
    if default || settings.default.is_none() {
        settings.default = Some(name.to_owned());
    }
    settings.remotes.insert(name.to_owned(), entry.clone());
    settings.save(reg)?;
    Ok((entry, probe))
}

/// Refuses a folder that cannot be a remote: this registry or a folder inside it, or a
/// new folder whose parent does not exist (an unmounted share, a typo).
fn check_folder_remote(reg: &Registry, path: &Path, url: &str) -> Result<()> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // The folder itself if it exists, else the folder it would be made in.
    let real = absolute.canonicalize().ok();
    let parent = absolute.parent().and_then(|p| p.canonicalize().ok());
    // The registry's folder, its project folder, or anything below the registry.
    let is_registry = real
        .as_deref()
        .is_some_and(|p| p.starts_with(reg.root()) || reg.root().parent() == Some(p));
    let would_be_inside =
        real.is_none() && parent.as_deref().is_some_and(|p| p.starts_with(reg.root()));
    if is_registry || would_be_inside {
        return Err(Failure::usage(format!(
            "{url} is this registry itself, or inside it, not a remote"
        ))
        .hint("name another folder, or a bucket (s3://BUCKET/PREFIX)")
        .into());
    }
    if real.is_none() && parent.is_none() {
        return Err(Failure::usage(format!(
            "{url} does not exist, and neither does the folder it would be made in"
        ))
        .hint("mount the share or create the parent folder first; mreg makes only the last folder")
        .into());
    }
    Ok(())
}

/// Returns every remote, as `mreg remote list --json` prints them.
pub fn list(settings: &Settings) -> Vec<Listed<'_>> {
    settings
        .remotes
        .iter()
        .map(|(name, e)| Listed {
            name,
            url: &e.url,
            endpoint: e.endpoint.as_deref(),
            default: settings.default.as_deref() == Some(name.as_str()),
            conditional_writes: e.conditional_writes,
            checked: e.checked.as_deref(),
            single_writer: e.single_writer,
        })
        .collect()
}

/// What `remote remove` did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Removed {
    /// The remote forgotten.
    pub removed: String,
    /// The default remote now.
    pub default: Option<String>,
    /// Whether the one removed was the default.
    #[serde(skip)]
    pub was_default: bool,
    /// Whether other remotes remain.
    #[serde(skip)]
    pub others: bool,
}

/// Forgets a remote; nothing on it is touched. No other remote becomes the default in
/// its place: the next plain `mreg sync` would go somewhere the user did not choose.
pub fn remove(reg: &Registry, settings: &mut Settings, name: &str) -> Result<Removed> {
    settings.pick(Some(name))?;
    settings.remotes.remove(name);
    let was_default = settings.default.as_deref() == Some(name);
    if was_default {
        settings.default = None;
    }
    settings.save(reg)?;
    Ok(Removed {
        removed: name.to_owned(),
        default: settings.default.clone(),
        was_default,
        others: !settings.remotes.is_empty(),
    })
}

/// Probes a remote again and records what it found; returns its name, its settings
/// and the probe.
pub fn check(
    reg: &Registry,
    settings: &mut Settings,
    name: Option<&str>,
) -> Result<(String, Entry, Probe)> {
    let (name, mut entry) = settings.pick(name)?;
    let opened = entry.open(false)?;
    let probe = probe::run(&*opened)?;
    entry.conditional_writes = probe.enforced();
    entry.checked = Some(crate::clock::format_time(std::time::SystemTime::now()));
    settings.remotes.insert(name.clone(), entry.clone());
    settings.save(reg)?;
    Ok((name, entry, probe))
}
