//! `mreg push`: store a folder and record a new model version.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::inputs::{Additions, LineageArgs, MetricArgs, ParamArgs};
use super::{Ctx, gate, log, output, promote, record};
use crate::clock;
use crate::error::Failure;
use crate::manifest::run::{End, ModelLink, Status};
use crate::manifest::{RunEvent, RunId, VersionRecord};
use crate::names::ModelName;
use crate::stage::promote::{Promotion, Report, promote};
use crate::store::snapshot::{self, Sink, Skipped};
use crate::store::statcache::StatCache;
use crate::store::write::Staging;
use crate::store::{Registry, TreeId, models, runs};

/// Store a model folder and record it as the model's next version
///
/// Every file is hashed (blake3) into the content-addressed store; content already
/// stored is not stored again, and files unchanged since the last push are not even
/// re-read. Prints the new reference (NAME@N) on stdout. Pushing content identical to
/// the model's latest version records nothing and prints that version.
///
/// A .mregignore file at the folder's top (gitignore syntax) leaves paths out; every
/// skipped path is reported.
///
/// Every version comes from a run. Inside `mreg run` (MREG_RUN_ID set) or with --run,
/// the version is linked to that run, and params, metrics and data given here are
/// logged into it; otherwise push records a run itself from these flags, the git
/// source and the environment. The version keeps a copy of the run's final metrics.
///
/// With --stage, the version is then promoted to that stage as `mreg promote` would,
/// through the stage's policy and any --gate; a refusal exits 3 after the push.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg push ./out --model churn
  mreg push ./out --model churn --message 'retrained on November data'
  mreg push ./out --model churn --params-file params.yaml --metrics-file eval.json \\
       --data data/train.csv --parent churn@3
  mreg push ./out --model churn --run 3f9a0c1e
  mreg push ./out --model churn --metrics-file eval.json --stage staging --gate 'acc>0.85'
  version=$(mreg push ./out --model churn --json | jq -r .version)")]
pub struct PushArgs {
    /// Folder holding the model's files
    dir: PathBuf,
    /// Model name: letters, digits, '.', '_' and '-'
    #[arg(long)]
    model: String,
    /// A message kept with the version
    #[arg(long)]
    message: Option<String>,
    /// Run that produced the model: its id or a unique prefix [default: $MREG_RUN_ID,
    /// else push records a run itself]
    #[arg(long, value_name = "ID")]
    run: Option<String>,
    /// Experiment of the run push records itself [default: the model's name]
    #[arg(long)]
    experiment: Option<String>,
    #[command(flatten)]
    params: ParamArgs,
    #[command(flatten)]
    metrics: MetricArgs,
    #[command(flatten)]
    lineage: LineageArgs,
    /// Then promote the version to this stage, through the stage's policy gates (exit 3
    /// if they refuse; the version stays pushed)
    #[arg(long, value_name = "STAGE")]
    stage: Option<String>,
    /// A gate the --stage promotion must also pass, quoted: --gate 'acc>0.85'
    #[arg(long = "gate", value_name = "EXPR", requires = "stage")]
    gates: Vec<String>,
}

#[derive(Serialize)]
struct Outcome {
    model: String,
    version: u64,
    #[serde(rename = "ref")]
    reference: String,
    created: bool,
    tree: TreeId,
    run: Option<RunId>,
    files: u64,
    bytes: u64,
    new_bytes: u64,
    /// Bytes sent to the bucket, for a registry used as `--registry s3://…`.
    sent_bytes: Option<u64>,
    hashed_bytes: u64,
    skipped: Vec<Skipped>,
    /// The `--stage` promotion, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    promotion: Option<promote::Outcome>,
}

/// Returns the `--stage` request, checked before anything is written.
struct StageRequest {
    stage: String,
    gates: Vec<crate::stage::SourcedGate>,
    stamp: crate::stage::Stamp,
}

fn stage_request(reg: &Registry, args: &PushArgs) -> Result<Option<StageRequest>> {
    let Some(stage) = &args.stage else {
        return Ok(None);
    };
    let config = reg.config()?;
    config.require_stage(stage)?;
    let gates = gate::parse_gates(&args.gates)?;
    gate::check_gate_stages(&config, &gates)?;
    Ok(Some(StageRequest {
        stage: stage.clone(),
        gates,
        stamp: promote::stamp(10.0)?,
    }))
}

impl StageRequest {
    /// Promotes the pushed version; returns the report and the stage.
    fn promote(self, reg: &Registry, record: &VersionRecord) -> Result<(Report, String)> {
        let promotion = Promotion {
            candidate: record.clone(),
            stage: self.stage,
            gates: self.gates,
            force: false,
            reason: None,
            expect: None,
            allow_downgrade: false,
            dry_run: false,
        };
        let report = promote(reg, &reg.config()?, &promotion, &self.stamp)?;
        Ok((report, promotion.stage))
    }
}

