//! `mreg push`: store a folder and record a new model version.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;

use super::args::{self, LineageArgs, MetricArgs, ParamArgs};
use super::{Ctx, output, verdict};
use crate::id::RunId;
use crate::ops::push::{self, Notice, Request};
use crate::store::runindex::RunSummary;
use crate::store::snapshot::Skipped;

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
/// Every version comes from a run. Inside `mreg run` (MREG_RUN_ID set, also in later
/// steps of a GitHub Actions job) or with --run, the version is linked to that run, and
/// params, metrics and data given here are logged into it; `--run last` names the newest
/// run `mreg run` started from this work tree and commit. Otherwise push records a run
/// itself from these flags, the git source and the environment, and warns when a recent
/// run from this work tree finished without pushing a model (the training run this push
/// most likely meant). The version keeps a copy of the run's final metrics.
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
  mreg push ./out --model churn --run last     # after `mreg run … -- python train.py`
  mreg push ./out --model churn --metrics-file eval.json --stage staging --gate 'acc>0.85'
  ref=$(mreg push ./out --model churn --json | jq -r .ref)   # churn@7, for promote")]
pub struct PushArgs {
    /// Folder holding the model's files
    dir: PathBuf,
    /// Model name: letters, digits, '.', '_' and '-'
    #[arg(long)]
    model: String,
    /// A message kept with the version, credentials in it masked (URL passwords, tokens,
    /// secret KEY=VALUE)
    #[arg(long)]
    message: Option<String>,
    /// Run that produced the model: its id, a unique prefix, `last` (the newest finished
    /// run `mreg run` started from this work tree and commit) or `last:EXPERIMENT` [default: $MREG_RUN_ID, else
    /// push records a run itself]
    #[arg(long, value_name = "ID")]
    run: Option<String>,
    /// Experiment of the run push records itself, credentials in it masked [default: the
    /// model's name]
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

/// Runs `mreg push`.
pub fn run(ctx: &Ctx, args: &PushArgs) -> Result<()> {
    let model = push::check_names(&args.model, args.experiment.as_deref())?;
    let reg = ctx.registry()?;
    args::warn_masked(ctx, "--message", args.message.as_deref());
    args::warn_masked(ctx, "--experiment", args.experiment.as_deref());
    let inputs = args::inputs(&args.params, Some(&args.metrics), Some(&args.lineage), None);
    let request = Request {
        dir: &args.dir,
        model: &model,
        message: args.message.as_deref(),
        run: args.run.as_deref(),
        experiment: args.experiment.as_deref(),
        inputs: &inputs,
        stage: args.stage.as_deref().map(|s| (s, args.gates.as_slice())),
        cwd: ctx.cwd(),
        reading: crate::store::snapshot::Reading::default(),
        source: None,
    };
    // Said after what was stored, which it is about.
    let mut unlinked = None;
    let mut pushed = push::push(
        &reg,
        &request,
        &ctx.out.progress(),
        &mut |notice| match notice {
            Notice::Warning(w) => ctx.out.warn(&w),
            Notice::Skipped(skipped) => report_skipped(ctx, skipped),
            Notice::UnlinkedRun {
                recorded,
                sibling,
                same_commit,
            } => unlinked = Some((recorded, sibling, same_commit)),
        },
    )?;
    tell_stored(ctx, args, &pushed.outcome, pushed.sent_to.as_deref());
    if let Some((recorded, sibling, same_commit)) = unlinked {
        report_unlinked(
            ctx,
            &pushed.outcome.reference,
            &recorded,
            &sibling,
            same_commit,
        );
    }
    let report = match pushed.promote(&reg) {
        Ok(report) => report,
        // The version exists: say which, as on success, before the promotion's error.
        Err(err) => {
            let reference = pushed.outcome.reference.clone();
            let printed = ctx.out.emit(&pushed.outcome, || reference);
            return output::after_print(printed, || Err(err));
        }
    };
    let (outcome, record) = (&pushed.outcome, &pushed.record);
    let reference = outcome.reference.clone();
    let printed = ctx.out.emit(outcome, || reference);
    output::after_print(printed, || {
        let Some((stage, report)) = report else {
            return Ok(());
        };
        // The gates and result go to stderr: stdout holds the reference alone, for
        // `$(mreg push …)`.
        let table = verdict::checks_table(&report.checks);
        if !ctx.out.is_json() && !table.is_empty() {
            ctx.out.status(table.trim_end());
        }
        verdict::tell(ctx, &record.model, record.version, &stage, &report)
    })
}

/// Prints what the push stored, or that there was nothing to store, on stderr.
fn tell_stored(ctx: &Ctx, args: &PushArgs, outcome: &push::Outcome, sent_to: Option<&str>) {
    let reference = &outcome.reference;
    let from = outcome
        .run
        .as_ref()
        .map(|id| format!(", from run {id}"))
        .unwrap_or_default();
    let files = output::count(outcome.files, "file");
    let bytes = output::bytes(outcome.bytes);
    match (outcome.created, sent_to, outcome.sent_bytes) {
        (true, Some(url), Some(sent)) => ctx.out.status(&format!(
            "Stored {files} ({bytes}, {} sent to {url}) as {reference}{from}.",
            output::bytes(sent)
        )),
        (true, ..) => ctx.out.status(&format!(
            "Stored {files} ({bytes}, {} new) as {reference}{from}.",
            output::bytes(outcome.new_bytes)
        )),
        (false, ..) => {
            ctx.out.status(&format!(
                "Nothing to push: {reference} already holds this content (tree {}).",
                outcome.tree.0.short(12)
            ));
            if args.message.is_some() {
                ctx.out
                    .warn("--message was not recorded: no version was created.");
            }
        }
    }
}

/// Warns that a push recorded its own run while a recent training run pushed nothing.
fn report_unlinked(
    ctx: &Ctx,
    version: &str,
    recorded: &RunId,
    sibling: &RunSummary,
    same_commit: bool,
) {
    let ended = sibling
        .end
        .as_deref()
        .map(|end| format!(" finished {}", output::ago(end)))
        .unwrap_or_default();
    ctx.out.warn(&format!(
        "{version} is linked to run {recorded}, which this push recorded, not to run {} \
         (experiment {}), a `mreg run` started here ({}) that{ended} without pushing a \
         model.",
        sibling.id,
        sibling.experiment,
        if same_commit {
            "same folder and commit"
        } else {
            "same folder, at another commit"
        }
    ));
    let how = if same_commit {
        format!("pass --run last (or --run {})", sibling.id)
    } else {
        format!(
            "pass --run {} (--run last takes only runs of the commit checked out)",
            sibling.id
        )
    };
    ctx.out.hint(&format!(
        "{version} stays linked to {recorded}. To link the next push to its training run, \
         push from inside `mreg run`, or {how}; in GitHub Actions, later steps of the job \
         have MREG_RUN_ID already"
    ));
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
