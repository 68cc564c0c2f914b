//! `mreg sync` and `mreg clone`: exchanging a registry's content with a remote.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, output};
use crate::error::{EXIT_CONFLICT, EXIT_OK, Failure};
use crate::remote::known::Known;
use crate::remote::settings::{Entry, Settings};
use crate::remote::sync::{Counts, Options, Report, Sync};
use crate::remote::{self, probe};
use crate::store::{Registry, keys};

/// Send a remote what it lacks and fetch what this registry lacks
///
/// Objects, runs, version records, stage states and stage pointers are copied only
/// where missing, in the order that never lets either side name data it lacks; every
/// object fetched is re-hashed before it is stored. Nothing is overwritten: a version
/// number holding different records on the two sides, or stage moves made on both
/// sides since the last sync, leaves that model as it is and exits 4 saying how to
/// resolve it, while everything else syncs. An interrupted sync resumes where it
/// stopped when run again.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg sync
  mreg sync team
  mreg sync team --take-remote-stages churn
  mreg sync team --renumber churn
  mreg sync --json | jq .sent.bytes")]
pub struct SyncArgs {
    /// The remote [default: the default remote]
    name: Option<String>,
    /// For a model whose stages moved on both sides, keep the remote's moves and drop
    /// this registry's (they stay in its files, unreachable)
    #[arg(long, value_name = "MODEL")]
    take_remote_stages: Vec<String>,
    /// For a model whose version numbers hold different records here and on the
    /// remote, publish this registry's versions under the remote's next free numbers
    /// (recording the old number in each) and take the remote's at the old ones
    #[arg(long, value_name = "MODEL")]
    renumber: Vec<String>,
    /// Forget what the remote is remembered to hold, ask it again, and send every
    /// object of every version it lacks (after objects were lost there)
    #[arg(long)]
    recheck: bool,
}

/// Start a local registry from a remote
///
/// Makes DIR/.mreg (DIR defaults to the current folder), adds the remote as `origin`,
/// the default remote, and fetches everything it holds: objects, runs, versions and
/// stages, each object re-hashed before it is stored.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg clone s3://ml-models/registry ./registry
  mreg clone /mnt/share/registry")]
pub struct CloneArgs {
    /// s3://BUCKET/PREFIX, or a registry folder
    url: String,
    /// Folder to make the registry in [default: the current folder]
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct Outcome<'a> {
    remote: &'a str,
    url: &'a str,
    #[serde(flatten)]
    report: &'a Report,
}

/// Runs `mreg sync`.
pub fn run(ctx: &Ctx, args: &SyncArgs) -> Result<u8> {
    let reg = ctx.registry()?;
    if reg.bucket_url().is_some() {
        return Err(Failure::usage(
            "a registry on a bucket is used directly and has nothing to sync",
        )
        .hint("sync a local registry with it: `mreg clone URL DIR`, or `mreg remote add NAME URL` then `mreg sync NAME`")
        .into());
    }
    let settings = Settings::load(&reg)?;
    let (name, entry) = settings.pick(args.name.as_deref())?;
    // A folder remote was made a registry when it was added: one that holds none now
    // (an unmounted share, say) is an error, not a new registry.
    let remote = entry.open(false)?;
    let known = Known::load(&reg, &entry.url)?;
    if args.recheck {
        known.forget()?;
    }
    let options = Options {
        objects: true,
        send: true,
        take_remote_stages: args.take_remote_stages.clone(),
        renumber: args.renumber.clone(),
        may_move_remote_stages: entry.may_move_stages(),
        recheck: args.recheck,
    };
    let progress = ctx.out.progress();
    let report = Sync::new(&reg, &*remote, &known, options, &progress).run()?;
    print(ctx, &name, &entry.url, &report)
}

