//! Lineage of two runs, fact by fact: the git source, the data inputs, the parent models
//! and the environment, each as text rows keyed by what they describe.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Change;
use crate::id::ObjectId;
use crate::lineage;
use crate::manifest::RunRecord;
use crate::manifest::lineage::Environment;
use crate::manifest::run::DataInput;
use crate::store::{Registry, read};

/// Returns one fact on both sides, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextRow {
    /// What the fact is: `commit`, a data path, a parent model, `gpus`, `lockfile uv.lock`.
    pub key: String,
    /// How it changed.
    pub change: Change,
    /// The old side's value.
    pub old: Option<String>,
    /// The new side's value.
    pub new: Option<String>,
}

/// Returns rows for every key of either map, sorted by key.
fn rows(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<TextRow> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .map(|key| {
            let (a, b) = (old.get(key), new.get(key));
            TextRow {
                key: key.clone(),
                change: Change::of(a, b),
                old: a.cloned(),
                new: b.cloned(),
            }
        })
        .collect()
}

/// Returns the facts of each side's run through `facts`; a side without a run has none.
fn compare(
    old: Option<&RunRecord>,
    new: Option<&RunRecord>,
    facts: impl Fn(&RunRecord) -> BTreeMap<String, String>,
) -> Vec<TextRow> {
    let a = old.map(&facts).unwrap_or_default();
    let b = new.map(&facts).unwrap_or_default();
    rows(&a, &b)
}

/// Returns the git state: commit, branch, dirty (with the hash of the changes), remote.
pub fn source(old: Option<&RunRecord>, new: Option<&RunRecord>) -> Vec<TextRow> {
    compare(old, new, |run| {
        let mut facts = BTreeMap::new();
        if let Some(s) = &run.source {
            let mut put = |key: &str, value: Option<&String>| {
                if let Some(v) = value {
                    facts.insert(key.to_owned(), v.clone());
                }
            };
            put("commit", s.commit.as_ref());
            put("branch", s.branch.as_ref());
            put("remote", s.remote.as_ref());
            put("diff_hash", s.diff_hash.as_ref());
            facts.insert("dirty".to_owned(), s.dirty.to_string());
        }
        facts
    })
}

/// Returns one row per data input, by path: its kind, hash, size and version.
pub fn data(old: Option<&RunRecord>, new: Option<&RunRecord>) -> Vec<TextRow> {
    compare(old, new, |run| {
        run.data
            .iter()
            .map(|d| (d.path.clone(), describe_data(d)))
            .collect()
    })
}

/// Returns a data input as one line: `file blake3:ab12… 1.2 MiB`.
fn describe_data(d: &DataInput) -> String {
    let mut parts = vec![d.kind.clone()];
    if let Some(hash) = &d.hash {
        parts.push(format!("blake3:{hash}"));
    }
    if let Some(files) = d.files {
        parts.push(format!("{files} files"));
    }
    if let Some(bytes) = d.bytes {
        parts.push(format!("{bytes} bytes"));
    }
    if let Some(version) = &d.version {
        parts.push(format!("version {version}"));
    }
    if d.stored {
        parts.push("stored".to_owned());
    }
    parts.join(" ")
}

/// Returns one row per parent model: the version and tree the run started from.
pub fn parents(old: Option<&RunRecord>, new: Option<&RunRecord>) -> Vec<TextRow> {
    compare(old, new, |run| {
        let mut by_model: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &run.parents {
            by_model.entry(p.model.clone()).or_default().push(format!(
                "{} (tree {})",
                p.reference(),
                p.tree.0.short(12)
            ));
        }
        by_model
            .into_iter()
            .map(|(model, list)| (model, list.join(", ")))
            .collect()
    })
}

/// Returns the environment: host, GPUs and driver, CUDA, container, CI job, lock files.
pub fn environment(old: Option<&RunRecord>, new: Option<&RunRecord>) -> Vec<TextRow> {
    compare(old, new, |run| {
        run.environment
            .as_ref()
            .map(environment_facts)
            .unwrap_or_default()
    })
}

