//! Helpers for the library's unit tests: throwaway registries with content made through
//! the same use cases the commands run.

pub mod fuzz;

use std::path::Path;

use tempfile::TempDir;

use crate::manifest::VersionRecord;
use crate::names::ModelName;
use crate::ops::inputs::Inputs;
use crate::ops::{promote, push};
use crate::stage::promote::Report;
use crate::store::{NoProgress, Registry};

/// A registry in a temp folder, removed when dropped.
pub struct TempRegistry {
    /// The folder holding `.mreg`, and the model folders pushed from it.
    pub dir: TempDir,
    /// The registry.
    pub reg: Registry,
}

impl TempRegistry {
    /// Returns a new, empty registry.
    pub fn new() -> TempRegistry {
        let dir = tempfile::tempdir().expect("a temp folder");
        let (reg, _) = Registry::init(dir.path()).expect("a new registry");
        TempRegistry { dir, reg }
    }

    /// Pushes a folder of `files` (name, bytes) as the next version of `model`, with
    /// final metrics `metrics` (`KEY=NUMBER`).
    pub fn push(&self, model: &str, files: &[(&str, &[u8])], metrics: &[&str]) -> VersionRecord {
        push_in(&self.reg, self.dir.path(), model, files, metrics).expect("the push works")
    }

    /// Promotes `reference` to `stage` through `gates`.
    pub fn promote(&self, reference: &str, stage: &str, gates: &[&str]) -> Report {
        promote_in(&self.reg, reference, stage, gates).expect("the promotion runs")
    }
}

/// Pushes a folder of `files` (name, bytes), made in a temp folder under `scratch`, as
/// the next version of `model` in `reg`, with final metrics `metrics` (`KEY=NUMBER`).
pub fn push_in(
    reg: &Registry,
    scratch: &Path,
    model: &str,
    files: &[(&str, &[u8])],
    metrics: &[&str],
) -> anyhow::Result<VersionRecord> {
    let folder = tempfile::tempdir_in(scratch)?;
    for (name, bytes) in files {
        write(folder.path(), name, bytes);
    }
    let model = ModelName::parse(model)?;
    let inputs = Inputs {
        metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
        ..Inputs::default()
    };
    let request = push::Request {
        dir: folder.path(),
        model: &model,
        message: None,
        run: None,
        experiment: None,
        inputs: &inputs,
        stage: None,
        cwd: scratch,
        reading: crate::store::snapshot::Reading::default(),
        source: None,
    };
    Ok(push::push(reg, &request, &NoProgress, &mut |_| {})?.record)
}

/// Promotes `reference` to `stage` in `reg` through `gates`.
pub fn promote_in(
    reg: &Registry,
    reference: &str,
    stage: &str,
    gates: &[&str],
) -> anyhow::Result<Report> {
    let gates: Vec<String> = gates.iter().map(|g| (*g).to_owned()).collect();
    let request = promote::Request {
        reference,
        stage,
        gates: &gates,
        force: false,
        reason: None,
        expect: None,
        allow_downgrade: false,
        wait_s: 10.0,
        dry_run: false,
    };
    promote::promote(reg, &request).map(|p| p.report)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("a folder");
    std::fs::write(path, bytes).expect("a file");
}
