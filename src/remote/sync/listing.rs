//! The metadata keys each side of a sync holds (`models/…` and `runs/…`), listed and
//! sorted by kind; a listing never looks at objects.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::remote::{Listed, Remote};
use crate::store::Registry;
use crate::store::keys::{self, Key};

/// The metadata keys of one side, by kind.
#[derive(Debug, Default)]
pub(super) struct Keys {
    /// Model → version numbers.
    pub(super) versions: BTreeMap<String, BTreeSet<u64>>,
    /// Model → numbers of removed versions.
    pub(super) removals: BTreeMap<String, BTreeSet<u64>>,
    /// Model → state file names (`ID.toml`).
    pub(super) states: BTreeMap<String, BTreeSet<String>>,
    /// Models with a `HEAD`.
    pub(super) heads: BTreeSet<String>,
    /// Model → names of the changes of its own fields.
    pub(super) info: BTreeMap<String, BTreeSet<String>>,
    /// Model → its signed records, as `signatures|approvals|moves/ID/NAME` (hex,
    /// without `.sig`).
    pub(super) signatures: BTreeMap<String, BTreeSet<String>>,
    /// Run id → its files (`run.toml`, `log/NAME.toml`, `removed.toml`).
    pub(super) runs: BTreeMap<String, BTreeSet<String>>,
    /// Keys no registry writes and no reader may follow: a `.`, `..` or empty segment,
    /// or a control character. Other keys a listing does not know (`HEAD.lock`, a
    /// writer's temp file) are ignored.
    pub(super) hostile: Vec<String>,
    /// Keys that are no regular file (a FIFO, a socket, a device), with what they are;
    /// never read, whatever their names.
    pub(super) special: Vec<(String, &'static str)>,
}

impl Keys {
    pub(super) fn of(listed: &[Listed]) -> Keys {
        let mut out = Keys::default();
        for item in listed {
            let key = item.key.as_str();
            if let Some(kind) = item.special {
                out.special.push((key.to_owned(), kind));
                continue;
            }
            match keys::parse(key) {
                Some(Key::Version { model, number }) => {
                    out.versions
                        .entry(model.to_owned())
                        .or_default()
                        .insert(number);
                }
                Some(Key::Removal { model, number }) => {
                    out.removals
                        .entry(model.to_owned())
                        .or_default()
                        .insert(number);
                }
                Some(Key::State { model, id }) => {
                    out.states
                        .entry(model.to_owned())
                        .or_default()
                        .insert(format!("{id}.toml"));
                }
                Some(Key::Head { model }) => {
                    out.heads.insert(model.to_owned());
                }
                Some(Key::Info { model, name }) => {
                    out.info
                        .entry(model.to_owned())
                        .or_default()
                        .insert(name.to_owned());
                }
                Some(Key::Signed {
                    model,
                    kind,
                    subject,
                    name,
                }) => {
                    out.signatures
                        .entry(model.to_owned())
                        .or_default()
                        .insert(format!("{}/{subject}/{name}", kind.folder()));
                }
                Some(Key::RunRecord { run }) => {
                    out.runs
                        .entry(run.to_string())
                        .or_default()
                        .insert(keys::RUN_RECORD.to_owned());
                }
                Some(Key::RunRemoval { run }) => {
                    out.runs
                        .entry(run.to_string())
                        .or_default()
                        .insert(keys::RUN_REMOVAL.to_owned());
                }
                Some(Key::RunEvent { run, name }) => {
                    out.runs
                        .entry(run.to_string())
                        .or_default()
                        .insert(format!("log/{name}"));
                }
                None if is_unsafe(key) => out.hostile.push(key.to_owned()),
                None => {}
            }
        }
        out
    }

    pub(super) fn models(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.versions.keys().cloned().collect();
        out.extend(self.states.keys().cloned());
        out.extend(self.heads.iter().cloned());
        out
    }
}

/// Returns whether a key holds a part no registry writes and no reader may follow.
fn is_unsafe(key: &str) -> bool {
    key.split('/').any(|part| matches!(part, "" | "." | "..")) || key.chars().any(char::is_control)
}

/// Returns the metadata keys a remote holds.
pub(super) fn remote_keys(remote: &dyn Remote) -> Result<Keys> {
    let mut listed = remote.list(keys::MODELS)?;
    listed.extend(remote.list(keys::RUNS)?);
    Ok(Keys::of(&listed))
}

/// Returns the metadata keys the local registry holds.
pub(super) fn local_keys(reg: &Registry) -> Result<Keys> {
    let local = crate::remote::folder::FolderRemote::at_root(reg.root());
    let mut listed = local.list(keys::MODELS)?;
    listed.extend(local.list(keys::RUNS)?);
    Ok(Keys::of(&listed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_keys_are_sorted_by_kind_and_strays_ignored() {
        let state = "a".repeat(64);
        let keys = [
            "models/churn/versions/1.toml".to_owned(),
            "models/churn/versions/02.toml".to_owned(),
            "models/churn/versions/0.toml".to_owned(),
            format!("models/churn/states/{state}.toml"),
            "models/churn/removed/1.toml".to_owned(),
            "models/churn/states/short.toml".to_owned(),
            "models/churn/HEAD".to_owned(),
            "models/churn/HEAD.lock".to_owned(),
            "models/churn/info/00000000000000000001-abcd1234.toml".to_owned(),
            "models/churn/info/notes.txt".to_owned(),
            "models/../versions/1.toml".to_owned(),
            "models/x//versions/1.toml".to_owned(),
            "runs/0123456789abcdef/run.toml".to_owned(),
            "runs/0123456789abcdef/log/00000000000000000001-abcd1234.toml".to_owned(),
            "runs/0123456789abcdef/log/.tmp-x.toml".to_owned(),
            "runs/not-a-run/run.toml".to_owned(),
            "tmp/probe-1".to_owned(),
        ];
        let mut listed: Vec<Listed> = keys
            .iter()
            .map(|key| Listed {
                key: key.clone(),
                size: 1,
                special: None,
            })
            .collect();
        listed.push(Listed {
            key: "models/churn/versions/2.toml".to_owned(),
            size: 0,
            special: Some("a FIFO"),
        });
        let parsed = Keys::of(&listed);
        assert_eq!(parsed.versions["churn"], BTreeSet::from([1]));
        assert_eq!(
            parsed.states["churn"],
            BTreeSet::from([format!("{state}.toml")])
        );
        assert_eq!(parsed.removals["churn"], BTreeSet::from([1]));
        assert_eq!(parsed.heads, BTreeSet::from(["churn".to_owned()]));
        assert_eq!(
            parsed.info["churn"],
            BTreeSet::from(["00000000000000000001-abcd1234.toml".to_owned()])
        );
        assert_eq!(parsed.runs.len(), 1);
        assert_eq!(parsed.runs["0123456789abcdef"].len(), 2);
        assert_eq!(parsed.models(), BTreeSet::from(["churn".to_owned()]));
        assert_eq!(
            parsed.hostile,
            ["models/../versions/1.toml", "models/x//versions/1.toml"]
        );
        assert_eq!(
            parsed.special,
            [("models/churn/versions/2.toml".to_owned(), "a FIFO")]
        );
    }
}