/// Runs `mreg push`.
pub fn run(ctx: &Ctx, args: &PushArgs) -> Result<()> {
    let model = ModelName::parse(&args.model)?;
    if let Some(experiment) = &args.experiment {
        crate::names::check_label("--experiment", experiment)?;
    }
    let reg = ctx.registry()?;
    reg.backend()
        .require_conditional_writes("numbering a version")?;
    let dir = snapshot::check_folder(&args.dir)?;
    let stage = stage_request(&reg, args)?;
    let now = clock::now()?;
    let created = clock::format_time(now);
    // Run records and events carry milliseconds, so runs sort in the order they started.
    let run_time = clock::format_time_ms(now);
    let target = linked_run(&reg, args)?;
    let mut add = Additions::default();
    args.params.collect(&mut add)?;
    args.metrics.collect(ctx, None, &run_time, &mut add)?;
    args.lineage.collect(ctx, &reg, &mut add)?;

    let cache = StatCache::load(&reg, &dir);
    let staging = Staging::new(&reg);
    let bar = ctx.out.progress();
    let (snap, trees) = snapshot::snapshot(&reg, &dir, &Sink::Store(&staging), Some(&cache), &bar)?;
    report_skipped(ctx, &snap.skipped);
    let latest = models::list_versions(&reg, model.as_str())?
        .last()
        .map(|n| models::load_version(&reg, model.as_str(), *n))
        .transpose()?;
    // Publishing also runs when the content is already the latest version: objects
    // that went missing from the store since are then put back.
    staging.publish()?;
    let trees_staging = Staging::new(&reg);
    for tree in &trees {
        trees_staging.add_bytes(tree)?;
    }
    trees_staging.publish()?;
    let unchanged = latest.filter(|l| l.tree == snap.tree);
    let created_new = unchanged.is_none();
    let record = if let Some(latest) = unchanged {
        if let Some(id) = &target {
            log_into(&reg, id, &run_time, add, Some(&latest))?;
        } else if !add.is_empty() {
            ctx.out.warn(
                "params, metrics, tags, data and parents were not recorded: no version was created.",
            );
        }
        latest
    } else {
        let content = models::NewVersion {
            model: model.clone(),
            tree: snap.tree,
            files: snap.files,
            bytes: snap.bytes,
            created: created.clone(),
            actor: clock::actor(),
            message: args.message.clone(),
            run: None,
            metrics: BTreeMap::new(),
        };
        new_version(ctx, &reg, args, (target.as_ref(), &run_time), add, content)?
    };
    cache.save(&reg);
    let reference = record.reference();
    let sent_bytes = reg
        .bucket_url()
        .zip(reg.backend().sent_bytes())
        .map(|(url, sent)| (url.to_owned(), sent));
    tell_stored(ctx, args, &record, &snap, created_new, sent_bytes.as_ref());
    let report = stage
        .map(|request| request.promote(&reg, &record))
        .transpose()?;
    let outcome = Outcome {
        promotion: report
            .as_ref()
            .map(|(r, stage)| promote::Outcome::of(&record.model, record.version, stage, r)),
        model: record.model.clone(),
        version: record.version,
        reference: reference.clone(),
        created: created_new,
        tree: snap.tree,
        run: record.run.clone(),
        files: snap.files,
        bytes: snap.bytes,
        new_bytes: snap.new_bytes,
        sent_bytes: sent_bytes.map(|(_, n)| n),
        hashed_bytes: snap.hashed_bytes,
        skipped: snap.skipped,
    };
    ctx.out.emit(&outcome, || reference)?;
    match &report {
        Some((r, stage)) => tell_promotion(ctx, &record, stage, r),
        None => Ok(()),
    }
}

/// Prints what the push stored, or that there was nothing to store, on stderr.
fn tell_stored(
    ctx: &Ctx,
    args: &PushArgs,
    record: &VersionRecord,
    snap: &snapshot::Snapshot,
    created_new: bool,
    sent: Option<&(String, u64)>,
) {
    let reference = record.reference();
    let from = record
        .run
        .as_ref()
        .map(|id| format!(", from run {id}"))
        .unwrap_or_default();
    if let (true, Some((url, sent))) = (created_new, sent) {
        ctx.out.status(&format!(
            "Stored {} ({}, {} sent to {url}) as {reference}{from}.",
            output::count(snap.files, "file"),
            output::bytes(snap.bytes),
            output::bytes(*sent)
        ));
    } else if created_new {
        ctx.out.status(&format!(
            "Stored {} ({}, {} new) as {reference}{from}.",
            output::count(snap.files, "file"),
            output::bytes(snap.bytes),
            output::bytes(snap.new_bytes)
        ));
    } else {
        ctx.out.status(&format!(
            "Nothing to push: {reference} already holds this content (tree {}).",
            snap.tree.0.short(12)
        ));
        if args.message.is_some() {
            ctx.out
                .warn("--message was not recorded: no version was created.");
        }
    }
}

