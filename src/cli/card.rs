//! `mreg card`: a version's model card in Markdown, with Hugging Face's YAML front matter.

use anyhow::Result;

use super::{Ctx, report};
use crate::error::Failure;
use crate::ops::card;

/// Print a model card for a version, from what the registry recorded
///
/// The card is Markdown with Hugging Face's YAML front matter: `tags`, `base_model` (the
/// version's parents), `datasets` (its run's data inputs) and `model-index` results
/// built from the version's metrics. The body gives the version, the run that trained
/// it (command, git source), its data with hashes, hyperparameters, hold-out metrics,
/// environment (with its Python packages and lock files), lineage, who signed and
/// approved it (by the names `[signers]` gives their keys) and stage history.
/// Everything comes from the records: nothing is made up.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg card churn@production
  mreg card churn@production > out/README.md     # the card beside the model files
  mreg card churn@4 --task tabular-classification")]
pub struct CardArgs {
    /// The version: NAME@3, NAME@production, NAME@latest
    #[arg(value_name = "REF")]
    reference: String,
    /// The task the model performs, for model-index (Hugging Face task names, such as
    /// text-classification) [default: the run's tag `task`, else `other`]
    #[arg(long, value_name = "TASK")]
    task: Option<String>,
}

/// Runs `mreg card`.
pub fn run(ctx: &Ctx, args: &CardArgs) -> Result<()> {
    if ctx.out.is_json() {
        return Err(Failure::usage("card prints Markdown and has no JSON form")
            .hint("`mreg show REF --json` gives the records the card is made of")
            .into());
    }
    let reg = ctx.registry()?;
    let card = card::card(&reg, &args.reference)?;
    super::model::warn_left_out(ctx, &card.info.refused);
    let task = report::card::task(&card, args.task.as_deref());
    let text = report::card::markdown(&card, &task);
    ctx.out.emit(&(), || text.trim_end().to_owned())
}
