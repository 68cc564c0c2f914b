//! MLflow's file store (`mlruns/`): `EXPERIMENT/meta.yaml`, `EXPERIMENT/RUN/meta.yaml`
//! with `params/KEY`, `tags/KEY` (a key with `/` is a path) and `metrics/KEY` (one
//! `timestamp value step` line per point), `models/NAME/version-N/meta.yaml` and
//! `models/NAME/aliases/ALIAS`; MLflow 3's logged models in `EXPERIMENT/models/ID/`.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use yaml_rust2::{Yaml, YamlLoader};

use super::{
    MetricPoint, MlRun, MlStore, MlVersion, POINTS_LIMIT, ROWS_LIMIT, VALUE_LIMIT, bounded,
    local_path,
};
use crate::error::Failure;

/// The largest `meta.yaml` read.
const META_LIMIT: u64 = 1 << 20;

/// Keys nest at most this deep (`params/a/b/c`).
const KEY_DEPTH: usize = 16;

/// Refuses a link: an MLflow store holds none, and a link in one could lead anywhere
/// (`/etc`), so mreg never follows one.
fn no_link(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{} is a link; an MLflow store holds none, and mreg does not follow links in one",
            path.display()
        );
    }
    Ok(())
}

/// Returns whether `path` is a folder, and not a link to one (refused).
fn real_dir(path: &Path) -> Result<bool> {
    no_link(path)?;
    Ok(fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()))
}

/// Returns whether `path` is a regular file, and not a link to one (refused).
fn real_file(path: &Path) -> Result<bool> {
    no_link(path)?;
    Ok(fs::symlink_metadata(path).is_ok_and(|m| m.is_file()))
}

/// Returns the entries of a folder, sorted, refusing links among them.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        no_link(&path)?;
        out.push(path);
    }
    out.sort();
    Ok(out)
}

/// Reads a small text file whole, refusing one over `limit` bytes.
fn read_text(path: &Path, limit: u64) -> Result<String> {
    no_link(path)?;
    let file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {} (as UTF-8 text)", path.display()))?;
    if text.len() as u64 > limit {
        bail!("{} is larger than {limit} bytes", path.display());
    }
    Ok(text)
}

/// Reads a `meta.yaml`.
fn meta(path: &Path) -> Result<Yaml> {
    let text = read_text(path, META_LIMIT)?;
    if crate::ingest::yaml::has_aliases(&text) {
        bail!(
            "{} uses YAML aliases (*name), which MLflow never writes and mreg does not expand",
            path.display()
        );
    }
    let mut docs = YamlLoader::load_from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not YAML: {e}", path.display()))?;
    if docs.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(docs.swap_remove(0))
}

