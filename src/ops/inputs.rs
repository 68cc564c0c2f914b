//! What a run is given from the command line: params, tags, metrics, data inputs and
//! parent models, read, checked and hashed before anything is written, then added to a
//! run's first record or to an event.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::Failure;
use crate::id::ObjectId;
use crate::ingest;
use crate::lineage;
use crate::manifest::run::{DataInput, ModelLink};
use crate::manifest::series::{Point, Series};
use crate::manifest::{RunEvent, RunRecord, Value};
use crate::refspec::ModelRef;
use crate::store::snapshot::{self, Sink};
use crate::store::statcache::{Stamp, StatCache};
use crate::store::write::Staging;
use crate::store::{Progress, Registry, models, object, runs};

/// Everything a command was given to add to a run, as the user wrote it.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `KEY=VALUE` params.
    pub params: Vec<String>,
    /// Params files (TOML, JSON, YAML).
    pub params_files: Vec<PathBuf>,
    /// `KEY=VALUE` tags.
    pub tags: Vec<String>,
    /// `KEY=NUMBER` metrics.
    pub metrics: Vec<String>,
    /// Metrics files: JSON lines of series points, or a document of final values.
    pub metrics_files: Vec<PathBuf>,
    /// The step the `metrics` are series points at; without one they are final values.
    pub step: Option<i64>,
    /// Data inputs: files, folders, or URIs with an optional `@VERSION`.
    pub data: Vec<String>,
    /// Whether local data inputs are also stored in the registry.
    pub store_data: bool,
    /// Parent model references.
    pub parents: Vec<String>,
    /// Param and tag keys whose values are kept although their names look secret.
    pub not_secret: Vec<String>,
}

/// Returns what the inputs add to a run, read and checked.
#[derive(Debug, Default)]
pub struct Additions {
    /// Params.
    pub params: BTreeMap<String, Value>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Final metric values.
    pub metrics: BTreeMap<String, f64>,
    /// Series points by metric, not yet stored.
    pub series: BTreeMap<String, Vec<Point>>,
    /// Data inputs.
    pub data: Vec<DataInput>,
    /// Parent models.
    pub parents: Vec<ModelLink>,
}

/// Reads every input: params files then params flags (a flag overrides a file), tags,
/// metrics files then metrics flags, parents, then data inputs (hashed, and stored with
/// `store_data`). `time` stamps series points that carry none; `warn` hears of values
/// a metrics file held that are not numbers, as each file is read.
pub fn collect(
    reg: &Registry,
    inputs: &Inputs,
    time: &str,
    progress: &dyn Progress,
    warn: &mut dyn FnMut(String),
) -> Result<Additions> {
    let mut add = Additions::default();
    collect_params(inputs, &mut add)?;
    mask_secrets(&mut add, &inputs.not_secret, warn);
    collect_metrics(inputs, time, warn, &mut add)?;
    for reference in &inputs.parents {
        let parsed = ModelRef::parse(reference)?;
        let version = models::resolve(reg, &parsed)
            .with_context(|| format!("resolving --parent {reference}"))?;
        add.parents.push(ModelLink {
            model: version.model.clone(),
            version: version.version,
            tree: version.tree,
        });
    }
    for spec in &inputs.data {
        add.data
            .push(data_input(reg, spec, inputs.store_data, progress)?);
    }
    Ok(add)
}

/// Reads params files, then flags, and tags.
fn collect_params(inputs: &Inputs, add: &mut Additions) -> Result<()> {
    for path in &inputs.params_files {
        add.params.extend(ingest::read_params_file(path)?);
    }
    for text in &inputs.params {
        let (key, value) = ingest::parse_param(text, "--param")?;
        add.params.insert(key, value);
    }
    for text in &inputs.tags {
        let (key, value) = ingest::parse_tag(text, "--tag")?;
        add.tags.insert(key, value);
    }
    Ok(())
}

/// Masks the secrets of params and tags before anything is recorded: the value of a key
/// whose name looks secret ([`lineage::is_secret_name`]) is `[redacted]` (a bool, which
/// cannot be a secret, and an empty text, which holds none, are kept), and a text value
/// loses what a command line would lose ([`lineage::mask_text`]: URL credentials,
/// `Bearer` tokens…). Keys in `keep` are recorded as given. `warn` hears of each masked
/// key, and of each key of `keep` that had nothing to keep.
pub(crate) fn mask_secrets(add: &mut Additions, keep: &[String], warn: &mut dyn FnMut(String)) {
    let mut kept = vec![false; keep.len()];
    let mut check = |what: &str, key: &str, value: &mut Value| {
        let (masked, told) = match value {
            Value::Bool(_) => return,
            Value::Str(text) if text.is_empty() => return,
            _ if lineage::is_secret_name(key) => (
                Value::Str(lineage::REDACTED.to_owned()),
                format!(
                    "{what} {key} looks like a secret: its value is recorded as {}",
                    lineage::REDACTED
                ),
            ),
            Value::Str(text) => {
                let masked = lineage::mask_text(text);
                if masked == *text {
                    return;
                }
                let told = format!(
                    "{what} {key} holds credentials (in a URL, a header or under a secret-looking key): it is recorded as {masked:?}"
                );
                (Value::Str(masked), told)
            }
            _ => return,
        };
        let mut kept_here = false;
        for (i, k) in keep.iter().enumerate() {
            if k == key {
                kept[i] = true;
                kept_here = true;
            }
        }
        if !kept_here {
            *value = masked;
            warn(format!(
                "{told}; if it is no secret, pass --not-secret {key} to record it as given"
            ));
        }
    };
    for (key, value) in &mut add.params {
        check("param", key, value);
    }
    for (key, text) in &mut add.tags {
        let mut value = Value::Str(std::mem::take(text));
        check("tag", key, &mut value);
        if let Value::Str(masked) = value {
            *text = masked;
        }
    }
    for (key, _) in keep.iter().zip(kept).filter(|(_, kept)| !kept) {
        warn(format!(
            "--not-secret {key}: no param or tag {key} was masked, so there is nothing to keep"
        ));
    }
}