fn environment_facts(env: &Environment) -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            facts.insert(key.to_owned(), v);
        }
    };
    put("mreg_version", Some(env.mreg_version.clone()));
    put("os", Some(env.os.clone()));
    put("kernel", env.kernel.clone());
    put("arch", Some(env.arch.clone()));
    put("hostname", env.hostname.clone());
    put("cpu", env.cpu.clone());
    put("cores", env.cores.map(|c| c.to_string()));
    put("memory_bytes", env.memory_bytes.map(|m| m.to_string()));
    put("cuda", env.cuda.clone());
    put("gpus", gpus(env));
    let mut drivers: Vec<&str> = env
        .gpus
        .iter()
        .filter_map(|g| g.driver.as_deref())
        .collect();
    drivers.dedup();
    put(
        "gpu_driver",
        (!drivers.is_empty()).then(|| drivers.join(", ")),
    );
    if let Some(c) = &env.container {
        put("container.runtime", Some(c.runtime.clone()));
        put("container.image", c.image.clone());
    }
    if let Some(ci) = &env.ci {
        put("ci.provider", Some(ci.provider.clone()));
        put("ci.job_url", ci.job_url.clone());
        put("ci.job", ci.job.clone());
        put("ci.workflow", ci.workflow.clone());
        put("ci.commit", ci.commit.clone());
        put("ci.ref", ci.ref_name.clone());
    }
    if let Some(python) = &env.python {
        let version = python.version.as_deref().unwrap_or("?");
        put(
            "python",
            Some(format!("{version} ({}, {})", python.kind, python.prefix)),
        );
    }
    for lock in &env.lockfiles {
        put(
            &format!("lockfile {}", lock.path),
            Some(format!("blake3:{}", lock.blake3)),
        );
    }
    facts
}

/// Returns one row per Python distribution installed in either run's environment, by
/// name: its version on each side (added, removed, changed), when both runs have a list.
/// The second value says why a side has none (not recorded, or unreadable), for a note;
/// when neither run recorded one, there is nothing to say.
pub fn packages(
    reg: &Registry,
    old: Option<&RunRecord>,
    new: Option<&RunRecord>,
) -> (Vec<TextRow>, Vec<String>) {
    let mut problems = Vec::new();
    let mut unrecorded = 0;
    let mut list = |run: Option<&RunRecord>| -> Option<BTreeMap<String, String>> {
        let run = run?;
        match package_list(reg, run) {
            Ok(Some(list)) => Some(list),
            Ok(None) => {
                unrecorded += 1;
                problems.push(format!(
                    "run {} recorded no package list (no Python environment was found, or \
                     it was recorded before mreg kept them)",
                    run.id
                ));
                None
            }
            Err(err) => {
                problems.push(format!(
                    "the package list of run {} cannot be read: {err:#}",
                    run.id
                ));
                None
            }
        }
    };
    let (a, b) = (list(old), list(new));
    match (a, b) {
        (Some(a), Some(b)) => (rows(&a, &b), problems),
        // Neither recorded one: nothing to compare, nothing to say.
        (None, None) if unrecorded == 2 => (Vec::new(), Vec::new()),
        // One side missing would read as every package added: say why instead.
        _ => (Vec::new(), problems),
    }
}

/// Returns a run's Python packages by name, `None` when it has no stored list.
pub fn package_list(
    reg: &Registry,
    run: &RunRecord,
) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let Some(hex) = run
        .environment
        .as_ref()
        .and_then(|e| e.python.as_ref())
        .and_then(|p| p.packages_object.as_deref())
    else {
        return Ok(None);
    };
    let id: ObjectId = hex
        .parse()
        .map_err(|_| anyhow::anyhow!("{hex:?} is not an object id"))?;
    let bytes = read::read_up_to(reg, id, lineage::PACKAGE_LIST_LIMIT, "a package list")?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("object {} is not a package list: not UTF-8", id.short(16)))?;
    lineage::parse_package_list(text)
        .map(Some)
        .map_err(|why| anyhow::anyhow!("object {} is not a package list: {why}", id.short(16)))
}

