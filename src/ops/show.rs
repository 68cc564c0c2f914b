//! Showing one thing: a version's record (with the stages holding it, and optionally
//! its files), or a run's record with its events folded in (and optionally the points
//! of its series).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::error::Failure;
use crate::id::{ObjectId, RunId};
use crate::manifest::info::ModelInfo;
use crate::manifest::json::{json_of_manifest, json_of_value};
use crate::manifest::series::{Chunk, Point};
use crate::manifest::{Removal, RunRecord, RunRemoval, Value, VersionRecord};
use crate::refspec::ModelRef;
use crate::store::{Registry, materialize, models, removals, runs, stages};

/// What `mreg show` shows.
pub enum Shown {
    /// A model version.
    Version(Box<VersionView>),
    /// A run.
    Run(Box<RunView>),
}

/// Shows what `reference` names: a run (by id or unique prefix) or a version. `files`
/// asks for a version's files, `series` for a run's series points (`""`: all of them),
/// `curves` for the values of every series of a run, to draw.
pub fn show(
    reg: &Registry,
    reference: &str,
    files: bool,
    series: Option<&str>,
    curves: bool,
) -> Result<Shown> {
    if let Some(id) = runs::named(reg, reference)? {
        if files {
            return Err(Failure::usage(format!(
                "{reference} is a run; --files lists a version's files"
            ))
            .hint("`mreg show NAME@N --files` lists the files of a version")
            .into());
        }
        return run(reg, &id, series, curves).map(|v| Shown::Run(Box::new(v)));
    }
    if series.is_some() {
        return Err(Failure::usage(format!(
            "{reference} is not a run; --series shows a run's metric series"
        ))
        .hint("give a run id, as `mreg runs` lists them")
        .into());
    }
    let model_ref = ModelRef::parse(reference)?;
    let could_be_run =
        !reference.contains('@') && runs::looks_like_id(&reference.to_ascii_lowercase());
    if could_be_run && !models::list_models(reg)?.iter().any(|m| m == reference) {
        return Err(
            Failure::error(format!("no model or run matches {reference:?}"))
                .hint(
                    "`mreg ls` lists the models and `mreg runs` the runs; a run is named by its id \
             or a unique prefix of it (4 or more hex digits), a version by NAME@N",
                )
                .into(),
        );
    }
    let mut view = version(reg, &model_ref, files)?;
    view.whole_model = !reference.contains('@');
    Ok(Shown::Version(Box::new(view)))
}

/// One file of a version, as `--files` lists it.
#[derive(Debug, Serialize)]
pub struct FileRow {
    /// Its path in the version.
    pub path: String,
    /// A link's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `file`, `exec` or `link`.
    pub kind: &'static str,
    /// Its bytes (a link: its target's length).
    pub size: u64,
    /// Its content hash.
    pub hash: ObjectId,
}

/// A version's record, the stages holding it, and its files when asked for.
pub struct VersionView {
    /// The record.
    pub record: VersionRecord,
    /// The declared stages that hold it, in order.
    pub held: Vec<String>,
    /// Its files, sorted by path.
    pub files: Option<Vec<FileRow>>,
    /// Its removal record, when it was removed.
    pub removal: Option<Removal>,
    /// Its model's own fields (`mreg model set`); why they cannot be read, when they
    /// cannot.
    pub info: Result<ModelInfo, String>,
    /// Whether the reference named the model alone (`show churn`), which shows the
    /// model's fields before its newest version.
    pub whole_model: bool,
    /// Its signatures and approvals, as their records name their keys.
    pub signed: crate::sign::Summary,
}

/// A version as `mreg show --json` prints it.
#[derive(Serialize)]
pub struct VersionJson<'a> {
    /// The record as JSON, by way of TOML so that NaN metrics stay `"NaN"`.
    #[serde(flatten)]
    record: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_list: Option<&'a [FileRow]>,
}

