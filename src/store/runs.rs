//! Runs in the registry: creating them, logging events into them, folding a run's
//! record with its events, and finding a run by id prefix.
//!
//! ```text
//! runs/ID/run.toml        the record as the run started (or complete, for push's runs)
//! runs/ID/log/NAME.toml   one immutable event per log call, push, or end of `mreg run`
//! ```
//!
//! Nothing here is edited in place: the run folder is created exclusively (which also
//! allocates the id), and every event is a new file published with an exclusive link.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::write::Staging;
use super::{ObjectId, Registry, TreeId, atomic, files, keys, read};
use crate::error::Failure;
use crate::id::RunId;
use crate::manifest::run::DataInput;
use crate::manifest::series::{Chunk, Point, Series, chunk_of, decode_points};
use crate::manifest::{RunEvent, RunRecord};

/// Shortest run-id prefix accepted on the command line.
pub const MIN_PREFIX: usize = 4;

/// How many ids a new run tries before giving up.
const ID_TRIES: u32 = 100;

/// Returns the folder of one run.
pub fn run_dir(reg: &Registry, id: &RunId) -> PathBuf {
    reg.path(&keys::run(id))
}

/// Returns the path of a run's record.
pub fn record_path(reg: &Registry, id: &RunId) -> PathBuf {
    reg.path(&keys::run_record(id))
}

/// Returns the folder of a run's events.
pub fn log_dir(reg: &Registry, id: &RunId) -> PathBuf {
    reg.path(&keys::run_log(id))
}

/// Publishes a new run, choosing its id, and returns the record as written.
///
/// The id is a hash of the start time, actor, experiment and name, and, unless the
/// clock is pinned by `MREG_NOW`, of the process and the exact time, so records are
/// reproducible in tests and CI and unique otherwise. A taken id is skipped.
///
/// The run's folder is made whole in this process's temp folder (its record and its
/// empty log) and renamed into `runs/`, so a run either exists with its record or not
/// at all, whenever the process is killed.
pub fn create(reg: &Registry, mut record: RunRecord) -> Result<RunRecord> {
    let pinned = std::env::var_os("MREG_NOW").is_some_and(|v| !v.is_empty());
    let entropy = if pinned {
        String::new()
    } else {
        format!("{}-{}", std::process::id(), keys::unique_nanos())
    };
    let runs = reg.runs_dir();
    for attempt in 0..ID_TRIES {
        let seed = format!(
            "mreg run\0{}\0{}\0{}\0{}\0{entropy}\0{attempt}",
            record.start,
            record.actor,
            record.experiment,
            record.name.as_deref().unwrap_or("")
        );
        let id = RunId::from_hash(&blake3::hash(seed.as_bytes()));
        if fs::symlink_metadata(record_path(reg, &id)).is_ok() {
            continue;
        }
        record.id = id;
        let body = record.to_toml()?;
        let tmp = reg.tmp_dir();
        let staged = tmp.join(format!("run-{}", record.id));
        let _ = fs::remove_dir_all(&staged);
        fs::create_dir(&staged)
            .and_then(|()| fs::create_dir(staged.join("log")))
            .with_context(|| format!("creating {}", staged.display()))?;
        atomic::create_exclusive(&tmp, &staged.join(keys::RUN_RECORD), body.as_bytes())?;
        atomic::sync_dir(&staged)?;
        crate::crash::point("run-staged");
        let dir = run_dir(reg, &record.id);
        // A folder of the same name left empty by an interrupted older mreg is
        // replaced; one holding anything is another run's, and its id is skipped.
        match fs::rename(&staged, &dir) {
            Ok(()) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
                ) =>
            {
                let _ = fs::remove_dir_all(&staged);
                continue;
            }
            Err(err) => {
                let _ = fs::remove_dir_all(&staged);
                return Err(err).with_context(|| format!("creating {}", dir.display()));
            }
        }
        atomic::sync_dir(&runs)?;
        reg.backend()
            .publish_file(reg, &keys::run_record(&record.id), body.as_bytes())?;
        return Ok(record);
    }
    Err(
        Failure::conflict(format!("could not allocate a run id in {ID_TRIES} tries"))
            .hint("try again")
            .into(),
    )
}