/// Runs `mreg clone`.
pub fn clone(ctx: &Ctx, args: &CloneArgs) -> Result<u8> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if dir.join(crate::store::registry::DIR_NAME).exists() {
        let hint = match Registry::open(&dir.to_string_lossy()).and_then(|r| Settings::load(&r)) {
            Ok(s) if s.remotes.values().any(|e| e.url == args.url) => format!(
                "it is a clone of {} (perhaps an interrupted one): finish it with `mreg --registry {} sync`",
                args.url,
                dir.display()
            ),
            _ => "clone into a new folder, or add the remote to that registry with `mreg remote add NAME URL` and run `mreg sync NAME`".to_owned(),
        };
        return Err(
            Failure::usage(format!("{} holds a registry already", dir.display()))
                .hint(hint)
                .into(),
        );
    }
    let remote = remote::open(&args.url, false)?;
    let config = remote.get(keys::CONFIG)?;
    if config.is_none() {
        // A missing bucket says so here, rather than passing for a missing registry.
        remote.list(keys::TMP)?;
    }
    let config = config.ok_or_else(|| {
        Failure::error(format!("no mreg registry at {}", args.url))
            .hint(format!("create one there with `mreg init {}`", args.url))
    })?;
    crate::remote::sync::check_remote_config(&*remote)?;
    let (reg, _) = Registry::init(&dir)?;
    crate::store::atomic::replace(&reg.tmp_dir(), &reg.path(keys::CONFIG), &config.bytes)?;
    reg.config()?;
    // Moving stages needs conditional writes; a clone that cannot write to the remote
    // is still a clone, told to check again later.
    let enforced = probe::run(&*remote).is_ok_and(|p| p.enforced());
    let entry = Entry {
        url: remote::absolute_url(&args.url)?,
        endpoint: remote::current_endpoint(&args.url),
        conditional_writes: enforced,
        checked: Some(crate::clock::format_time(std::time::SystemTime::now())),
        single_writer: false,
    };
    let settings = Settings {
        default: Some("origin".to_owned()),
        remotes: [("origin".to_owned(), entry)].into(),
    };
    settings.save(&reg)?;
    let known = Known::load(&reg, &args.url)?;
    let options = Options {
        objects: true,
        send: false,
        take_remote_stages: Vec::new(),
        renumber: Vec::new(),
        may_move_remote_stages: false,
        recheck: false,
    };
    let progress = ctx.out.progress();
    let report = Sync::new(&reg, &*remote, &known, options, &progress).run()?;
    ctx.out.status(&format!(
        "Cloned {} into {}.",
        args.url,
        reg.root().display()
    ));
    if !enforced {
        ctx.out.warn("origin was not shown to enforce conditional writes; `mreg remote check origin` tells more");
    }
    print(ctx, "origin", &args.url, &report)
}

fn print(ctx: &Ctx, name: &str, url: &str, report: &Report) -> Result<u8> {
    if ctx.out.is_json() {
        ctx.out.emit(
            &Outcome {
                remote: name,
                url,
                report,
            },
            String::new,
        )?;
    } else {
        let line = |verb: &str, c: &Counts| {
            format!(
                "{verb} {name}: {}, {}, {}, {}, {}, {}.",
                output::count(c.objects, "object"),
                output::bytes(c.bytes),
                output::count(c.versions, "version"),
                output::count(c.runs, "run"),
                output::count(c.events + c.states, "record"),
                output::count(c.stages, "stage pointer"),
            )
        };
        if report.fetched.is_empty() && report.sent.is_empty() && report.conflicts.is_empty() {
            ctx.out.status(&format!(
                "{name} and this registry hold the same; nothing to do."
            ));
        } else {
            if !report.fetched.is_empty() {
                ctx.out.status(&line("Fetched from", &report.fetched));
            }
            if !report.sent.is_empty() {
                ctx.out.status(&line("Sent to", &report.sent));
            }
        }
    }
    for r in &report.renumbered {
        ctx.out.status(&format!(
            "Published {}@{} as {}@{} on {name}; {}@{} here is now the remote's.",
            r.model, r.from, r.model, r.to, r.model, r.from
        ));
    }
    for conflict in &report.conflicts {
        ctx.out.warn(&format!("conflict: {}", conflict.message));
        ctx.out.warn(&format!("hint: {}", conflict.hint));
    }
    Ok(if report.conflicts.is_empty() {
        EXIT_OK
    } else {
        EXIT_CONFLICT
    })
}