/// Returns a field of a YAML map as text (strings and numbers alike).
fn field(yaml: &Yaml, key: &str) -> Option<String> {
    match &yaml[key] {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Returns a field of a YAML map as an integer.
fn int(yaml: &Yaml, key: &str) -> Option<i64> {
    match &yaml[key] {
        Yaml::Integer(i) => Some(*i),
        Yaml::String(s) | Yaml::Real(s) => s.parse().ok(),
        _ => None,
    }
}

/// Reads the store at `root`.
pub fn read(root: &Path) -> Result<MlStore> {
    let mut store = MlStore {
        what: format!("the MLflow file store at {}", root.display()),
        ..MlStore::default()
    };
    no_link(root)?;
    store.roots.push(root.to_path_buf());
    let mut experiments = Vec::new();
    for path in entries(root)? {
        if real_dir(&path)? && real_file(&path.join("meta.yaml"))? {
            experiments.push(path);
        }
    }
    if experiments.is_empty() && !root.join("models").is_dir() {
        return Err(Failure::usage(format!(
            "{} is no MLflow tracking store: it has no experiment folder (with a meta.yaml) and no models/",
            root.display()
        ))
        .hint("give the mlruns folder, or an MLflow database file (mlflow.db)")
        .into());
    }
    for dir in experiments {
        read_experiment(&dir, &mut store)?;
    }
    store
        .runs
        .sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
    read_models(&root.join("models"), &mut store)?;
    Ok(store)
}

/// Reads one experiment's runs and logged models.
fn read_experiment(dir: &Path, store: &mut MlStore) -> Result<()> {
    let exp = meta(&dir.join("meta.yaml"))?;
    let name = field(&exp, "name").unwrap_or_default();
    let exp_deleted = field(&exp, "lifecycle_stage").as_deref() == Some("deleted");
    for sub in entries(dir)? {
        if !real_dir(&sub)? {
            continue;
        }
        if sub.file_name().is_some_and(|n| n == "models") {
            read_logged_models(&sub, store)?;
            continue;
        }
        if !real_file(&sub.join("meta.yaml"))? {
            continue;
        }
        if store.runs.len() >= ROWS_LIMIT {
            bail!("the store holds more than {ROWS_LIMIT} runs, more than mreg imports at once");
        }
        let mut run =
            read_run(&sub).with_context(|| format!("reading the run {}", sub.display()))?;
        run.experiment.clone_from(&name);
        run.deleted |= exp_deleted;
        store.points += run.metrics.values().map(Vec::len).sum::<usize>();
        if store.points > super::TOTAL_POINTS_LIMIT {
            bail!(
                "{} holds more than {} metric points, more than one import reads",
                store.what,
                super::TOTAL_POINTS_LIMIT
            );
        }
        store.runs.push(run);
    }
    Ok(())
}

/// Reads MLflow 3's logged models of an experiment: `models/ID/meta.yaml`.
fn read_logged_models(dir: &Path, store: &mut MlStore) -> Result<()> {
    for path in entries(dir)? {
        if !real_dir(&path)? || !real_file(&path.join("meta.yaml"))? {
            continue;
        }
        let Ok(yaml) = meta(&path.join("meta.yaml")) else {
            continue;
        };
        let id = field(&yaml, "model_id")
            .or_else(|| path.file_name().and_then(|n| n.to_str()).map(str::to_owned));
        let artifacts = field(&yaml, "artifact_location")
            .and_then(|l| local_path(&l))
            .or_else(|| Some(path.join("artifacts")));
        if let (Some(id), Some(artifacts)) = (id, artifacts) {
            store.logged_models.insert(id, artifacts);
        }
    }
    Ok(())
}

/// Reads one run folder.
fn read_run(dir: &Path) -> Result<MlRun> {
    let yaml = meta(&dir.join("meta.yaml"))?;
    let id = field(&yaml, "run_id")
        .or_else(|| field(&yaml, "run_uuid"))
        .context("its meta.yaml names no run_id")?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!("its run_id {id:?} is not an MLflow run id");
    }
    let status = match int(&yaml, "status") {
        Some(1) => "RUNNING",
        Some(2) => "SCHEDULED",
        Some(3) => "FINISHED",
        Some(4) => "FAILED",
        Some(5) => "KILLED",
        _ => "UNKNOWN",
    };
    let mut run = MlRun {
        id,
        name: field(&yaml, "run_name").filter(|n| !n.is_empty()),
        status: status.to_owned(),
        start_ms: int(&yaml, "start_time").unwrap_or(0),
        end_ms: int(&yaml, "end_time"),
        user: field(&yaml, "user_id").unwrap_or_default(),
        deleted: field(&yaml, "lifecycle_stage").as_deref() == Some("deleted"),
        artifacts: field(&yaml, "artifact_uri").and_then(|u| local_path(&u)),
        ..MlRun::default()
    };
    for (key, path) in keyed_files(&dir.join("params"))? {
        run.params.insert(key, bounded(read_value(&path)?));
    }
    for (key, path) in keyed_files(&dir.join("tags"))? {
        run.tags.insert(key, bounded(read_value(&path)?));
    }
    if run.name.is_none() {
        run.name = run.tags.get("mlflow.runName").cloned();
    }
    for (key, path) in keyed_files(&dir.join("metrics"))? {
        let points = read_points(&path).with_context(|| format!("reading the metric {key}"))?;
        run.metrics.insert(key, points);
    }
    Ok(run)
}

/// Reads a param or tag file: its text, cut at [`VALUE_LIMIT`].
fn read_value(path: &Path) -> Result<String> {
    no_link(path)?;
    let file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(VALUE_LIMIT as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Returns the files below `dir` with their keys (paths relative to it, `/`-joined).
fn keyed_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !real_dir(dir)? {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .max_depth(KEY_DEPTH)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        no_link(entry.path())?;
        if !entry.file_type().is_file() {
            continue;
        }
        let key = entry
            .path()
            .strip_prefix(dir)
            .expect("below its root")
            .to_string_lossy()
            .into_owned();
        out.push((key, entry.path().to_path_buf()));
    }
    Ok(out)
}

/// Reads a metric file: `timestamp value step` per line (`timestamp value` in old
/// stores, step 0).
fn read_points(path: &Path) -> Result<Vec<MetricPoint>> {
    no_link(path)?;
    let file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut points = Vec::new();
    let mut line = String::new();
    let mut reader = BufReader::new(file);
    let mut number = 0usize;
    loop {
        line.clear();
        // A line is a few dozen bytes: one past 4 KiB is no metric line.
        let read = (&mut reader)
            .take(4096)
            .read_line(&mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        number += 1;
        if points.len() >= POINTS_LIMIT {
            bail!("it has more than {POINTS_LIMIT} points, more than mreg imports for one metric");
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let mut parts = text.split_whitespace();
        let (Some(ts), Some(value)) = (parts.next(), parts.next()) else {
            bail!(
                "line {number} of {} is not `timestamp value step`",
                path.display()
            );
        };
        let step = parts.next().map_or(Ok(0), str::parse::<i64>);
        let parsed = (ts.parse::<i64>(), parse_value(value), step);
        let (Ok(timestamp_ms), Some(value), Ok(step)) = parsed else {
            bail!(
                "line {number} of {} is not `timestamp value step`",
                path.display()
            );
        };
        points.push(MetricPoint {
            step,
            value,
            timestamp_ms,
        });
    }
    Ok(points)
}

/// Parses a metric value as MLflow writes it (`nan`, `inf`, `-inf` included).
pub(super) fn parse_value(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// Reads the model registry: `models/NAME/meta.yaml`, `version-N/meta.yaml`, aliases.
fn read_models(dir: &Path, store: &mut MlStore) -> Result<()> {
    if !real_dir(dir)? {
        return Ok(());
    }
    let mut models = Vec::new();
    for path in entries(dir)? {
        if real_dir(&path)? && real_file(&path.join("meta.yaml"))? {
            models.push(path);
        }
    }
    for model_dir in models {
        let model_meta = meta(&model_dir.join("meta.yaml"))?;
        let name = field(&model_meta, "name").unwrap_or_else(|| {
            model_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        for path in entries(&model_dir)? {
            let is_version = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("version-"));
            if !is_version || !real_dir(&path)? || !real_file(&path.join("meta.yaml"))? {
                continue;
            }
            if store.versions.len() >= ROWS_LIMIT {
                bail!("the store holds more than {ROWS_LIMIT} model versions");
            }
            let yaml = meta(&path.join("meta.yaml"))?;
            let Some(version) = int(&yaml, "version").and_then(|v| u64::try_from(v).ok()) else {
                bail!(
                    "{} names no version number",
                    path.join("meta.yaml").display()
                );
            };
            store.versions.push(MlVersion {
                model: name.clone(),
                version,
                source: field(&yaml, "storage_location")
                    .filter(|s| !s.is_empty() && s != "null")
                    .or_else(|| field(&yaml, "source"))
                    .unwrap_or_default(),
                run_id: field(&yaml, "run_id").filter(|r| !r.is_empty()),
                stage: field(&yaml, "current_stage").filter(|s| s != "None"),
                created_ms: int(&yaml, "creation_timestamp").unwrap_or(0),
                description: field(&yaml, "description").map(bounded),
                status: field(&yaml, "status").unwrap_or_else(|| "READY".to_owned()),
            });
        }
        let aliases = model_dir.join("aliases");
        if real_dir(&aliases)? {
            for path in entries(&aliases)? {
                let alias = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Ok(version) = read_text(&path, 64)?.trim().parse::<u64>() {
                    store.aliases.insert((name.clone(), alias), version);
                }
            }
        }
        if let Yaml::Hash(map) = &model_meta["aliases"] {
            for (alias, version) in map {
                let (Some(alias), Some(version)) = (
                    alias.as_str(),
                    version
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .or_else(|| version.as_i64().and_then(|v| u64::try_from(v).ok())),
                ) else {
                    continue;
                };
                store
                    .aliases
                    .entry((name.clone(), alias.to_owned()))
                    .or_insert(version);
            }
        }
    }
    store
        .versions
        .sort_by(|a, b| (&a.model, a.version).cmp(&(&b.model, b.version)));
    Ok(())
}
