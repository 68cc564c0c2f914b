//! `mreg remote`: the remotes a registry syncs with.

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, output};
use crate::error::{EXIT_ERROR, EXIT_OK, Failure};
use crate::remote::probe::{self, Probe};
use crate::remote::settings::{Entry, Settings};
use crate::store::Registry;

/// Manage the remotes this registry syncs with: folders or S3 bucket prefixes
///
/// A remote is another registry: a folder (a mounted share) or s3://BUCKET/PREFIX on
/// any S3-compatible store. Endpoint, region and credentials come from the AWS
/// variables (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...) or the active
/// profile in ~/.aws; the endpoint set when a remote is added is recorded and used for
/// it from then on. `add` and `check` prove that the remote enforces conditional
/// writes; mreg moves no stage on a remote that does not, unless --single-writer
/// vouches that only one writer ever uses it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg remote add team s3://ml-models/registry
  AWS_ENDPOINT_URL=http://minio:9000 mreg remote add lab s3://models/churn
  mreg remote add share /mnt/share/registry
  mreg remote list
  mreg remote check team
  mreg remote remove lab")]
pub struct RemoteArgs {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RemoteCommand {
    /// Add a remote, after checking that it enforces conditional writes
    Add(AddArgs),
    /// List the remotes
    List,
    /// Forget a remote (nothing on it is touched)
    Remove {
        /// The remote's name
        name: String,
    },
    /// Check again that a remote enforces conditional writes; exit 1 if it does not
    Check {
        /// The remote's name [default: the default remote]
        name: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// A name for it, e.g. team
    name: String,
    /// s3://BUCKET/PREFIX, or a folder (made into a registry if it holds none)
    url: String,
    /// Vouch that only one writer ever uses this remote, so stages may move there even
    /// if it does not enforce conditional writes
    #[arg(long)]
    single_writer: bool,
    /// Make it the default remote (the first remote added is the default anyway)
    #[arg(long)]
    default: bool,
}

#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    url: &'a str,
    endpoint: Option<&'a str>,
    default: bool,
    conditional_writes: bool,
    checked: Option<&'a str>,
    single_writer: bool,
}

#[derive(Serialize)]
struct Checked<'a> {
    name: &'a str,
    url: &'a str,
    endpoint: Option<&'a str>,
    default: bool,
    create_only: bool,
    compare_and_swap: bool,
    enforced: bool,
    single_writer: bool,
}

/// Runs `mreg remote`.
pub fn run(ctx: &Ctx, args: &RemoteArgs) -> Result<u8> {
    let reg = ctx.registry()?;
    if reg.bucket_url().is_some() {
        return Err(Failure::usage(
            "a registry on a bucket has no remotes of its own; remotes belong to a local registry",
        )
        .hint("run `mreg remote` in a local registry, e.g. one made with `mreg clone`")
        .into());
    }
    let mut settings = Settings::load(&reg)?;
    match &args.command {
        RemoteCommand::Add(add) => add_remote(ctx, &reg, &mut settings, add),
        RemoteCommand::List => list(ctx, &settings),
        RemoteCommand::Remove { name } => remove(ctx, &reg, &mut settings, name),
        RemoteCommand::Check { name } => check(ctx, &reg, &mut settings, name.as_deref()),
    }
}

fn add_remote(ctx: &Ctx, reg: &Registry, settings: &mut Settings, add: &AddArgs) -> Result<u8> {
    crate::names::check_remote_name(&add.name)?;
    if let Some(old) = settings.remotes.get(&add.name) {
        return Err(Failure::usage(format!(
            "a remote named {} exists already ({})",
            add.name, old.url
        ))
        .hint(format!(
            "remove it first with `mreg remote remove {}`",
            add.name
        ))
        .into());
    }
    if add.url.trim().is_empty() {
        return Err(Failure::usage("a remote needs a URL")
            .hint("name a folder or s3://BUCKET/PREFIX")
            .into());
    }
    if let crate::remote::Location::Folder(path) = crate::remote::Location::parse(&add.url)? {
        check_folder_remote(reg, &path, &add.url)?;
    }
    let endpoint = crate::remote::current_endpoint(&add.url);
    let remote = crate::remote::open_at(&add.url, endpoint.as_deref(), true)?;
    // A folder is recorded by its absolute path: the registry is used from any folder.
    let url = crate::remote::absolute_url(&add.url)?;
    let probe = probe::run(&*remote)?;
    let entry = Entry {
        url,
        endpoint,
        conditional_writes: probe.enforced(),
        checked: Some(crate::clock::format_time(std::time::SystemTime::now())),
        single_writer: add.single_writer,
    };
    if add.default || settings.default.is_none() {
        settings.default = Some(add.name.clone());
    }
    settings.remotes.insert(add.name.clone(), entry.clone());
    settings.save(reg)?;
    ctx.out
        .status(&format!("Added remote {} ({}).", add.name, entry.url));
    report_probe(ctx, &add.name, &entry, &probe);
    if ctx.out.is_json() {
        ctx.out
            .emit(&checked(settings, &add.name, &entry, &probe), String::new)?;
    }
    Ok(EXIT_OK)
}

