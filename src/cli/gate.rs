//! `mreg gate`: evaluate gates against a version without moving anything.

use anyhow::Result;

use super::{Ctx, output, report, verdict};
use crate::error::Failure;
use crate::ops::gate;

/// Check gates against a version without moving anything (for pull-request checks)
///
/// Each EXPR is one comparison, KEY OP VALUE, where VALUE may be @STAGE (the value of
/// the version that stage holds) with a tolerance: @production-0.005, @production*1.1.
/// Bare names are metrics; params.X, tags.X and attributes.X (version, files, bytes,
/// created, actor, tree, run) work too. A missing value, NaN or an empty stage fails;
/// @production? passes while production is empty. A key no version of the model has is
/// a usage error (exit 2) naming the closest one.
/// With --stage, the stage's policy from config.toml is checked first (and its signing rules,
/// a signature and approvals, last, as the promotion checks them). Exits 0 when
/// every gate holds, 3 when one does not. Quote each gate: an unquoted > redirects.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg gate churn@4 'acc>0.85' 'latency_ms<=20'
  mreg gate churn@latest 'acc>=@production-0.005' 'latency_ms<=@production*1.1'
  mreg gate churn@4 --stage production
  mreg gate churn@4 'acc>0.85' --json | jq .passed
  mreg gate churn@4 'acc>=@production' --md >> \"$GITHUB_STEP_SUMMARY\"

Exit codes: 0 every gate holds, 1 error, 2 usage error, 3 a gate does not hold.")]
pub struct GateArgs {
    /// The version to check: NAME@3, NAME@latest, NAME@staging
    #[arg(value_name = "REF")]
    reference: String,
    /// Gates, each one quoted comparison: 'acc>0.85'
    #[arg(value_name = "EXPR")]
    gates: Vec<String>,
    /// Also check the policy of this stage (its `from` and its gates)
    #[arg(long, value_name = "STAGE")]
    stage: Option<String>,
    /// Print the gates as Markdown, for a CI step summary or a pull-request comment
    /// (printed when they fail too, before exit 3)
    #[arg(long)]
    md: bool,
}

/// Runs `mreg gate`; a gate that does not hold is a failure that exits 3.
pub fn run(ctx: &Ctx, args: &GateArgs) -> Result<()> {
    report::refuse_md_with_json(ctx, args.md)?;
    let reg = ctx.registry()?;
    let checked = gate::check(&reg, &args.reference, &args.gates, args.stage.as_deref())?;
    let checks = &checked.checks;
    let printed = ctx.out.emit(&checked, || {
        if args.md {
            let failed = checks.iter().filter(|c| !c.passed).count();
            let title = if failed == 0 {
                format!("{}: passes", checked.reference)
            } else {
                format!("{}: fails", checked.reference)
            };
            verdict::checks_markdown(&title, checks)
        } else {
            verdict::checks_table(checks)
        }
    });
    output::after_print(printed, || tell(ctx, &checked))
}

/// Says whether the gates held: a status line, or the failure that exits 3.
fn tell(ctx: &Ctx, checked: &gate::Checked) -> Result<()> {
    let checks = &checked.checks;
    if checked.passed {
        ctx.out.status(&format!(
            "{} passes {}.",
            checked.reference,
            output::count(checks.len() as u64, "gate")
        ));
        return Ok(());
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    Err(Failure::gate(format!(
        "{} fails {failed} of {}:{}",
        checked.reference,
        output::count(checks.len() as u64, "gate"),
        verdict::failures(checks)
    ))
    .hint("nothing was recorded; `mreg promote` records a refusal, `mreg gate` never does")
    .into())
}
