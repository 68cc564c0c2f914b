//! `mreg init`: create a registry.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::store::{Registry, keys};

/// Create a registry (.mreg) in a folder
///
/// Other commands find it by walking up from the current folder, like git. Without
/// DIR, the registry goes where --registry or MREG_REGISTRY says, else in the current
/// folder. Running init where a registry exists leaves it as it is.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  mreg init\n  mreg init /srv/registry && export MREG_REGISTRY=/srv/registry\n  mreg init s3://ml-models/registry"
)]
pub struct InitArgs {
    /// Folder (or s3://BUCKET/PREFIX) to create the registry in [default: --registry,
    /// else the current folder]
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct Outcome {
    path: String,
    created: bool,
}

/// Runs `mreg init`.
pub fn run(ctx: &Ctx, args: &InitArgs) -> Result<()> {
    let named = match &args.dir {
        Some(dir) => dir.to_str(),
        None => ctx.registry_spec(),
    };
    if let Some(url) = named.filter(|u| crate::remote::is_bucket_url(u)) {
        return init_bucket(ctx, url);
    }
    let dir = match (&args.dir, ctx.registry_spec()) {
        (Some(dir), _) => dir.clone(),
        (None, Some(spec)) => Registry::local_path(spec)?,
        (None, None) => PathBuf::from("."),
    };
    let (reg, created) = Registry::init(&dir)?;
    let path = reg.root().display().to_string();
    if created {
        ctx.out
            .status(&format!("Created an empty mreg registry in {path}."));
    } else {
        ctx.out.status(&format!(
            "A registry already exists in {path}; left as it is."
        ));
    }
    if ctx.out.is_json() {
        ctx.out.emit(&Outcome { path, created }, String::new)?;
    }
    Ok(())
}

/// Creates a registry under a bucket prefix: its `config.toml`, written create-only.
fn init_bucket(ctx: &Ctx, url: &str) -> Result<()> {
    let remote = crate::remote::open(url, false)?;
    let config = crate::store::config::initial_text(crate::store::registry::FORMAT);
    // Asked first, for stores that ignore create-only writes and would overwrite it.
    let created = remote.size(keys::CONFIG)?.is_none()
        && remote.create(keys::CONFIG, config.as_bytes())? == crate::remote::Created::New;
    if created {
        let id = crate::store::registry::new_registry_id();
        remote.create(keys::REGISTRY_ID, format!("{id}\n").as_bytes())?;
    }
    if created {
        ctx.out
            .status(&format!("Created an empty mreg registry at {url}."));
    } else {
        ctx.out.status(&format!(
            "A registry already exists at {url}; left as it is."
        ));
    }
    if ctx.out.is_json() {
        ctx.out.emit(
            &Outcome {
                path: url.to_owned(),
                created,
            },
            String::new,
        )?;
    }
    Ok(())
}