/// Prints the `--stage` promotion's gates and result on stderr: stdout holds the
/// reference alone, for `$(mreg push …)`.
fn tell_promotion(ctx: &Ctx, record: &VersionRecord, stage: &str, report: &Report) -> Result<()> {
    let table = gate::checks_table(&report.checks);
    if !ctx.out.is_json() && !table.is_empty() {
        ctx.out.status(table.trim_end());
    }
    promote::tell(ctx, &record.model, record.version, stage, report)
}

/// Records a new version and the run it comes from: the linked run, with the push's
/// additions logged into it, or a run recorded here. The run is complete before the
/// version record names it, and the version is then listed among the run's outputs.
fn new_version(
    ctx: &Ctx,
    reg: &Registry,
    args: &PushArgs,
    (target, time): (Option<&RunId>, &str),
    add: Additions,
    mut content: models::NewVersion,
) -> Result<VersionRecord> {
    let time = time.to_owned();
    let (run_id, metrics) = if let Some(id) = target {
        log_into(reg, id, &time, add, None)?;
        (id.clone(), runs::load(reg, id)?.metrics)
    } else {
        let experiment = args.experiment.as_deref().unwrap_or(content.model.as_str());
        let mut start = record::start_record(ctx, experiment, None, time.clone(), None);
        start.end = Some(End {
            status: Status::Finished,
            time: time.clone(),
            duration_s: 0.0,
            exit_code: None,
            signal: None,
            received: None,
            error: None,
        });
        let recorded = record::create_with(reg, start, add)?;
        (recorded.id, recorded.metrics)
    };
    content.run = Some(run_id.clone());
    content.metrics = metrics;
    let version = models::create_version(reg, content)?;
    link_output(reg, &run_id, &time, &version)?;
    Ok(version)
}

/// Returns the run a push links to: `--run`, else `MREG_RUN_ID`, else none (push
/// records its own).
fn linked_run(reg: &Registry, args: &PushArgs) -> Result<Option<RunId>> {
    let inherited = std::env::var("MREG_RUN_ID").is_ok_and(|v| !v.is_empty());
    if args.run.is_none() && !inherited {
        return Ok(None);
    }
    if let Some(experiment) = &args.experiment {
        return Err(Failure::usage(format!(
            "--experiment {experiment} applies only to a run push records itself, and this \
             push is linked to an existing run"
        ))
        .hint("leave out --experiment, or --run and MREG_RUN_ID")
        .into());
    }
    log::target_run(reg, args.run.as_deref()).map(Some)
}

/// Logs the push's additions into an existing run, and links an existing version.
fn log_into(
    reg: &Registry,
    id: &RunId,
    time: &str,
    add: Additions,
    existing: Option<&VersionRecord>,
) -> Result<()> {
    if !add.is_empty() {
        let mut event = RunEvent::new(id.clone(), time.to_owned(), clock::actor());
        add.apply_to_event(reg, &mut event)?;
        runs::append(reg, &event)?;
    }
    if let Some(version) = existing {
        link_output(reg, id, time, version)?;
    }
    Ok(())
}

/// Records in the run that it produced this version.
fn link_output(reg: &Registry, id: &RunId, time: &str, version: &VersionRecord) -> Result<()> {
    let mut event = RunEvent::new(id.clone(), time.to_owned(), clock::actor());
    event.outputs.push(ModelLink {
        model: version.model.clone(),
        version: version.version,
        tree: version.tree,
    });
    runs::append(reg, &event)
}

fn report_skipped(ctx: &Ctx, skipped: &[Skipped]) {
    const SHOWN: usize = 10;
    if skipped.is_empty() {
        return;
    }
    let mut line = format!("Skipped {}:", output::count(skipped.len() as u64, "path"));
    for s in skipped.iter().take(SHOWN) {
        let why = if s.reason == "registry" {
            " (the registry)"
        } else {
            " (.mregignore)"
        };
        let _ = write!(line, "\n  {}{why}", s.path);
    }
    if skipped.len() > SHOWN {
        let _ = write!(
            line,
            "
  … and {} more (--json lists all)",
            skipped.len() - SHOWN
        );
    }
    ctx.out.status(&line);
}
