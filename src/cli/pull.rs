//! `mreg pull`: materialize a model version into a folder.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{Ctx, output, report};
use crate::ops::{layouts, pull};
use crate::refspec::ModelRef;
use crate::store::materialize::Options;
use crate::store::select::Select;

/// Materialize a model version into a folder
///
/// The folder is built beside the target and renamed into place, so a serving
/// process never sees half a model. Every byte is verified against its hash. The
/// version's tree is checked before anything is written: no entry can land outside
/// the target. A target that is not empty is refused unless --force is given, which
/// replaces its whole contents.
///
/// Objects the registry lacks are fetched from its default remote (`mreg remote`),
/// re-hashed before use; a registry used as --registry s3://… fetches from the bucket.
///
/// References: NAME (latest), NAME@3, NAME@v3, NAME@latest, NAME@production (the
/// version a stage holds), NAME@<tree-hash prefix>.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg pull churn@3 --to ./model
  mreg pull churn@production --to /srv/model --force --durable
  mreg pull churn@production --to ./model --card     # with README.md, the model card
  mreg pull churn@4 --to ./model --signature         # with model.sig, its OMS signature
  model_signing verify key ./model --signature ./model/model.sig --public_key alice.pub
  mreg pull llm@4 --to ./tok --only 'tokenizer*' --only '*.json'   # only those files
  mreg pull llm@4 --to ./shard1 --only 'model-00001-of-*.safetensors'
  mreg pull churn@4 --to ./model --exclude 'optimizer/' --exclude '*.ckpt'
  mreg pull churn@production --to /models --layout triton     # /models/churn/4/…
  mreg pull llm@4 --layout hf-cache --repo-id acme/llm
  HF_HUB_OFFLINE=1 python serve.py       # from_pretrained('acme/llm') finds it

Patterns: `*` and `?` match within a name, `**` across folders, `[abc]` one of a set,
`\\` escapes. A pattern without `/` matches a name at any depth; one with `/` (or a
leading `/`) matches the path from the version's root; a pattern matching a folder takes
everything in it, and one ending in `/` matches folders only. --exclude wins over --only.
A link is taken by its own path; one whose target is left out is named in a warning.")]
pub struct PullArgs {
    /// The version to pull
    #[arg(value_name = "REF")]
    reference: String,
    /// Folder to create or replace; with --layout, the model repository or cache to
    /// add to [hf-cache default: HF_HUB_CACHE, else HF_HOME/hub, else
    /// ~/.cache/huggingface/hub]
    #[arg(long, value_name = "DIR", required_unless_present = "layout")]
    to: Option<PathBuf>,
    /// Replace the contents of a folder that is not empty
    #[arg(long)]
    force: bool,
    /// Flush the files to disk before the folder appears (survives a power cut)
    #[arg(long)]
    durable: bool,
    /// Also write the version's model card (`mreg card`) as README.md in the folder,
    /// unless the version has a README.md of its own
    #[arg(long)]
    card: bool,
    /// Also write the version's signature (`mreg sign`) as model.sig in the folder, for
    /// `model_signing verify key` or `mreg verify --dir`; with several, give the start of
    /// one's id (as `mreg verify` lists them) or of its signer's key hint
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "", conflicts_with_all = ["card", "only", "exclude"])]
    signature: Option<String>,
    /// Pull only the files matching this glob (repeatable); only what they need is
    /// fetched from a remote, and each is verified like a whole pull
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// Leave out the files matching this glob (repeatable), even those --only takes
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Lay the version out for a server: `triton` (DIR/NAME/N/ and DIR/NAME/config.pbtxt)
    /// or `hf-cache` (a Hugging Face cache entry, found offline by its repo id)
    #[arg(long, value_enum, value_name = "LAYOUT", conflicts_with_all = ["card", "signature"])]
    layout: Option<Layout>,
    /// With --layout triton: the model's name in the repository [default: the model's]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// With --layout hf-cache: the repo id it is found by [default: the model's name]
    #[arg(long, value_name = "ORG/NAME")]
    repo_id: Option<String>,
    /// With --layout hf-cache: the branch whose ref names the snapshot [default: main]
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
}

/// A serving layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Layout {
    /// A Triton Inference Server model repository
    Triton,
    /// A Hugging Face hub cache
    HfCache,
}

/// Returns the model card of `reference`, made before anything is pulled so that a
/// card that cannot be made leaves no folder behind.
fn card_of(ctx: &Ctx, reg: &crate::store::Registry, reference: &str) -> Result<String> {
    let card = crate::ops::card::card(reg, reference)?;
    super::model::warn_left_out(ctx, &card.info.refused);
    Ok(report::card::markdown(
        &card,
        &report::card::task(&card, None),
    ))
}