/// Reads metrics files, then flags. With a step, flag metrics are series points at that
/// step; without, final values. Series points without a step in a file take the step
/// after the series' previous one.
fn collect_metrics(
    inputs: &Inputs,
    time: &str,
    warn: &mut dyn FnMut(String),
    add: &mut Additions,
) -> Result<()> {
    for path in &inputs.metrics_files {
        let file = ingest::read_metrics_file(path)?;
        if !file.skipped.is_empty() {
            let n = file.skipped.len();
            warn(format!(
                "{}: left out {n} value{} that {} not numbers: {}",
                path.display(),
                if n == 1 { "" } else { "s" },
                if n == 1 { "is" } else { "are" },
                file.skipped.join(", ")
            ));
        }
        for point in file.points {
            let at = point.time.unwrap_or_else(|| time.to_owned());
            for (key, value) in point.values {
                let series = add.series.entry(key).or_default();
                let step = point
                    .step
                    .unwrap_or_else(|| series.last().map_or(0, |p| p.step() + 1));
                series.push(Point(step, value, at.clone()));
            }
        }
        add.metrics.extend(file.finals);
    }
    for text in &inputs.metrics {
        let (key, value) = ingest::parse_metric(text, "--metric")?;
        match inputs.step {
            Some(step) => {
                let point = Point(step, value, time.to_owned());
                add.series.entry(key).or_default().push(point);
            }
            None => {
                add.metrics.insert(key, value);
            }
        }
    }
    Ok(())
}

/// Returns the record of one `--data` input.
fn data_input(
    reg: &Registry,
    spec: &str,
    store: bool,
    progress: &dyn Progress,
) -> Result<DataInput> {
    if spec.contains("://") {
        let (uri, version) = split_version(spec);
        return Ok(DataInput {
            path: lineage::strip_credentials(uri),
            kind: "uri".to_owned(),
            hash: None,
            files: None,
            bytes: None,
            version: version.map(str::to_owned),
            stored: false,
        });
    }
    let path = Path::new(spec);
    let meta = fs::metadata(path).map_err(|err| {
        let what = if err.kind() == std::io::ErrorKind::NotFound {
            "there is no file or folder there".to_owned()
        } else {
            err.to_string()
        };
        Failure::error(format!("--data {spec}: {what}"))
            .hint("give an existing file or folder, or a URI such as s3://bucket/key")
    })?;
    if meta.is_dir() {
        data_folder(reg, spec, store, progress)
    } else {
        let (id, bytes) = if store {
            let staging = Staging::new(reg);
            let stored = staging.add_file(path, &|_| {})?;
            staging.publish()?;
            (stored.id, stored.size)
        } else {
            hash_data_file(reg, path, &meta)?
        };
        Ok(DataInput {
            path: spec.to_owned(),
            kind: "file".to_owned(),
            hash: Some(id.to_hex()),
            files: None,
            bytes: Some(bytes),
            version: None,
            stored: store,
        })
    }
}

/// Returns the record of a `--data` folder: its tree hash, and with `store` its content
/// stored as a model's would be (objects, then trees).
fn data_folder(
    reg: &Registry,
    spec: &str,
    store: bool,
    progress: &dyn Progress,
) -> Result<DataInput> {
    let dir = snapshot::check_folder(Path::new(spec))?;
    let cache = StatCache::load(reg, &dir);
    let staging = Staging::new(reg);
    let sink = if store {
        Sink::Store(&staging)
    } else {
        Sink::HashOnly
    };
    let (snap, trees) = snapshot::snapshot(
        reg,
        &dir,
        &sink,
        Some(&cache),
        &snapshot::Reading::default(),
        progress,
    )
    .with_context(|| format!("hashing --data {spec}"))?;
    if store {
        snapshot::publish(staging, &trees, progress)?;
    }
    cache.save(reg);
    Ok(DataInput {
        path: spec.to_owned(),
        kind: "folder".to_owned(),
        hash: Some(snap.tree.to_string()),
        files: Some(snap.files),
        bytes: Some(snap.bytes),
        version: None,
        stored: store,
    })
}

