//! An MLflow SQLite database (`mlflow.db`, the store MLflow 3 uses by default): the
//! tables `experiments`, `runs`, `params`, `tags`, `metrics`, `registered_models`,
//! `model_versions`, `registered_model_aliases` and, from MLflow 3, `logged_models`.
//! Opened read-only; a database that is not MLflow's is named.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

use super::{
    MetricPoint, MlRun, MlStore, MlVersion, POINTS_LIMIT, ROWS_LIMIT, bounded, local_path,
};
use crate::error::Failure;

/// The longest row read, in bytes (a param or tag value is cut at 64 KiB after).
const ROW_LIMIT: i32 = 16 << 20;

/// Reads the database at `path`.
pub fn read(path: &Path) -> Result<MlStore> {
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} as an SQLite database", path.display()))?;
    db.busy_timeout(std::time::Duration::from_secs(10))
        .context("setting a busy timeout")?;
    // No row read may be larger than this: a value past it is an error naming the
    // database, not a gigabyte in memory.
    db.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, ROW_LIMIT)
        .context("bounding the rows read")?;
    let tables: std::collections::HashSet<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|err| {
            Failure::error(format!("cannot read {}: {err}", path.display())).hint(
                "if another program is writing it, try again when it is done; a damaged database \
                 can be checked with `sqlite3 FILE 'PRAGMA integrity_check'`",
            )
        })?;
    let has = |table: &str| tables.contains(table);
    if !has("runs") || !has("experiments") || !has("metrics") {
        return Err(Failure::usage(format!(
            "{} is no MLflow database: it has no runs, experiments and metrics tables",
            path.display()
        ))
        .hint("give an MLflow tracking database (mlflow.db) or an mlruns folder")
        .into());
    }
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut store = MlStore {
        what: format!("the MLflow database {}", path.display()),
        roots: vec![base.clone()],
        ..MlStore::default()
    };
    read_runs(&db, &base, &mut store)
        .with_context(|| format!("reading the runs (no row may pass {} MiB)", ROW_LIMIT >> 20))?;
    if has("model_versions") {
        read_versions(&db, &mut store).context("reading the model versions")?;
    }
    if has("registered_model_aliases") {
        let mut stmt = db.prepare("SELECT name, alias, version FROM registered_model_aliases")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (model, alias, version) = row?;
            if let Ok(version) = u64::try_from(version) {
                store.aliases.insert((model, alias), version);
            }
        }
    }
    if has("logged_models") {
        let mut stmt = db.prepare("SELECT model_id, artifact_location FROM logged_models")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for row in rows {
            let (id, location) = row?;
            if let Some(path) = location.and_then(|l| resolve(&l, &base)) {
                store.logged_models.insert(id, path);
            }
        }
    }
    Ok(store)
}

/// Returns the local folder an artifact location names, a relative one taken from the
/// database's folder.
fn resolve(location: &str, base: &Path) -> Option<PathBuf> {
    if let Some(path) = local_path(location) {
        return Some(path);
    }
    if location.contains(':') {
        return None;
    }
    Some(base.join(location))
}