/// Refuses a folder that cannot be a remote: this registry or a folder inside it, or a
/// new folder whose parent does not exist (an unmounted share, a typo).
fn check_folder_remote(reg: &Registry, path: &std::path::Path, url: &str) -> Result<()> {
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

fn list(ctx: &Ctx, settings: &Settings) -> Result<u8> {
    let rows: Vec<Listed> = settings
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
        .collect();
    if rows.is_empty() && !ctx.out.is_json() {
        ctx.out
            .status("No remotes yet; add one with `mreg remote add NAME URL`.");
        return Ok(EXIT_OK);
    }
    ctx.out.emit(&rows, || {
        let table = rows
            .iter()
            .map(|r| {
                vec![
                    if r.default {
                        format!("{} *", r.name)
                    } else {
                        r.name.to_owned()
                    },
                    r.url.to_owned(),
                    match (r.conditional_writes, r.single_writer) {
                        (true, _) => "enforced".to_owned(),
                        (false, true) => "not enforced (single writer)".to_owned(),
                        (false, false) => "not enforced: stages stay".to_owned(),
                    },
                ]
            })
            .collect();
        output::table(&["NAME", "URL", "CONDITIONAL WRITES"], table)
    })?;
    Ok(EXIT_OK)
}

fn remove(ctx: &Ctx, reg: &Registry, settings: &mut Settings, name: &str) -> Result<u8> {
    settings.pick(Some(name))?;
    settings.remotes.remove(name);
    let was_default = settings.default.as_deref() == Some(name);
    if was_default {
        // No remote takes its place silently: the next plain `mreg sync` would go
        // somewhere the user did not choose.
        settings.default = None;
    }
    settings.save(reg)?;
    ctx.out.status(&format!(
        "Removed remote {name}; nothing on it was touched."
    ));
    if was_default && !settings.remotes.is_empty() {
        ctx.out.warn(&format!(
            "{name} was the default remote; there is none now: `mreg sync NAME` names one, or add one again with --default"
        ));
    }
    if ctx.out.is_json() {
        #[derive(Serialize)]
        struct Removed<'a> {
            removed: &'a str,
            default: Option<&'a str>,
        }
        ctx.out.emit(
            &Removed {
                removed: name,
                default: settings.default.as_deref(),
            },
            String::new,
        )?;
    }
    Ok(EXIT_OK)
}

fn check(ctx: &Ctx, reg: &Registry, settings: &mut Settings, name: Option<&str>) -> Result<u8> {
    let (name, mut entry) = settings.pick(name)?;
    let remote = entry.open(false)?;
    let probe = probe::run(&*remote)?;
    entry.conditional_writes = probe.enforced();
    entry.checked = Some(crate::clock::format_time(std::time::SystemTime::now()));
    settings.remotes.insert(name.clone(), entry.clone());
    settings.save(reg)?;
    report_probe(ctx, &name, &entry, &probe);
    if ctx.out.is_json() {
        ctx.out
            .emit(&checked(settings, &name, &entry, &probe), String::new)?;
    }
    Ok(if probe.enforced() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

fn checked<'a>(settings: &Settings, name: &'a str, entry: &'a Entry, probe: &Probe) -> Checked<'a> {
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

/// Says what the conditional-write probe found, and what follows from it.
fn report_probe(ctx: &Ctx, name: &str, entry: &Entry, probe: &Probe) {
    if probe.enforced() {
        ctx.out.status(&format!(
            "{name} enforces conditional writes (create-only and compare-and-swap): version numbers and stage moves are safe with many writers."
        ));
        return;
    }
    let mut broken = Vec::new();
    if !probe.create_only {
        broken.push("a second create-only write of one key succeeded");
    }
    if !probe.compare_and_swap {
        broken.push("a compare-and-swap with a stale tag succeeded");
    }
    ctx.out.warn(&format!(
        "{name} does not enforce conditional writes: {}.",
        broken.join(", and ")
    ));
    if entry.single_writer {
        ctx.out.warn(&format!(
            "{name} is marked single-writer: stages will move there; two writers at once could overwrite each other's versions and stages."
        ));
    } else {
        ctx.out.warn(&format!(
            "mreg will not move stages on {name}. If only one writer ever uses it, remove it and add it again with --single-writer."
        ));
    }
}
