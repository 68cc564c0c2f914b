//! Comparing versions and runs: `diff` of two sides (params, metrics, files, tensors,
//! lineage), and `compare` of many (params and metrics in one table). The comparison
//! itself is [`crate::diff`]'s; this module loads the sides, applies what the command
//! asked to see, and says whether anything differs.

use anyhow::Result;

use crate::diff::compare::{self, Table};
use crate::diff::{self, Diff, Goals, Options, Side};
use crate::store::{Progress, Registry};

/// A section of a diff, as `--only` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Hyperparameters.
    Params,
    /// Final metrics and series.
    Metrics,
    /// Files of the versions.
    Files,
    /// Tensors of changed .safetensors files.
    Tensors,
    /// Git commit, branch, dirty state.
    Source,
    /// Data inputs.
    Data,
    /// Parent models.
    Parents,
    /// Machine, GPUs, container, CI job, lock files.
    Environment,
    /// Python distributions and their versions.
    Packages,
}

/// What `mreg diff` is asked to show.
pub struct Request<'a> {
    /// The old side: a version or a run id.
    pub old: &'a str,
    /// The new side.
    pub new: &'a str,
    /// Whether unchanged rows are kept.
    pub all: bool,
    /// The sections shown; all when empty.
    pub only: &'a [Part],
    /// Whether `.safetensors` files are read to compare their tensors.
    pub tensors: bool,
}

/// What a diff found: the diff as `--json` prints it, its two sides, and the files
/// whose tensors could not be compared.
pub struct Diffed {
    /// The diff, only the sections asked for, and only what changed unless `all`.
    pub diff: Diff,
    /// The old side.
    pub old: Side,
    /// The new side.
    pub new: Side,
    /// Files whose tensors could not be compared, with why.
    pub tensor_errors: Vec<(String, String)>,
    /// Whether the files section was asked for.
    pub files_wanted: bool,
}

/// Diffs two versions or runs.
pub fn diff(reg: &Registry, request: &Request, progress: &dyn Progress) -> Result<Diffed> {
    let old = Side::load(reg, request.old)?;
    let new = Side::load(reg, request.new)?;
    let wants = |part: Part| request.only.is_empty() || request.only.contains(&part);
    let goals = Goals::new(&reg.config()?.metrics);
    let options = Options {
        all: request.all,
        tensors: request.tensors && wants(Part::Tensors),
    };
    let mut result = diff::diff(reg, &old, &new, &goals, options, progress)?;
    keep_parts(&mut result, &wants);
    result.differs = result.any_change();
    if !request.all {
        result.retain_changed();
    }
    let tensor_errors = result
        .tensor_errors()
        .map(|(p, e)| (p.to_owned(), e.to_owned()))
        .collect();
    Ok(Diffed {
        diff: result,
        old,
        new,
        tensor_errors,
        files_wanted: wants(Part::Files),
    })
}

/// Empties the sections that `--only` leaves out.
fn keep_parts(result: &mut Diff, wants: &dyn Fn(Part) -> bool) {
    if !wants(Part::Params) {
        result.params.clear();
    }
    if !wants(Part::Metrics) {
        result.metrics.clear();
    }
    if !wants(Part::Files) {
        result.files = None;
    }
    if !wants(Part::Tensors) {
        result.tensors.clear();
    }
    if !wants(Part::Source) {
        result.source.clear();
    }
    if !wants(Part::Data) {
        result.data.clear();
    }
    if !wants(Part::Parents) {
        result.parents.clear();
    }
    if !wants(Part::Environment) {
        result.environment.clear();
    }
    if !wants(Part::Packages) {
        result.packages.clear();
        result.package_problems.clear();
    }
}

/// What a comparison found: the table as `--json` prints it (only the rows that differ
/// unless `all`), and whether any row differs.
pub struct Compared {
    /// The table.
    pub table: Table,
    /// Whether any row differs.
    pub differs: bool,
}

/// Loads each side (a version or a run id) of a comparison.
pub fn sides(reg: &Registry, texts: &[String]) -> Result<Vec<Side>> {
    texts.iter().map(|text| Side::load(reg, text)).collect()
}

/// Compares the params and metrics of `sides`, the best value of each metric marked by
/// the registry's metric goals.
pub fn compare(reg: &Registry, sides: &[Side], all: bool) -> Result<Compared> {
    let goals = Goals::new(&reg.config()?.metrics);
    let mut table = compare::compare(sides, &goals);
    let differs = table.rows.iter().any(|r| !r.same);
    if !all {
        table.retain_changed();
    }
    Ok(Compared { table, differs })
}
