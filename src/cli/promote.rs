//! `mreg promote`: move a stage to a version when its gates and the stage's policy hold.

use anyhow::Result;

use super::{Ctx, args, output, report, verdict};
use crate::ops::promote::{self, Request};

/// Move a stage to a model version, if its gates and the stage's policy hold
///
/// Every gate must hold: the stage's own gates from config.toml, then each --gate. A
/// gate is one comparison, KEY OP VALUE, where VALUE may be @STAGE (what the version in
/// that stage scored) with a tolerance: @production-0.005, @production*1.1. A missing
/// metric, NaN or an empty stage fails the gate; @production? passes while production is
/// empty (a pipeline's first promotion). A --gate key no version of the model has is a
/// typo: a usage error (exit 2), nothing recorded. A refused promotion moves nothing and
/// is recorded, with the values that refused it; --force --reason TEXT overrides the
/// gates and the policy, and is recorded too. A promotion to production moves the
/// version production held to archived in the same step (the stage's `replaced_to`).
///
/// Two promotions at once never overwrite each other: when the stages moved since they
/// were read, the gates are evaluated again against the new holders and the promotion
/// retried; with --expect, the stage must still hold that version, or it fails (exit 4).
/// Promoting a version older than the stage holds needs `mreg rollback` or
/// --allow-downgrade, so a delayed job cannot move production backwards.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg promote churn@4 staging
  mreg promote churn@4 production --gate 'acc>0.85' --gate 'acc>=@production-0.005'
  mreg promote churn@staging production --gate 'latency_ms<=@production*1.1'
  mreg promote churn@4 production --gate 'acc>=@production?-0.005'   # passes if empty
  mreg promote churn@4 production --expect 3 --json | jq -r .result
  mreg promote churn@4 production --force --reason 'hotfix for incident 42'
  mreg promote churn@4 production --dry-run
  mreg promote churn@4 staging --gate 'acc>0.85' --md >> \"$GITHUB_STEP_SUMMARY\"

Exit codes: 0 moved (or already there), 1 error, 2 usage error, 3 a gate did not hold
(nothing moved; the refusal is recorded), 4 the stage moved under you (--expect) or
would move backwards, or another promotion held the lock for all of --wait.")]
pub struct PromoteArgs {
    /// The version to promote: NAME@3, NAME@latest, NAME@staging, NAME@<tree hash>
    #[arg(value_name = "REF")]
    reference: String,
    /// The stage to move: staging, production, archived, or one config.toml declares
    #[arg(value_name = "STAGE")]
    stage: String,
    /// A gate that must hold, quoted: --gate 'acc>0.85' (repeatable; all must hold)
    #[arg(long = "gate", value_name = "EXPR")]
    gates: Vec<String>,
    /// Promote even if gates or the stage's policy refuse; needs --reason
    #[arg(long)]
    force: bool,
    /// Why this promotion happens; recorded (credentials in it masked), and required
    /// with --force
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Fail (exit 4) unless the stage holds this version when it moves: 3, churn@3, none
    #[arg(long, value_name = "VERSION")]
    expect: Option<String>,
    /// Allow promoting a version older than the one the stage holds
    #[arg(long)]
    allow_downgrade: bool,
    /// Seconds to wait for another promotion of the same model to finish
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    wait: f64,
    /// Evaluate and show what would move, writing nothing
    #[arg(long)]
    dry_run: bool,
    /// Print the outcome and the gates as Markdown, for a CI step summary (printed on a
    /// refusal too, before exit 3)
    #[arg(long)]
    md: bool,
    /// Sign the move with this private key (PEM): a record of who vouched for it, which
    /// `mreg history` shows by the signer's name under [signers] (docs/signing.md)
    #[arg(long, value_name = "KEY.pem")]
    key: Option<std::path::PathBuf>,
}

/// Runs `mreg promote`.
pub fn run(ctx: &Ctx, args: &PromoteArgs) -> Result<()> {
    report::refuse_md_with_json(ctx, args.md)?;
    let reg = ctx.registry()?;
    args::warn_masked(ctx, "--reason", args.reason.as_deref());
    // The key is read before anything moves: a move is never left unsigned for a
    // key that turns out unreadable.
    let key = args
        .key
        .as_deref()
        .map(crate::sign::keys::PrivateKey::read)
        .transpose()
        .map_err(|e| crate::error::Failure::usage(format!("{e:#}")))?;
    let request = Request {
        reference: &args.reference,
        stage: &args.stage,
        gates: &args.gates,
        force: args.force,
        reason: args.reason.as_deref(),
        expect: args.expect.as_deref(),
        allow_downgrade: args.allow_downgrade,
        wait_s: args.wait,
        dry_run: args.dry_run,
    };
    let p = promote::promote(&reg, &request)?;
    let printed = ctx.out.emit(&p.outcome, || {
        if args.md {
            let title = verdict::promotion_title(&p.model, p.version, &p.stage, &p.report);
            verdict::checks_markdown(&title, &p.report.checks)
        } else {
            verdict::checks_table(&p.report.checks)
        }
    });
    if let (Some(key), Some((state, _)), crate::stage::promote::Verdict::Moved) =
        (&key, &p.report.state, p.report.verdict)
    {
        let record = crate::store::models::load_version(&reg, &p.model, p.version)?;
        crate::ops::approve::sign_move(&reg, &record, &p.stage, state, key)?;
        ctx.out.status(&format!(
            "Signed the move with key {}.",
            key.public().short()
        ));
    }
    output::after_print(printed, || {
        verdict::tell(ctx, &p.model, p.version, &p.stage, &p.report)
    })
}