/// Reads every run with its params, tags and metric points.
fn read_runs(db: &Connection, base: &Path, store: &mut MlStore) -> Result<()> {
    let experiments: HashMap<i64, (String, bool)> = {
        let mut stmt =
            db.prepare("SELECT experiment_id, name, lifecycle_stage FROM experiments")?;
        stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?.as_deref() == Some("deleted"),
                ),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    {
        let mut stmt = db.prepare(
            "SELECT run_uuid, name, status, start_time, end_time, user_id, lifecycle_stage, \
             artifact_uri, experiment_id FROM runs ORDER BY start_time, run_uuid",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if store.runs.len() >= ROWS_LIMIT {
                anyhow::bail!(
                    "the store holds more than {ROWS_LIMIT} runs, more than mreg imports at once"
                );
            }
            let id: String = r.get(0)?;
            let experiment: i64 = r.get(8)?;
            let (experiment, exp_deleted) =
                experiments.get(&experiment).cloned().unwrap_or_default();
            let run = MlRun {
                id: id.clone(),
                experiment,
                name: r.get::<_, Option<String>>(1)?.filter(|n| !n.is_empty()),
                status: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                start_ms: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                end_ms: r.get(4)?,
                user: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                deleted: exp_deleted
                    || r.get::<_, Option<String>>(6)?.as_deref() == Some("deleted"),
                artifacts: r
                    .get::<_, Option<String>>(7)?
                    .and_then(|uri| resolve(&uri, base)),
                ..MlRun::default()
            };
            index.insert(id, store.runs.len());
            store.runs.push(run);
        }
    }
    for (table, is_param) in [("params", true), ("tags", false)] {
        let mut stmt = db.prepare(&format!("SELECT run_uuid, key, value FROM {table}"))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let Some(&i) = index.get(&id) else { continue };
            let key: String = r.get(1)?;
            let value = bounded(r.get::<_, Option<String>>(2)?.unwrap_or_default());
            let run = &mut store.runs[i];
            if is_param {
                run.params.insert(key, value);
            } else {
                run.tags.insert(key, value);
            }
        }
    }
    read_metrics(db, &index, store)?;
    for run in &mut store.runs {
        if run.name.is_none() {
            run.name = run.tags.get("mlflow.runName").cloned();
        }
    }
    Ok(())
}

/// Reads every metric point of the runs `index` names (MLflow id → position).
fn read_metrics(
    db: &Connection,
    index: &HashMap<String, usize>,
    store: &mut MlStore,
) -> Result<()> {
    let mut stmt = db.prepare(
        "SELECT run_uuid, key, value, timestamp, step, is_nan FROM metrics \
         ORDER BY run_uuid, key, timestamp, step",
    )?;
    let mut rows = stmt.query([])?;
    let mut total = 0usize;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let Some(&i) = index.get(&id) else { continue };
        let key: String = r.get(1)?;
        let is_nan = r.get::<_, Option<bool>>(5)?.unwrap_or(false);
        let value: f64 = if is_nan {
            f64::NAN
        } else {
            r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN)
        };
        total += 1;
        if total > super::TOTAL_POINTS_LIMIT {
            anyhow::bail!(
                "{} holds more than {} metric points, more than one import reads",
                store.what,
                super::TOTAL_POINTS_LIMIT
            );
        }
        let points = store.runs[i].metrics.entry(key.clone()).or_default();
        if points.len() >= POINTS_LIMIT {
            anyhow::bail!(
                "the metric {key} of run {id} has more than {POINTS_LIMIT} points, more than mreg imports for one metric"
            );
        }
        points.push(MetricPoint {
            step: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
            value,
            timestamp_ms: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
        });
    }
    Ok(())
}

/// Reads the registered model versions.
fn read_versions(db: &Connection, store: &mut MlStore) -> Result<()> {
    let mut stmt = db.prepare(
        "SELECT name, version, creation_time, description, current_stage, source, run_id, \
         status, storage_location FROM model_versions ORDER BY name, version",
    )?;
    let mut rows = stmt.query([])?;
    let mut seen: BTreeSet<(String, u64)> = BTreeSet::new();
    while let Some(r) = rows.next()? {
        if store.versions.len() >= ROWS_LIMIT {
            anyhow::bail!("the store holds more than {ROWS_LIMIT} model versions");
        }
        let model: String = r.get(0)?;
        let Ok(version) = u64::try_from(r.get::<_, i64>(1)?) else {
            continue;
        };
        if !seen.insert((model.clone(), version)) {
            continue;
        }
        let source: Option<String> = r.get(5)?;
        let storage: Option<String> = r.get(8)?;
        store.versions.push(MlVersion {
            model,
            version,
            created_ms: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            description: r.get::<_, Option<String>>(3)?.map(bounded),
            stage: r
                .get::<_, Option<String>>(4)?
                .filter(|s| !s.is_empty() && s != "None"),
            source: storage
                .filter(|s| !s.is_empty())
                .or(source)
                .unwrap_or_default(),
            run_id: r.get::<_, Option<String>>(6)?.filter(|s| !s.is_empty()),
            status: r
                .get::<_, Option<String>>(7)?
                .unwrap_or_else(|| "READY".to_owned()),
        });
    }
    Ok(())
}