impl VersionView {
    /// Returns the version as `--json` prints it.
    pub fn json(&self) -> Result<VersionJson<'_>> {
        let mut record = json_of_manifest(&self.record)?;
        if let Some(object) = record.as_object_mut() {
            object.insert("stages".to_owned(), self.held.clone().into());
            let removed = match &self.removal {
                Some(removal) => json_of_manifest(removal)?,
                None => serde_json::Value::Null,
            };
            object.insert("removed".to_owned(), removed);
            if !self.signed.is_empty() {
                object.insert("signed".to_owned(), serde_json::to_value(&self.signed)?);
            }
            match &self.info {
                Ok(info) if info.changes > 0 => {
                    object.insert("model_info".to_owned(), serde_json::to_value(info)?);
                }
                Ok(_) => {}
                Err(why) => {
                    object.insert("model_info_error".to_owned(), why.clone().into());
                }
            }
        }
        Ok(VersionJson {
            record,
            file_list: self.files.as_deref(),
        })
    }
}

fn version(reg: &Registry, reference: &ModelRef, files: bool) -> Result<VersionView> {
    let (record, removal) = models::resolve_any(reg, reference)?;
    if let Some(removal) = removal.as_ref().filter(|_| files) {
        return Err(models::removed_error(removal, None));
    }
    let files = if files {
        Some(file_rows(reg, &record)?)
    } else {
        None
    };
    let held: Vec<String> = match stages::current(reg, &record.model)? {
        Some((_, state)) => reg
            .config()?
            .stage_names()
            .into_iter()
            .filter(|s| state.holder(s) == Some(record.version))
            .collect(),
        None => Vec::new(),
    };
    let info = crate::store::info::current(reg, &record.model).map_err(|err| format!("{err:#}"));
    let signed = crate::sign::summary(reg, &record.model, &record.tree);
    Ok(VersionView {
        record,
        held,
        files,
        removal,
        info,
        whole_model: false,
        signed,
    })
}

fn file_rows(reg: &Registry, record: &VersionRecord) -> Result<Vec<FileRow>> {
    let plan = materialize::plan(reg, &models::graph(reg, record)?)?;
    let mut rows: Vec<FileRow> = plan
        .files
        .iter()
        .map(|f| FileRow {
            path: f.path.clone(),
            target: None,
            kind: if f.exec { "exec" } else { "file" },
            size: f.size,
            hash: f.id,
        })
        .chain(plan.links.iter().map(|(path, target)| FileRow {
            path: path.clone(),
            target: Some(target.clone()),
            kind: "link",
            size: target.len() as u64,
            hash: ObjectId::of(target.as_bytes()),
        }))
        .collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(rows)
}

/// A run's record with its events folded in, its series summarized, and the points of
/// the series asked for.
pub struct RunView {
    /// The record, its series' points left out.
    pub summary: RunRecord,
    /// The points of each series asked for.
    pub points: BTreeMap<String, Vec<Point>>,
    /// Its removal record, when it was removed.
    pub removal: Option<RunRemoval>,
    /// Its Python packages by name, from the stored list; why they cannot be read, when
    /// they cannot; `None` when the run has no stored list.
    pub packages: Option<Result<BTreeMap<String, String>, String>>,
    /// The values of each series, in step order, when asked for, to draw.
    pub curves: BTreeMap<String, Vec<f64>>,
}

impl RunView {
    /// Returns the run as `--json` prints it: the summary, with each series asked for
    /// holding its `points`.
    pub fn json(&self) -> Result<serde_json::Value> {
        let mut json = json_of_manifest(&self.summary)?;
        if let Some(object) = json.as_object_mut() {
            let removed = match &self.removal {
                Some(removal) => json_of_manifest(removal)?,
                None => serde_json::Value::Null,
            };
            object.insert("removed".to_owned(), removed);
        }
        if let Some(Ok(packages)) = &self.packages
            && let Some(python) = json
                .pointer_mut("/environment/python")
                .and_then(|p| p.as_object_mut())
        {
            let list = packages
                .iter()
                .map(|(name, version)| (name.clone(), version.clone().into()))
                .collect();
            python.insert("package_list".to_owned(), serde_json::Value::Object(list));
        }
        for (key, list) in &self.points {
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "step": p.0,
                        "value": json_of_value(&Value::Float(p.1)),
                        "time": p.2,
                    })
                })
                .collect();
            if let Some(entry) = json.pointer_mut(&format!("/series/{}", escape_pointer(key)))
                && let Some(object) = entry.as_object_mut()
            {
                object.insert("points".to_owned(), serde_json::Value::Array(rows));
            }
        }
        Ok(json)
    }
}