/// Creates runs whose ids are given (an import names each run by where it came from,
/// so importing again finds it): those not in the registry yet, all at once. Each is
/// staged whole in the registry's temp folder, the file system is flushed once, and
/// the runs are then renamed into place, so thousands cost one flush rather than
/// three each. Returns the ids created; a run already there is left as it is.
pub fn create_imported(reg: &Registry, records: &[RunRecord]) -> Result<Vec<RunId>> {
    let tmp = reg.tmp_dir();
    let mut staged = Vec::new();
    for record in records {
        if fs::symlink_metadata(run_dir(reg, &record.id)).is_ok() {
            continue;
        }
        let dir = tmp.join(format!("run-{}", record.id));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir)
            .and_then(|()| fs::create_dir(dir.join("log")))
            .with_context(|| format!("creating {}", dir.display()))?;
        let body = record.to_toml()?;
        fs::write(dir.join(keys::RUN_RECORD), body.as_bytes())
            .with_context(|| format!("writing {}", dir.display()))?;
        staged.push((record.id.clone(), dir, body));
    }
    if staged.is_empty() {
        return Ok(Vec::new());
    }
    atomic::sync_filesystem(&tmp)?;
    let runs = reg.runs_dir();
    fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
    let mut created = Vec::with_capacity(staged.len());
    for (id, dir, body) in staged {
        match fs::rename(&dir, run_dir(reg, &id)) {
            Ok(()) => {
                reg.backend()
                    .publish_file(reg, &keys::run_record(&id), body.as_bytes())?;
                created.push(id);
            }
            // Created meanwhile by another import of the same store.
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
                ) =>
            {
                let _ = fs::remove_dir_all(&dir);
            }
            Err(err) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(err).with_context(|| format!("creating run {id}"));
            }
        }
    }
    atomic::sync_dir(&runs)?;
    Ok(created)
}

/// Publishes one event of a run, under a new name that sorts after earlier events.
pub fn append(reg: &Registry, event: &RunEvent) -> Result<()> {
    let dir = log_dir(reg, &event.run);
    if !files::dir_exists(reg.root(), &keys::run_log(&event.run))? {
        return Err(unknown(&event.run.to_string()));
    }
    let body = event.to_toml()?;
    loop {
        let name = keys::new_log_name(body.as_bytes());
        if atomic::create_exclusive(&reg.tmp_dir(), &dir.join(&name), body.as_bytes())? {
            reg.backend().publish_file(
                reg,
                &keys::run_event(&event.run, &name),
                body.as_bytes(),
            )?;
            return Ok(());
        }
    }
}

