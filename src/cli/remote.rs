//! `mreg remote`: the remotes a registry syncs with.

use anyhow::Result;

use super::{Ctx, output};
use crate::error::{EXIT_ERROR, EXIT_OK};
use crate::ops::remote::{self, checked};
use crate::remote::probe::Probe;
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

/// Runs `mreg remote`.
pub fn run(ctx: &Ctx, args: &RemoteArgs) -> Result<u8> {
    let reg = ctx.registry()?;
    let mut settings = remote::settings(&reg)?;
    match &args.command {
        RemoteCommand::Add(add) => add_remote(ctx, &reg, &mut settings, add),
        RemoteCommand::List => list(ctx, &settings),
        RemoteCommand::Remove { name } => remove(ctx, &reg, &mut settings, name),
        RemoteCommand::Check { name } => check(ctx, &reg, &mut settings, name.as_deref()),
    }
}

fn add_remote(ctx: &Ctx, reg: &Registry, settings: &mut Settings, add: &AddArgs) -> Result<u8> {
    let request = remote::Add {
        name: &add.name,
        url: &add.url,
        single_writer: add.single_writer,
        default: add.default,
    };
    let (entry, probe) = remote::add(reg, settings, &request)?;
    ctx.out
        .status(&format!("Added remote {} ({}).", add.name, entry.url));
    report_probe(ctx, &add.name, &entry, &probe);
    if ctx.out.is_json() {
        ctx.out
            .emit(&checked(settings, &add.name, &entry, &probe), String::new)?;
    }
    Ok(EXIT_OK)
}

fn list(ctx: &Ctx, settings: &Settings) -> Result<u8> {
    let rows = remote::list(settings);
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
    let removed = remote::remove(reg, settings, name)?;
    ctx.out.status(&format!(
        "Removed remote {name}; nothing on it was touched."
    ));
    if removed.was_default && removed.others {
        ctx.out.warn(&format!(
            "{name} was the default remote; there is none now: `mreg sync NAME` names one, or add one again with --default"
        ));
    }
    if ctx.out.is_json() {
        ctx.out.emit(&removed, String::new)?;
    }
    Ok(EXIT_OK)
}

fn check(ctx: &Ctx, reg: &Registry, settings: &mut Settings, name: Option<&str>) -> Result<u8> {
    let (name, entry, probe) = remote::check(reg, settings, name)?;
    report_probe(ctx, &name, &entry, &probe);
    let printed = if ctx.out.is_json() {
        ctx.out
            .emit(&checked(settings, &name, &entry, &probe), String::new)
    } else {
        Ok(())
    };
    output::after_print(printed, || {
        Ok(if probe.enforced() {
            EXIT_OK
        } else {
            EXIT_ERROR
        })
    })
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