fn run(reg: &Registry, id: &RunId, series: Option<&str>, curves: bool) -> Result<RunView> {
    let record = runs::load(reg, id)?;
    let removal = removals::of_run(reg, id)?;
    if let Some(removal) = removal.as_ref().filter(|_| series.is_some()) {
        return Err(removals::run_removed_error(removal));
    }
    let wanted: Vec<&String> = match series {
        None => Vec::new(),
        Some("") => record.series.keys().collect(),
        Some(key) => {
            let Some((key, _)) = record.series.get_key_value(key) else {
                let known: Vec<&str> = record.series.keys().map(String::as_str).collect();
                return Err(
                    Failure::error(format!("run {id} has no series named {key:?}"))
                        .hint(if known.is_empty() {
                            "it has no series: log some with `mreg log --metric KEY=V --step N`"
                                .to_owned()
                        } else {
                            format!("its series are: {}", known.join(", "))
                        })
                        .into(),
                );
            };
            vec![key]
        }
    };
    let mut points = BTreeMap::new();
    let mut budget = runs::SeriesBudget::new();
    for key in wanted {
        let list = runs::load_points(reg, &record.series[key].chunk, &mut budget)
            .with_context(|| format!("reading the points of series {key:?} of run {id}"))?;
        points.insert(key.clone(), list);
    }
    // Drawn only: a series over what one command may read is left undrawn, not an error.
    let mut values = BTreeMap::new();
    if curves {
        for (key, s) in &record.series {
            let list = match points.get(key) {
                Some(list) => list.iter().map(|p| p.1).collect(),
                None => match runs::load_points(reg, &s.chunk, &mut budget) {
                    Ok(list) => list.iter().map(|p| p.1).collect(),
                    Err(_) => continue,
                },
            };
            values.insert(key.clone(), list);
        }
    }
    let packages = crate::diff::lineage::package_list(reg, &record)
        .map_err(|err| format!("{err:#}"))
        .transpose();
    let mut summary = record.clone();
    for s in summary.series.values_mut() {
        s.chunk = Chunk::default();
    }
    Ok(RunView {
        summary,
        points,
        removal,
        packages,
        curves: values,
    })
}

/// Returns the stored content of the lock file `name` (as the record lists it:
/// `requirements.txt`, `uv.lock`) of the run `reference` names, or of the run a version
/// came from; with the run's id.
pub fn lockfile(reg: &Registry, reference: &str, name: &str) -> Result<(RunId, Vec<u8>)> {
    let id = if let Some(id) = runs::named(reg, reference)? {
        id
    } else {
        let (version, _) = models::resolve_any(reg, &ModelRef::parse(reference)?)?;
        let reference = version.reference();
        version
            .run
            .ok_or_else(|| Failure::error(format!("{reference} names no run")))?
    };
    let record = runs::load(reg, &id)?;
    let locks = record
        .environment
        .as_ref()
        .map(|e| e.lockfiles.as_slice())
        .unwrap_or_default();
    let Some(lock) = locks.iter().find(|l| l.path == name) else {
        let known: Vec<&str> = locks.iter().map(|l| l.path.as_str()).collect();
        return Err(Failure::error(format!("run {id} recorded no lock file {name:?}"))
            .hint(if known.is_empty() {
                "it recorded none: lock files are looked for at the top of the run's git work tree".to_owned()
            } else {
                format!("its lock files: {}", known.join(", "))
            })
            .into());
    };
    if !lock.stored {
        return Err(Failure::error(format!(
            "run {id} recorded only the hash of {name} (blake3 {}), not its content",
            lock.blake3
        ))
        .hint("runs recorded before mreg stored lock files, and lock files over 16 MiB, keep the hash only")
        .into());
    }
    let object: ObjectId = lock.blake3.parse().map_err(|_| {
        anyhow::anyhow!(
            "run {id} names lock file {name} by {:?}, not an object id",
            lock.blake3
        )
    })?;
    let bytes = crate::store::read::read_up_to(reg, object, 16 << 20, "a lock file")
        .with_context(|| format!("reading lock file {name} of run {id}"))?;
    Ok((id, bytes))
}

/// Returns a key escaped for a JSON pointer.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