/// Returns the names of a run's event files, in the order they were written.
pub fn event_names(reg: &Registry, id: &RunId) -> Result<Vec<String>> {
    let dir = log_dir(reg, id);
    let mut names = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(names),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str()
            && keys::is_event_name(name)
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Returns a run's record as it started, without its events.
pub fn load_start(reg: &Registry, id: &RunId) -> Result<RunRecord> {
    let path = record_path(reg, id);
    let text = reg
        .read_text(&keys::run_record(id))
        .with_context(|| format!("reading the record of run {id} at {}", path.display()))?
        .ok_or_else(|| unknown(id.as_str()))?;
    let record = RunRecord::parse(&text)
        .with_context(|| format!("parsing the record of run {id} at {}", path.display()))?;
    if record.id != *id {
        anyhow::bail!(
            "the record at {} says it is run {}, not {id}",
            path.display(),
            record.id
        );
    }
    Ok(record)
}

/// Returns a run's record with every event folded in.
pub fn load(reg: &Registry, id: &RunId) -> Result<RunRecord> {
    let mut record = load_start(reg, id)?;
    let dir = log_dir(reg, id);
    for name in event_names(reg, id)? {
        let path = dir.join(&name);
        let text = reg
            .read_text(&keys::run_event(id, &name))
            .and_then(|t| t.ok_or_else(|| anyhow::anyhow!("it is missing")))
            .with_context(|| format!("reading event {} of run {id}", path.display()))?;
        let event = RunEvent::parse(&text)
            .with_context(|| format!("parsing event {} of run {id}", path.display()))?;
        if event.run != *id {
            anyhow::bail!(
                "event {} says it belongs to run {}, not {id}",
                path.display(),
                event.run
            );
        }
        record.apply(&event);
    }
    Ok(record)
}

/// Returns the ids of every run, sorted.
pub fn list(reg: &Registry) -> Result<Vec<RunId>> {
    let mut ids = list_folders(reg)?;
    // A folder without a record is not a run: an older mreg interrupted while it made
    // one left it (`mreg fsck` lists it).
    ids.retain(|id| fs::symlink_metadata(record_path(reg, id)).is_ok());
    Ok(ids)
}

/// Returns the ids of the folders in `runs/`, sorted, whether or not each holds its
/// record yet: for a reader that checks each run's files anyway.
pub fn list_folders(reg: &Registry) -> Result<Vec<RunId>> {
    let dir = reg.runs_dir();
    let mut ids = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(ids),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Some(id) = entry.file_name().to_str().and_then(RunId::parse) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

/// Returns whether `text` could be a run id or a prefix of one.
pub fn looks_like_id(text: &str) -> bool {
    (MIN_PREFIX..=RunId::LEN).contains(&text.len())
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Returns the runs whose id starts with `prefix`.
pub fn matching(reg: &Registry, prefix: &str) -> Result<Vec<RunId>> {
    if let Some(id) = RunId::parse(prefix) {
        return Ok(if run_dir(reg, &id).is_dir() {
            vec![id]
        } else {
            Vec::new()
        });
    }
    Ok(list(reg)?
        .into_iter()
        .filter(|id| id.as_str().starts_with(prefix))
        .collect())
}

/// Returns the one run a full id or unique prefix names, or an error saying why not.
pub fn resolve(reg: &Registry, text: &str) -> Result<RunId> {
    let prefix = text.to_ascii_lowercase();
    if !looks_like_id(&prefix) {
        return Err(Failure::usage(format!("{text:?} is not a run id"))
            .hint(format!(
                "a run id is 16 hex digits, and any unique prefix of {MIN_PREFIX} or more \
                 names it; `mreg runs` lists them"
            ))
            .into());
    }
    let found = matching(reg, &prefix)?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(unknown(text)),
        many => {
            let list: Vec<&str> = many.iter().take(10).map(RunId::as_str).collect();
            Err(Failure::usage(format!(
                "run id {text:?} is ambiguous: it starts {} runs ({}{})",
                many.len(),
                list.join(", "),
                if many.len() > 10 { ", …" } else { "" }
            ))
            .hint("give more digits of the id")
            .into())
        }
    }
}

/// Returns the run `text` names, if it names one rather than a model: `None` for text
/// with an `@`, text that is no run-id prefix, or a prefix no run has.
pub fn named(reg: &Registry, text: &str) -> Result<Option<RunId>> {
    let lower = text.to_ascii_lowercase();
    if text.contains('@') || !looks_like_id(&lower) {
        return Ok(None);
    }
    let found = matching(reg, &lower)?;
    if found.is_empty() {
        return Ok(None);
    }
    if super::models::list_models(reg)?.iter().any(|m| m == text) {
        return Err(Failure::usage(format!(
            "{text:?} names both a model and a run ({})",
            found[0]
        ))
        .hint(format!(
            "write {text}@latest for the model, or more digits of the run id"
        ))
        .into());
    }
    resolve(reg, &lower).map(Some)
}

fn unknown(text: &str) -> anyhow::Error {
    Failure::error(format!("no run with id {text:?} in this registry"))
        .hint("`mreg runs` lists the runs; ids are 16 hex digits, unique prefixes work")
        .into()
}

/// Returns a chunk of series points, storing it as an object when it is long.
///
/// The object is published before this returns, so a record that names it never
/// points at data that is not there.
pub fn store_points(reg: &Registry, points: Vec<Point>) -> Result<Chunk> {
    let staging = Staging::new(reg);
    let chunk = chunk_of(points, &mut |bytes| Ok(staging.add_bytes(bytes)?.id))?;
    staging.publish()?;
    Ok(chunk)
}

/// Bytes of series objects one command reads at most, all series together
/// (docs/threat-model.md).
pub const SERIES_READ_LIMIT: u64 = 256 << 20;

/// What is left of the bytes of series objects one command may read.
#[derive(Debug)]
pub struct SeriesBudget {
    left: u64,
}

impl SeriesBudget {
    /// Returns the budget of one command: [`SERIES_READ_LIMIT`].
    pub fn new() -> SeriesBudget {
        SeriesBudget {
            left: SERIES_READ_LIMIT,
        }
    }
}

impl Default for SeriesBudget {
    fn default() -> SeriesBudget {
        SeriesBudget::new()
    }
}

/// Returns every point of a series, sorted by step (then time), reading its objects.
///
/// An object named more than once holds the same points, so it is read once and its
/// points kept once: a record naming one object a million times costs one object. The
/// bytes read are taken from `budget`; a series that needs more than is left is refused.
pub fn load_points(reg: &Registry, chunk: &Chunk, budget: &mut SeriesBudget) -> Result<Vec<Point>> {
    let mut points = chunk.points.clone();
    let mut seen = std::collections::HashSet::new();
    for id in chunk.objects.iter().filter(|id| seen.insert(**id)) {
        let bytes = read::read_up_to(reg, *id, budget.left, "the series left to show").map_err(
            |err| {
                err.context(format!(
                    "the series objects shown by one command may hold {SERIES_READ_LIMIT} bytes in all"
                ))
            },
        )?;
        budget.left -= bytes.len() as u64;
        let more = decode_points(&bytes)
            .with_context(|| format!("reading series object {}", ObjectId::short(*id, 16)))?;
        points.extend(more);
    }
    points.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
    Ok(points)
}

/// Returns the objects a run record's environment names: its stored lock files and its
/// Python package list.
pub fn environment_objects(record: &RunRecord) -> Vec<ObjectId> {
    let Some(env) = &record.environment else {
        return Vec::new();
    };
    let locks = env
        .lockfiles
        .iter()
        .filter(|l| l.stored)
        .map(|l| l.blake3.as_str());
    let packages = env
        .python
        .iter()
        .filter_map(|p| p.packages_object.as_deref());
    locks
        .chain(packages)
        .filter_map(|hex| hex.parse::<ObjectId>().ok())
        .collect()
}

/// Parses a run file (`runs/ID/run.toml`, an event under `runs/ID/log/`, or the run's
/// `removed.toml`), checking it belongs to the run its key names; returns its series
/// and data inputs (none for a removal).
pub fn parse_run_file(
    key: &str,
    bytes: &[u8],
) -> Result<(BTreeMap<String, Series>, Vec<DataInput>)> {
    parse_run_file_with_environment(key, bytes).map(|(series, data, _)| (series, data))
}

/// What a run file holds that names objects: series, data inputs, and (a record) the
/// objects its environment names.
type RunFileObjects = (BTreeMap<String, Series>, Vec<DataInput>, Vec<ObjectId>);

/// Parses a run file as [`parse_run_file`] does, with the objects a record's environment
/// names ([`environment_objects`]).
fn parse_run_file_with_environment(key: &str, bytes: &[u8]) -> Result<RunFileObjects> {
    let text = std::str::from_utf8(bytes).with_context(|| format!("reading {key}"))?;
    let (run, series, data, environment) = if key.ends_with(keys::RUN_REMOVAL) {
        let removal =
            crate::manifest::RunRemoval::parse(text).with_context(|| format!("parsing {key}"))?;
        (removal.run, BTreeMap::new(), Vec::new(), Vec::new())
    } else if key.ends_with(keys::RUN_RECORD) {
        let record = RunRecord::parse(text).with_context(|| format!("parsing {key}"))?;
        let environment = environment_objects(&record);
        (record.id, record.series, record.data, environment)
    } else {
        let event = RunEvent::parse(text).with_context(|| format!("parsing {key}"))?;
        (event.run, event.series, event.data, Vec::new())
    };
    let named = key.split('/').nth(1).unwrap_or_default();
    if run.to_string() != named {
        anyhow::bail!("{key} says it belongs to run {run}");
    }
    Ok((series, data, environment))
}

/// Returns the objects a run file names: series stored as objects, data inputs stored
/// with `--store-data` (a folder's whole tree, held to the walk limits), and in a run's
/// record the stored content of its lock files and its Python package list.
pub fn run_objects(
    key: &str,
    bytes: &[u8],
    read_tree: &dyn Fn(TreeId) -> Result<super::tree::Tree>,
) -> Result<Vec<(ObjectId, u64)>> {
    let (series, data, environment) = parse_run_file_with_environment(key, bytes)?;
    let mut out: Vec<(ObjectId, u64)> = environment.into_iter().map(|o| (o, 0)).collect();
    for s in series.values() {
        out.extend(s.chunk.objects.iter().map(|o| (*o, 0)));
    }
    for input in data.iter().filter(|d| d.stored) {
        let Some(hash) = input
            .hash
            .as_deref()
            .and_then(|h| h.parse::<ObjectId>().ok())
        else {
            continue;
        };
        if input.kind == "folder" {
            out.extend(
                super::walk::load(TreeId(hash), &super::walk::LIMITS, &mut |t| read_tree(t))?
                    .objects(),
            );
        } else {
            out.push((hash, input.bytes.unwrap_or(0)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{SeriesBudget, load_points, store_points};
    use crate::manifest::series::Point;
    use crate::testing::TempRegistry;

    fn points(n: i64) -> Vec<Point> {
        (0..n)
            .map(|i| Point(i, 0.5, "2026-01-01T00:00:00Z".to_owned()))
            .collect()
    }

    #[test]
    fn a_series_object_named_many_times_is_read_once() {
        let t = TempRegistry::new();
        let mut chunk = store_points(&t.reg, points(40)).unwrap();
        let id = chunk.objects[0];
        chunk.objects = vec![id; 10_000];
        let mut budget = SeriesBudget::new();
        assert_eq!(load_points(&t.reg, &chunk, &mut budget).unwrap().len(), 40);
        let len = crate::store::read::read_small(&t.reg, id).unwrap().len() as u64;
        assert_eq!(budget.left, super::SERIES_READ_LIMIT - len);
    }

    #[test]
    fn series_over_the_budget_of_a_command_are_refused() {
        let t = TempRegistry::new();
        let one = store_points(&t.reg, points(40)).unwrap();
        let other = store_points(&t.reg, points(41)).unwrap();
        let len = crate::store::read::read_small(&t.reg, one.objects[0])
            .unwrap()
            .len() as u64;
        let mut budget = SeriesBudget { left: len + 10 };
        load_points(&t.reg, &one, &mut budget).unwrap();
        let err = load_points(&t.reg, &other, &mut budget).unwrap_err();
        assert!(
            format!("{err:#}").contains("may hold 268435456 bytes in all"),
            "{err:#}"
        );
    }
}