/// Returns the GPUs as `2× NVIDIA A100-SXM4-80GB`, several models joined by `+`.
fn gpus(env: &Environment) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for gpu in &env.gpus {
        match counts.iter_mut().find(|(name, _)| *name == gpu.name) {
            Some((_, n)) => *n += 1,
            None => counts.push((&gpu.name, 1)),
        }
    }
    (!counts.is_empty()).then(|| {
        counts
            .iter()
            .map(|(name, n)| format!("{n}× {name}"))
            .collect::<Vec<_>>()
            .join(" + ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::RunId;
    use crate::manifest::lineage::{Gpu, LockFile, Source};
    use crate::manifest::run::Status;

    fn run(commit: &str, driver: &str, lock: &str) -> RunRecord {
        RunRecord {
            format: 1,
            id: RunId::parse("0123456789abcdef").unwrap(),
            experiment: "e".into(),
            name: None,
            status: Status::Finished,
            start: "2026-01-01T00:00:00Z".into(),
            actor: "a".into(),
            end: None,
            command: None,
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            tags: BTreeMap::new(),
            series: BTreeMap::new(),
            source: Some(Source {
                commit: Some(commit.into()),
                root: "/r".into(),
                ..Source::default()
            }),
            data: vec![DataInput {
                path: "train.csv".into(),
                kind: "file".into(),
                hash: Some(commit.into()),
                files: None,
                bytes: Some(10),
                version: None,
                stored: false,
            }],
            parents: Vec::new(),
            outputs: Vec::new(),
            environment: Some(Environment {
                mreg_version: "0.1.0".into(),
                os: "linux".into(),
                arch: "x86_64".into(),
                gpus: vec![
                    Gpu {
                        name: "A100".into(),
                        memory_bytes: None,
                        driver: Some(driver.into()),
                    };
                    2
                ],
                lockfiles: vec![LockFile {
                    path: "uv.lock".into(),
                    blake3: lock.into(),
                    stored: false,
                }],
                ..Environment::default()
            }),
        }
    }

    fn changed(rows: &[TextRow]) -> Vec<(&str, Option<&str>, Option<&str>)> {
        rows.iter()
            .filter(|r| r.change != Change::Same)
            .map(|r| (r.key.as_str(), r.old.as_deref(), r.new.as_deref()))
            .collect()
    }

    #[test]
    fn lineage_rows_name_what_changed() {
        let (a, b) = (run("aaa", "550", "l1"), run("bbb", "555", "l1"));
        assert_eq!(
            changed(&source(Some(&a), Some(&b))),
            [("commit", Some("aaa"), Some("bbb"))]
        );
        assert_eq!(
            changed(&data(Some(&a), Some(&b))),
            [(
                "train.csv",
                Some("file blake3:aaa 10 bytes"),
                Some("file blake3:bbb 10 bytes")
            )]
        );
        let env = environment(Some(&a), Some(&b));
        assert_eq!(changed(&env), [("gpu_driver", Some("550"), Some("555"))]);
        assert!(
            env.iter()
                .any(|r| r.key == "gpus" && r.new.as_deref() == Some("2× A100"))
        );
        assert!(env.iter().any(|r| r.key == "lockfile uv.lock"));
    }

    #[test]
    fn a_side_without_a_run_has_every_fact_removed() {
        let a = run("aaa", "550", "l1");
        let rows = source(Some(&a), None);
        assert!(rows.iter().all(|r| r.change == Change::Removed));
        assert!(parents(Some(&a), None).is_empty());
    }
}
