//! `mreg model`: the fields of a model a person writes (description, intended use,
//! limitations, license, owner, tags), kept with the model and versioned.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{Ctx, output};
use crate::error::Failure;
use crate::manifest::info::{CHANGE_LIMIT, Field, Fields, InfoChange, ModelInfo};
use crate::ops::model::{self, Edit};

/// Write, show and trace a model's own fields: description, intended use,
/// limitations, license, owner, tags
///
/// These are what a person knows of a model and no run records. They belong to the
/// model (not to one version), are kept in the registry beside its versions, travel
/// with `sync`, and go into `mreg card` (the license and tags into its front matter)
/// and `mreg show NAME`. Every `set` or `unset` is one immutable change, with who made
/// it and when: `mreg model log` lists them all, earlier values included.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg model set churn --license apache-2.0 --owner 'retention-ml@example.com'
  mreg model set churn --description 'Predicts which subscribers cancel within 30 days.'
  mreg model set churn --intended-use 'Ranking accounts for outreach.' --tag tabular --tag churn
  mreg model show churn > churn.toml       # edit it, then:
  mreg model set churn --file churn.toml -m 'reviewed by legal'
  mreg model unset churn owner
  mreg model log churn")]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ModelCommand {
    /// Set fields of a model (only those given; the others keep their values)
    Set(SetArgs),
    /// Clear fields of a model
    Unset(UnsetArgs),
    /// Print a model's fields as TOML, the form `set --file` reads
    Show {
        /// The model
        #[arg(value_name = "NAME")]
        model: String,
    },
    /// List every change of a model's fields, oldest first
    Log {
        /// The model
        #[arg(value_name = "NAME")]
        model: String,
    },
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "A field given both in --file and as a flag takes the flag's value. \
Long texts are Markdown; a --file holds them as TOML strings (\"\"\"…\"\"\" spans lines). \
Line ends are made Unix ones and trailing blanks are trimmed; a license id is lowercased.

Examples:
  mreg model set churn --license apache-2.0 --owner 'retention-ml@example.com'
  mreg model set churn --description \"$(cat docs/churn.md)\" -m 'first description'
  mreg model set churn --tag tabular,churn            # replaces the model's tags
  mreg model show churn > f.toml && $EDITOR f.toml && mreg model set churn --file f.toml
  mreg model show other | mreg model set churn --file -   # copy another model's fields"
)]
struct SetArgs {
    /// The model
    #[arg(value_name = "NAME")]
    model: String,
    /// What the model is (Markdown)
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// What it is for, and for whom (Markdown)
    #[arg(long, value_name = "TEXT")]
    intended_use: Option<String>,
    /// Where it fails or must not be used (Markdown)
    #[arg(long, value_name = "TEXT")]
    limitations: Option<String>,
    /// Its license, as a Hugging Face license id: apache-2.0, mit, cc-by-4.0, other…
    #[arg(long, value_name = "ID")]
    license: Option<String>,
    /// The person or team answerable for it
    #[arg(long, value_name = "WHO")]
    owner: Option<String>,
    /// A tag (repeat it, or separate tags with commas); the tags given replace the
    /// model's tags
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    tags: Vec<String>,
    /// A TOML file of fields (`-`: stdin): description, intended_use, limitations,
    /// license, owner, tags (as `mreg model show` prints them)
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Why, kept with the change
    #[arg(long, short, value_name = "TEXT")]
    message: Option<String>,
}

#[derive(Debug, clap::Args)]
struct UnsetArgs {
    /// The model
    #[arg(value_name = "NAME")]
    model: String,
    /// The fields to clear: description, intended_use, limitations, license, owner, tags
    #[arg(value_name = "FIELD", required = true)]
    fields: Vec<String>,
    /// Why, kept with the change
    #[arg(long, short, value_name = "TEXT")]
    message: Option<String>,
}