/// Returns a data file's hash and size, from the stat cache when the file is unchanged
/// since it was last hashed, so a large data file is read once, not at every run.
fn hash_data_file(reg: &Registry, path: &Path, meta: &fs::Metadata) -> Result<(ObjectId, u64)> {
    let abs = std::path::absolute(path).with_context(|| format!("locating {}", path.display()))?;
    let cache = StatCache::load(reg, &abs);
    let stamp = Stamp::of(meta);
    if let Some(id) = cache.lookup("", &stamp) {
        cache.save(reg);
        return Ok((id, meta.len()));
    }
    let (id, bytes) = object::hash_file(path, &|_| {})?;
    cache.record("", stamp, id);
    cache.save(reg);
    Ok((id, bytes))
}

/// Splits `s3://bucket/key@v3` into the URI and its version; an `@` inside the
/// authority or followed by a `/` is part of the URI.
fn split_version(spec: &str) -> (&str, Option<&str>) {
    let path_start = spec.find("://").map_or(0, |i| i + 3);
    match spec.rfind('@') {
        Some(at) if at > path_start && !spec[at + 1..].contains('/') && at + 1 < spec.len() => {
            let authority_end = spec[path_start..]
                .find('/')
                .map_or(spec.len(), |i| path_start + i);
            if at < authority_end {
                (spec, None)
            } else {
                (&spec[..at], Some(&spec[at + 1..]))
            }
        }
        _ => (spec, None),
    }
}

impl Additions {
    /// Returns whether nothing was given.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
            && self.tags.is_empty()
            && self.metrics.is_empty()
            && self.series.is_empty()
            && self.data.is_empty()
            && self.parents.is_empty()
    }

    /// Returns the number of series points.
    pub fn points(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }

    /// Adds everything to a record about to be created, storing long series first:
    /// folded in as an event would be, so a run's first values and its later ones
    /// follow the same rules.
    pub fn apply_to(self, reg: &Registry, record: &mut RunRecord) -> Result<()> {
        let mut event = RunEvent::new(
            record.id.clone(),
            record.start.clone(),
            record.actor.clone(),
        );
        self.apply_to_event(reg, &mut event)?;
        record.apply(&event);
        Ok(())
    }

    /// Adds everything to an event about to be published, storing long series first.
    pub fn apply_to_event(self, reg: &Registry, event: &mut RunEvent) -> Result<()> {
        event.params.extend(self.params);
        event.tags.extend(self.tags);
        for (key, points) in self.series {
            let chunk = runs::store_points(reg, points.clone())?;
            event.series.insert(key, Series::of(&points, chunk));
        }
        event.metrics.extend(self.metrics);
        event.data.extend(self.data);
        event.parents.extend(self.parents);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Additions, Value, mask_secrets, split_version};

    #[test]
    fn secret_looking_params_and_tags_are_masked_unless_kept() {
        let mut add = Additions::default();
        for (key, value) in [
            ("api_key", Value::Str("abc".into())),
            ("auth.token", Value::Int(1234)),
            ("use_token", Value::Bool(true)),
            ("hf_token", Value::Str(String::new())),
            ("db.password", Value::Str("pw".into())),
            ("url", Value::Str("https://u:pw@h/x".into())),
            ("tokenizer", Value::Str("bpe".into())),
        ] {
            add.params.insert(key.to_owned(), value);
        }
        add.tags.insert("ci_token".into(), "t".into());
        let mut warnings = Vec::new();
        let keep = ["db.password".to_owned(), "lr".to_owned()];
        mask_secrets(&mut add, &keep, &mut |w| warnings.push(w));
        let redacted = Value::Str("[redacted]".into());
        assert_eq!(add.params["api_key"], redacted);
        assert_eq!(add.params["auth.token"], redacted);
        assert_eq!(add.params["use_token"], Value::Bool(true));
        assert_eq!(add.params["hf_token"], Value::Str(String::new()));
        assert_eq!(add.params["db.password"], Value::Str("pw".into()));
        assert_eq!(add.params["url"], Value::Str("https://h/x".into()));
        assert_eq!(add.params["tokenizer"], Value::Str("bpe".into()));
        assert_eq!(add.tags["ci_token"], "[redacted]");
        let named: Vec<&str> = warnings
            .iter()
            .map(|w| w.split_whitespace().nth(1).expect("a key"))
            .collect();
        assert_eq!(named, ["api_key", "auth.token", "url", "ci_token", "lr:"]);
        assert!(
            warnings
                .iter()
                .all(|w| !w.contains("pw@") && !w.contains("abc"))
        );
    }

    #[test]
    fn a_version_follows_the_last_at_of_the_path() {
        assert_eq!(
            split_version("s3://b/k.csv@v3"),
            ("s3://b/k.csv", Some("v3"))
        );
        assert_eq!(split_version("s3://b/k.csv"), ("s3://b/k.csv", None));
        assert_eq!(
            split_version("s3://b/dir@x/k.csv"),
            ("s3://b/dir@x/k.csv", None)
        );
        assert_eq!(
            split_version("https://u@host/k"),
            ("https://u@host/k", None)
        );
        assert_eq!(split_version("s3://b/k@"), ("s3://b/k@", None));
    }
}
