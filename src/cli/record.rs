//! Building run records: what every new run records of where and how it started.

use std::collections::BTreeMap;

use anyhow::Result;

use super::Ctx;
use super::inputs::Additions;
use crate::clock;
use crate::error::Failure;
use crate::lineage;
use crate::manifest::run::{Command, FORMAT, Status};
use crate::manifest::{RunId, RunRecord};
use crate::store::{Registry, runs};

/// Returns a run record as a run starts: who, when, where, and the source and
/// environment it runs in.
pub fn start_record(
    ctx: &Ctx,
    experiment: &str,
    name: Option<String>,
    start: String,
    argv: Option<&[String]>,
) -> RunRecord {
    let cwd = ctx.cwd();
    let source = lineage::source(cwd);
    let root = source
        .as_ref()
        .map_or(cwd.to_path_buf(), |s| s.root.clone().into());
    let environment = lineage::environment(&root);
    let host = environment.hostname.clone();
    RunRecord {
        format: FORMAT,
        id: RunId::parse("0000000000000000").expect("a valid placeholder id"),
        experiment: experiment.to_owned(),
        name,
        status: if argv.is_some() {
            Status::Running
        } else {
            Status::Finished
        },
        start,
        actor: clock::actor(),
        end: None,
        command: argv.map(|argv| Command {
            argv: argv.to_vec(),
            cwd: Some(cwd.display().to_string()),
            host,
            pid: Some(std::process::id()),
        }),
        params: BTreeMap::new(),
        metrics: BTreeMap::new(),
        tags: BTreeMap::new(),
        series: BTreeMap::new(),
        source,
        data: Vec::new(),
        parents: Vec::new(),
        outputs: Vec::new(),
        environment: Some(environment),
    }
}

/// Publishes a new run holding `record` plus `add`, and returns it with its id.
pub fn create_with(reg: &Registry, mut record: RunRecord, add: Additions) -> Result<RunRecord> {
    add.apply_to(reg, &mut record)?;
    runs::create(reg, record)
}

/// Refuses an experiment or run name that is empty, too long or has control characters.
pub fn check_label(flag: &str, text: &str) -> Result<(), Failure> {
    if text.is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(Failure::usage(format!(
            "{flag} {text:?} is not usable: give 1 to 200 characters, without control characters"
        )));
    }
    Ok(())
}