/// Runs `mreg model`.
pub fn run(ctx: &Ctx, args: &ModelArgs) -> Result<()> {
    let reg = ctx.registry()?;
    match &args.command {
        ModelCommand::Set(set) => {
            let edit = Edit {
                set: fields_of(set)?,
                unset: Vec::new(),
                message: set.message.clone(),
            };
            edited(ctx, &model::edit(&reg, &set.model, &edit)?)
        }
        ModelCommand::Unset(unset) => {
            let fields = unset
                .fields
                .iter()
                .map(|name| {
                    Field::parse(name).ok_or_else(|| {
                        Failure::usage(format!("{name:?} is not a field of a model"))
                            .hint("the fields are description, intended_use, limitations, license, owner and tags")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let edit = Edit {
                set: Fields::default(),
                unset: fields,
                message: unset.message.clone(),
            };
            edited(ctx, &model::edit(&reg, &unset.model, &edit)?)
        }
        ModelCommand::Show { model } => {
            let info = model::show(&reg, model)?;
            warn_left_out(ctx, &info.refused);
            ctx.out.emit(&info, || toml_of(model, &info))
        }
        ModelCommand::Log { model } => {
            let (changes, refused) = model::log(&reg, model)?;
            warn_left_out(ctx, &refused);
            if changes.is_empty() && !ctx.out.is_json() {
                ctx.out.status(&format!(
                    "No fields written for {model} yet; `mreg model set {model} --description …` writes the first."
                ));
                return Ok(());
            }
            ctx.out.emit(&changes, || log_text(&changes))
        }
    }
}

/// Warns of each change of a model's fields that was left out of them, and how to find
/// it.
pub(super) fn warn_left_out(ctx: &Ctx, refused: &[String]) {
    for why in refused {
        ctx.out.warn(why);
    }
    if !refused.is_empty() {
        ctx.out
            .warn("`mreg fsck` lists what the registry holds that no command reads");
    }
}

/// Returns the fields `set` gives: those of its file, then its flags over them.
fn fields_of(set: &SetArgs) -> Result<Fields> {
    let mut fields = match &set.file {
        Some(path) => read_file(path)?,
        None => Fields::default(),
    };
    let given = Fields {
        description: set.description.clone(),
        intended_use: set.intended_use.clone(),
        limitations: set.limitations.clone(),
        license: set.license.clone(),
        owner: set.owner.clone(),
        tags: (!set.tags.is_empty()).then(|| set.tags.clone()),
    };
    for field in given.present() {
        fields.take(&given, field);
    }
    // Line ends as a file on any system writes them; a license id as Hugging Face
    // spells it; tags without the spaces around commas.
    for text in [
        &mut fields.description,
        &mut fields.intended_use,
        &mut fields.limitations,
    ]
    .into_iter()
    .flatten()
    {
        let unix = text.replace("\r\n", "\n");
        text.clear();
        text.push_str(unix.trim_end());
    }
    if let Some(license) = &mut fields.license {
        *license = license.trim().to_ascii_lowercase();
    }
    if let Some(tags) = &mut fields.tags {
        *tags = tags.iter().map(|t| t.trim().to_owned()).collect();
        tags.retain(|t| !t.is_empty());
        if tags.is_empty() {
            return Err(Failure::usage("no tag given: the tags are empty")
                .hint(format!(
                    "`mreg model unset {} tags` clears the tags",
                    set.model
                ))
                .into());
        }
    }
    Ok(fields)
}

/// Reads a TOML file of fields, or stdin for `-`: a regular file of at most
/// [`CHANGE_LIMIT`] bytes, so that a device or a pipe named by mistake neither hangs
/// nor fills the memory.
fn read_file(path: &std::path::Path) -> Result<Fields> {
    use std::io::Read as _;
    let shown = path.display();
    let limit = CHANGE_LIMIT;
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)
    } else {
        let meta = std::fs::metadata(path).with_context(|| format!("reading {shown}"))?;
        if !meta.is_file() {
            return Err(Failure::error(format!(
                "{shown} is not a regular file; --file reads a TOML file of fields"
            ))
            .hint("to read them from a pipe, give `--file -` and pipe them in")
            .into());
        }
        std::fs::File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
    };
    read.with_context(|| format!("reading {shown}"))?;
    if bytes.len() as u64 > limit {
        return Err(Failure::error(format!(
            "{shown} is longer than the {limit} bytes model fields may be"
        ))
        .into());
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::error(format!("{shown} is not UTF-8 text")))?;
    toml::from_str(&text).map_err(|err| {
        Failure::error(format!("{shown} is not a file of model fields: {err}"))
            .hint("it holds description, intended_use, limitations, license, owner and tags, as `mreg model show NAME` prints them")
            .into()
    })
}

/// Prints what an edit did.
fn edited(ctx: &Ctx, edited: &model::Edited) -> Result<()> {
    let model = &edited.model;
    if edited.changed.is_empty() {
        ctx.out.status(&format!(
            "{model}'s fields already hold these values; nothing was written."
        ));
        return ctx.out.emit(edited, String::new);
    }
    let names: Vec<&str> = edited.changed.iter().map(|f| f.as_str()).collect();
    ctx.out.status(&format!(
        "Changed {} of {model}: {}.",
        output::count(names.len() as u64, "field"),
        names.join(", ")
    ));
    ctx.out.emit(edited, String::new)
}

/// Returns a model's fields as TOML, after a comment saying whose and how recent.
fn toml_of(model: &str, info: &ModelInfo) -> String {
    let mut text = match (&info.updated, &info.updated_by) {
        (Some(time), Some(actor)) => format!(
            "# {model}: {}, the newest at {time} by {actor}\n",
            output::count(info.changes as u64, "change")
        ),
        _ => format!("# {model}: no fields written yet\n"),
    };
    text.push_str(&toml::to_string(&info.fields).unwrap_or_default());
    text.trim_end().to_owned()
}

/// Returns the changes as text: when, who, why, then what each set and cleared.
fn log_text(changes: &[InfoChange]) -> String {
    let mut out = String::new();
    for change in changes {
        let why = change
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let _ = writeln!(out, "{} by {}{why}", change.time, change.actor);
        for field in change.set.present() {
            let value = match (field, change.set.text(field)) {
                (_, Some(text)) if text.contains('\n') || text.chars().count() > 60 => {
                    format!(
                        "{:?}… ({} characters)",
                        text.lines()
                            .next()
                            .unwrap_or_default()
                            .chars()
                            .take(40)
                            .collect::<String>(),
                        text.chars().count()
                    )
                }
                (_, Some(text)) => format!("{text:?}"),
                (_, None) => change.set.tags.clone().unwrap_or_default().join(", "),
            };
            let _ = writeln!(out, "  set {} = {value}", field.as_str());
        }
        for field in &change.unset {
            let _ = writeln!(out, "  cleared {}", field.as_str());
        }
    }
    out.trim_end().to_owned()
}