/// Writes the model card `text` of `reference` as `README.md` in the pulled folder
/// `dir`, whole or not at all; a README.md the version holds itself is kept.
fn write_card(ctx: &Ctx, text: &str, reference: &str, dir: &std::path::Path) -> Result<()> {
    let target = dir.join("README.md");
    if std::fs::symlink_metadata(&target).is_ok() {
        ctx.out.warn(&format!(
            "{reference} has a README.md of its own; the model card was not written over it"
        ));
        return Ok(());
    }
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing the model card into {}", dir.display()))?;
    std::io::Write::write_all(&mut temp, format!("{}\n", text.trim_end()).as_bytes())
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt as _;
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .with_context(|| format!("writing the model card into {}", dir.display()))?;
    temp.persist_noclobber(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", target.display()))?;
    ctx.out
        .status(&format!("Wrote the model card to {}.", target.display()));
    Ok(())
}

/// Pulls into a serving layout.
fn run_layout(
    ctx: &Ctx,
    args: &PullArgs,
    layout: Layout,
    reg: &crate::store::Registry,
    fetched: &pull::Fetched,
    select: Option<&Select>,
) -> Result<()> {
    let opts = Options {
        force: args.force,
        durable: args.durable,
    };
    let model = &fetched.record.model;
    let laid = match layout {
        Layout::Triton => {
            let repo = args.to.as_ref().ok_or_else(|| {
                crate::error::Failure::usage("--layout triton needs --to DIR, the model repository")
            })?;
            layouts::triton(
                reg,
                fetched,
                repo,
                args.name.as_deref().unwrap_or(model),
                opts,
                select,
                &ctx.out.progress(),
            )?
        }
        Layout::HfCache => {
            let cache = match &args.to {
                Some(dir) => dir.clone(),
                None => layouts::default_hf_cache().ok_or_else(|| {
                    crate::error::Failure::usage(
                        "--layout hf-cache needs --to: HF_HUB_CACHE, HF_HOME and HOME are all unset",
                    )
                })?,
            };
            layouts::hf_cache(
                reg,
                fetched,
                &layouts::HfTarget {
                    cache: &cache,
                    repo_id: args.repo_id.as_deref().unwrap_or(model),
                    branch: args.branch.as_deref().unwrap_or("main"),
                },
                opts,
                select,
                &ctx.out.progress(),
            )?
        }
    };
    ctx.out.emit(&laid, String::new)?;
    if let (Some(before), Some(branch)) = (&laid.replaced, &laid.branch) {
        ctx.out.warn(&format!(
            "refs/{branch} named the revision {before}, which stays in the cache; it names {} now (--branch NAME writes another ref)",
            laid.revision.as_deref().unwrap_or_default()
        ));
    }
    let how = match (&laid.repo_id, &laid.branch) {
        (Some(repo), Some(branch)) => format!(
            " as {repo} (revision {}, refs/{branch})",
            laid.revision.as_deref().unwrap_or_default()
        ),
        _ if laid.config == Some(true) => " with config.pbtxt beside it".to_owned(),
        _ => String::new(),
    };
    ctx.out.status(&format!(
        "Pulled {} ({}, {}) into {}{how}.",
        laid.reference,
        output::count(laid.files, "file"),
        output::bytes(laid.bytes),
        laid.path
    ));
    Ok(())
}

/// Runs `mreg pull`.
pub fn run(ctx: &Ctx, args: &PullArgs) -> Result<()> {
    let reference = ModelRef::parse(&args.reference)?;
    let triton = args.layout == Some(Layout::Triton);
    let hf = args.layout == Some(Layout::HfCache);
    if args.name.is_some() && !triton {
        return Err(
            crate::error::Failure::usage("--name names the model in --layout triton").into(),
        );
    }
    if (args.repo_id.is_some() || args.branch.is_some()) && !hf {
        return Err(crate::error::Failure::usage(
            "--repo-id and --branch name the model in --layout hf-cache",
        )
        .into());
    }
    let reg = ctx.registry()?;
    let opts = Options {
        force: args.force,
        durable: args.durable,
    };
    let select = Select::new(&args.only, &args.exclude)?;
    let fetched = pull::fetch(&reg, &reference, select.as_ref(), &ctx.out.progress())?;
    if let Some((name, moved)) = &fetched.from {
        ctx.out.status(&format!(
            "Fetched {} of missing objects from {name}.",
            output::bytes(*moved)
        ));
    }
    if let Some(layout) = args.layout {
        return run_layout(ctx, args, layout, &reg, &fetched, select.as_ref());
    }
    let to = args
        .to
        .as_ref()
        .expect("clap requires --to without --layout");
    let card = if args.card {
        Some(card_of(ctx, &reg, &fetched.record.reference())?)
    } else {
        None
    };
    let outcome = pull::pull(
        &reg,
        &fetched,
        to,
        opts,
        args.signature.as_deref(),
        select.as_ref(),
        &ctx.out.progress(),
    )?;
    let files = match outcome.of_files {
        Some(of) => format!("{} of {of} files", outcome.files),
        None => output::count(outcome.files, "file"),
    };
    ctx.out.status(&format!(
        "Pulled {} ({files}, {}) into {}.",
        outcome.reference,
        output::bytes(outcome.bytes),
        outcome.path
    ));
    if !outcome.dangling_links.is_empty() {
        ctx.out.warn(&format!(
            "these links were pulled without their targets, which the selection leaves out: {}",
            outcome.dangling_links.join(", ")
        ));
    }
    if args.signature.is_some() {
        ctx.out.status(&format!(
            "Wrote its signature to {}.",
            std::path::Path::new(&outcome.path)
                .join(crate::sign::oms::SIGNATURE_FILE)
                .display()
        ));
    }
    if let Some(card) = &card {
        write_card(ctx, card, &outcome.reference, to)?;
    }
    if ctx.out.is_json() {
        ctx.out.emit(&outcome, String::new)?;
    }
    Ok(())
}
