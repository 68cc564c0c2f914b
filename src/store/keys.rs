//! The registry's layout, spelled once: the key of everything a registry holds, a
//! `/`-separated path relative to its root. A registry folder joins a key to its
//! `.mreg` folder; a remote (another folder, a bucket prefix) uses the key as it is.
//!
//! ```text
//! config.toml                        format version, stages and their policies
//! registry-id                        the registry's name for itself (32 hex digits)
//! objects/ab/cdef…[.zst|.chunks]     blobs and trees, immutable
//! packs/NAME.pack, packs/NAME.idx    small objects packed together, and the index
//! models/NAME/versions/N.toml        version records, created exclusively
//! models/NAME/states/ID.toml         stage states, immutable, each naming the one before
//! models/NAME/HEAD                   the newest stage state; the one mutable key
//! models/NAME/info/NANOS-HASH8.toml  changes of the model's own fields, immutable
//! models/NAME/signatures/TREE/H.sig   signatures of a version's tree (OMS bundles), by hash
//! models/NAME/approvals/TREE/H.sig    signed approvals of a tree for a stage, by hash
//! models/NAME/moves/STATE/H.sig       signatures of stage moves (`promote --key`), by hash
//! runs/ID/run.toml                   a run's record as it started
//! runs/ID/log/NAME.toml              its events, one immutable file each
//! runs/ID/removed.toml               its removal: who removed it, when, why
//! tmp/                               temp files and probes
//! gc.epoch                           the mark of the newest gc that deleted objects
//! gc/collector, gc/writers/ID        on a bucket: the leases of gc and of writers
//! ```
//!
//! A registry folder also holds, for itself only: `remotes.toml`, `.gitignore` and
//! `cache/`. [`parse`] reads a key back, refusing anything a registry would not write
//! there, so a listing of a remote yields only well-formed names.

use std::path::Path;

use crate::id::{ObjectId, RunId, StateId};
use crate::names::ModelName;
use crate::store::object::Encoding;

/// The registry's configuration.
pub const CONFIG: &str = "config.toml";

/// The registry's name for itself, so that a remote made again is told from the old one.
pub const REGISTRY_ID: &str = "registry-id";

/// The remotes of a local registry (never synced).
pub const REMOTES: &str = "remotes.toml";

/// The file that keeps a registry folder out of the project's git status.
pub const GITIGNORE: &str = ".gitignore";

/// The folder of objects.
pub const OBJECTS: &str = "objects/";

/// The folder of packs ([`super::pack`]).
pub const PACKS: &str = "packs/";

/// The folder of models.
pub const MODELS: &str = "models/";

/// The folder of runs.
pub const RUNS: &str = "runs/";

/// The folder of temp files.
pub const TMP: &str = "tmp/";

/// The folder of a local registry's caches: never needed for correctness.
pub const CACHE: &str = "cache/";

/// The folders every registry folder has.
pub const FOLDERS: [&str; 5] = [OBJECTS, MODELS, RUNS, TMP, CACHE];

/// The file name of a run's record inside its folder.
pub const RUN_RECORD: &str = "run.toml";

/// The file name of a run's removal record inside its folder.
pub const RUN_REMOVAL: &str = "removed.toml";

/// The lock writers share and `gc` takes alone ([`super::gclock`]).
pub const GC_LOCK: &str = "gc.lock";

/// The queue `gc` takes before [`GC_LOCK`], so writers arriving later wait behind it.
pub const GC_QUEUE: &str = "gc.queue";

/// The mark of the newest `gc` that deleted objects (a random id), written before its
/// first deletion, in a folder and on a bucket: a writer that remembers which objects a
/// remote holds forgets them when the mark changed, so it never relies on an object a
/// `gc` deleted since.
pub const GC_EPOCH: &str = "gc.epoch";

/// The folder of a bucket's leases.
pub const GC_PREFIX: &str = "gc/";

/// The lease of the `gc` collecting a bucket, which writers wait behind
/// (`remote::lease`).
pub const GC_COLLECTOR: &str = "gc/collector";

/// The folder of the leases of the writers of a bucket, which `gc` waits for.
pub const GC_WRITERS: &str = "gc/writers/";

/// Returns the key of an object in the given encoding.
///
/// Built in one allocation of the right size: a push asks for two object paths per
/// file from several threads at once, and growing strings there contends on the
/// allocator's lock.
pub fn object(id: ObjectId, encoding: Encoding) -> String {
    let hex = id.to_hex();
    let suffix = encoding.suffix();
    let mut key = String::with_capacity(OBJECTS.len() + hex.len() + 1 + suffix.len());
    key.push_str(OBJECTS);
    key.push_str(&hex[..2]);
    key.push('/');
    key.push_str(&hex[2..]);
    key.push_str(suffix);
    key
}

/// Returns the folder of a model's version records.
pub fn versions(model: &str) -> String {
    format!("{MODELS}{model}/versions/")
}

/// Returns the key of one version record.
pub fn version(model: &str, number: u64) -> String {
    format!("{MODELS}{model}/versions/{number}.toml")
}

/// Returns the folder of a model's removal records.
pub fn removals(model: &str) -> String {
    format!("{MODELS}{model}/removed/")
}

/// Returns the key of the removal record of one version.
pub fn removal(model: &str, number: u64) -> String {
    format!("{MODELS}{model}/removed/{number}.toml")
}

/// Returns the folder of a model's stage states.
pub fn states(model: &str) -> String {
    format!("{MODELS}{model}/states/")
}

/// Returns the key of one stage state.
pub fn state(model: &str, id: &StateId) -> String {
    format!("{MODELS}{model}/states/{id}.toml")
}

/// Returns the folder of the changes of a model's own fields (`manifest::info`).
pub fn infos(model: &str) -> String {
    format!("{MODELS}{model}/info/")
}

/// Returns the key of one change of a model's own fields, by its file name.
pub fn info(model: &str, name: &str) -> String {
    format!("{MODELS}{model}/info/{name}")
}

/// Returns which signed record a key holds: a signature of a tree, an approval of a
/// tree for a stage, or a signature of a stage move (a state). All are DSSE bundles
/// named by the BLAKE3 of their bytes, in a folder named by the hex id (tree or state)
/// they are of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signed {
    /// `models/NAME/signatures/TREE/H.sig`: an OMS signature of the tree's files.
    Signature,
    /// `models/NAME/approvals/TREE/H.sig`: an approval of the tree for a stage.
    Approval,
    /// `models/NAME/moves/STATE/H.sig`: a signature of a stage move.
    Move,
}

impl Signed {
    /// Returns the folder name of this kind under a model.
    pub fn folder(self) -> &'static str {
        match self {
            Signed::Signature => "signatures",
            Signed::Approval => "approvals",
            Signed::Move => "moves",
        }
    }

    /// Returns what one is called, for people.
    pub fn noun(self) -> &'static str {
        match self {
            Signed::Signature => "model signature",
            Signed::Approval => "approval",
            Signed::Move => "signed stage move",
        }
    }

    /// Returns what one is called, with its article: `a model signature`, `an approval`.
    pub fn with_article(self) -> String {
        let noun = self.noun();
        let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {noun}")
    }

    fn of_folder(folder: &str) -> Option<Signed> {
        match folder {
            "signatures" => Some(Signed::Signature),
            "approvals" => Some(Signed::Approval),
            "moves" => Some(Signed::Move),
            _ => None,
        }
    }
}

/// Returns the folder of the signed records of one kind about `subject` (the hex id of
/// a tree, or of a state for a move) of a model.
pub fn signed_dir(model: &str, kind: Signed, subject: &str) -> String {
    format!("{MODELS}{model}/{}/{subject}/", kind.folder())
}

/// Returns the key of one signed record about `subject` of a model, by its name: the
/// BLAKE3 of its bytes in hex, so that it is stored once and checked by its name.
pub fn signed(model: &str, kind: Signed, subject: &str, name: &str) -> String {
    format!("{}{name}.sig", signed_dir(model, kind, subject))
}

/// Returns whether `text` is 64 lowercase hex digits: a hash, as ids and names are.
pub fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Returns the name a signature's bytes take.
pub fn signature_name(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Returns a new file name for an immutable entry of a log (a run's event, a change of
/// a model's fields): the time in nanoseconds, strictly increasing within this
/// process, so that names sort in the order they were written, and 8 hex digits of a
/// hash of the content and the process, so that two writers never pick one name.
pub fn new_log_name(body: &[u8]) -> String {
    let nanos = unique_nanos();
    let mut hasher = blake3::Hasher::new();
    hasher.update(format!("{nanos}-{}-", std::process::id()).as_bytes());
    hasher.update(body);
    format!("{nanos:020}-{}.toml", &hasher.finalize().to_hex()[..8])
}

/// Returns nanoseconds since the epoch, strictly increasing within this process.
pub fn unique_nanos() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let prev = LAST.fetch_max(now, Ordering::Relaxed);
    if prev >= now {
        LAST.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        now
    }
}

/// Returns the key of a model's stage pointer.
pub fn head(model: &str) -> String {
    format!("{MODELS}{model}/HEAD")
}

/// Returns the marker beside a model's `HEAD` saying that this registry wrote one:
/// made by every stage move, so that a `HEAD` lost afterwards is told apart
/// from one not written yet. Local to each registry; never synced.
pub fn head_seen(model: &str) -> String {
    format!("{MODELS}{model}/HEAD.seen")
}

/// Returns the folder of one run.
pub fn run(id: &RunId) -> String {
    format!("{RUNS}{id}/")
}

/// Returns the key of a run's record.
pub fn run_record(id: &RunId) -> String {
    format!("{RUNS}{id}/{RUN_RECORD}")
}

/// Returns the key of a run's removal record.
pub fn run_removal(id: &RunId) -> String {
    format!("{RUNS}{id}/{RUN_REMOVAL}")
}

/// Returns the folder of a run's events.
pub fn run_log(id: &RunId) -> String {
    format!("{RUNS}{id}/log/")
}

/// Returns the key of one event of a run, by its file name.
pub fn run_event(id: &RunId, name: &str) -> String {
    format!("{RUNS}{id}/log/{name}")
}

/// Returns the key of a file of a run, by its path inside the run's folder
/// (`run.toml`, `log/NAME.toml`).
pub fn run_file(run: &str, rel: &str) -> String {
    format!("{RUNS}{run}/{rel}")
}

/// Returns the key of a probe file of `remote check`.
pub fn probe(nonce: &str) -> String {
    format!("{TMP}probe-{nonce}")
}

/// Returns the time a name [`new_log_name`] made holds, in nanoseconds since the epoch,
/// or `None` for a name it cannot have made: only 20 digits, a dash, 8 lowercase hex
/// digits and `.toml` is one, so no two names claim one place in the order by spelling
/// it differently.
pub fn log_name_nanos(name: &str) -> Option<u64> {
    let (nanos, hash) = name.strip_suffix(".toml")?.split_once('-')?;
    let digits = nanos.len() == 20 && nanos.bytes().all(|b| b.is_ascii_digit());
    let hex = hash.len() == 8
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if digits && hex {
        nanos.parse().ok()
    } else {
        None
    }
}

/// Returns whether `name` is the file name of a run event: a `.toml` file that is not
/// hidden (temp files of other tools start with a dot).
pub fn is_event_name(name: &str) -> bool {
    Path::new(name).extension().is_some_and(|e| e == "toml") && !name.starts_with('.')
}

/// Returns the version number a record's file name holds: `7.toml` is 7; `07.toml`,
/// `0.toml` and other names are no version.
pub fn version_number(file: &str) -> Option<u64> {
    let n: u64 = file.strip_suffix(".toml")?.parse().ok()?;
    (n > 0 && format!("{n}.toml") == file).then_some(n)
}

/// Returns what a metadata key names, or `None` for a key a registry does not write
/// (a lock, a temp file, a name that breaks the naming rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<'a> {
    /// `models/NAME/versions/N.toml`.
    Version {
        /// The model.
        model: &'a str,
        /// The version number.
        number: u64,
    },
    /// `models/NAME/removed/N.toml`.
    Removal {
        /// The model.
        model: &'a str,
        /// The removed version's number.
        number: u64,
    },
    /// `models/NAME/states/ID.toml`.
    State {
        /// The model.
        model: &'a str,
        /// The state.
        id: StateId,
    },
    /// `models/NAME/info/NANOS-HASH8.toml`.
    Info {
        /// The model.
        model: &'a str,
        /// The change's file name.
        name: &'a str,
    },
    /// `models/NAME/signatures|approvals/TREE/NAME.sig`.
    Signed {
        /// The model.
        model: &'a str,
        /// A signature, an approval or a signed move.
        kind: Signed,
        /// The hex id of the tree (or, for a move, the state) it is of.
        subject: &'a str,
        /// Its name (the hash of its bytes, in hex).
        name: &'a str,
    },
    /// `models/NAME/HEAD`.
    Head {
        /// The model.
        model: &'a str,
    },
    /// `runs/ID/run.toml`.
    RunRecord {
        /// The run.
        run: RunId,
    },
    /// `runs/ID/removed.toml`.
    RunRemoval {
        /// The run.
        run: RunId,
    },
    /// `runs/ID/log/NAME.toml`.
    RunEvent {
        /// The run.
        run: RunId,
        /// The event's file name.
        name: &'a str,
    },
}

/// Parses a key of `models/` or `runs/`; see [`Key`].
pub fn parse(key: &str) -> Option<Key<'_>> {
    let parts: Vec<&str> = key.split('/').collect();
    let model_ok = |m: &str| ModelName::parse(m).is_ok();
    match parts.as_slice() {
        ["models", model, "versions", file] if model_ok(model) => Some(Key::Version {
            model,
            number: version_number(file)?,
        }),
        ["models", model, "removed", file] if model_ok(model) => Some(Key::Removal {
            model,
            number: version_number(file)?,
        }),
        ["models", model, "states", file] if model_ok(model) => Some(Key::State {
            model,
            id: StateId::parse(file.strip_suffix(".toml")?)?,
        }),
        ["models", model, "info", name] if model_ok(model) && log_name_nanos(name).is_some() => {
            Some(Key::Info { model, name })
        }
        ["models", model, folder, subject, file]
            if model_ok(model) && Signed::of_folder(folder).is_some() =>
        {
            let name = file.strip_suffix(".sig")?;
            if !is_hash(subject) || !is_hash(name) {
                return None;
            }
            Some(Key::Signed {
                model,
                kind: Signed::of_folder(folder)?,
                subject,
                name,
            })
        }
        ["models", model, "HEAD"] if model_ok(model) => Some(Key::Head { model }),
        ["runs", id, file] if *file == RUN_RECORD => Some(Key::RunRecord {
            run: RunId::parse(id)?,
        }),
        ["runs", id, file] if *file == RUN_REMOVAL => Some(Key::RunRemoval {
            run: RunId::parse(id)?,
        }),
        ["runs", id, "log", name] if is_event_name(name) => Some(Key::RunEvent {
            run: RunId::parse(id)?,
            name,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_what_they_name() {
        let run = RunId::parse("0123456789abcdef").unwrap();
        let state = StateId::parse(&"a".repeat(64)).unwrap();
        assert_eq!(
            parse(&version("churn", 7)),
            Some(Key::Version {
                model: "churn",
                number: 7
            })
        );
        assert_eq!(
            parse(&super::state("churn", &state)),
            Some(Key::State {
                model: "churn",
                id: state.clone()
            })
        );
        assert_eq!(
            parse(&removal("churn", 3)),
            Some(Key::Removal {
                model: "churn",
                number: 3
            })
        );
        assert_eq!(parse(&head("churn")), Some(Key::Head { model: "churn" }));
        let tree = "b".repeat(64);
        let sig = signature_name(b"bundle");
        assert_eq!(
            parse(&signed("churn", Signed::Approval, &tree, &sig)),
            Some(Key::Signed {
                model: "churn",
                kind: Signed::Approval,
                subject: &tree,
                name: &sig
            })
        );
        for planted in [
            "x.sig",
            &format!("{sig}.toml"),
            &format!("{}.sig", sig.to_uppercase()),
        ] {
            let key = format!("{}{planted}", signed_dir("churn", Signed::Signature, &tree));
            assert_eq!(parse(&key), None, "{planted}");
        }
        let name = new_log_name(b"x");
        assert_eq!(
            parse(&info("churn", &name)),
            Some(Key::Info {
                model: "churn",
                name: &name
            })
        );
        for planted in [
            "zzz.toml",
            "99999999999999999999-0000000.toml",
            "9999999999999999999a-00000000.toml",
            "99999999999999999999-0000000G.toml",
            "99999999999999999999-0000000A.toml",
            "99999999999999999999-00000000.toml.tmp",
            "0099999999999999999-00000000.toml",
            "99999999999999999999-00000000\n.toml",
        ] {
            assert_eq!(parse(&info("churn", planted)), None, "{planted}");
        }
        assert_eq!(
            log_name_nanos("00000000000000000042-0123abcd.toml"),
            Some(42)
        );
        assert!(
            new_log_name(b"x") > name,
            "names sort in the order they were made"
        );
        assert_eq!(
            parse(&run_removal(&run)),
            Some(Key::RunRemoval { run: run.clone() })
        );
        assert_eq!(
            parse(&run_record(&run)),
            Some(Key::RunRecord { run: run.clone() })
        );
        let event = run_event(&run, "00000000000000000001-abcd1234.toml");
        assert_eq!(
            parse(&event),
            Some(Key::RunEvent {
                run,
                name: "00000000000000000001-abcd1234.toml"
            })
        );
        assert_eq!(
            object(ObjectId::of(b""), Encoding::Zstd),
            "objects/af/1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262.zst"
        );
    }

    #[test]
    fn keys_a_registry_does_not_write_are_not_read() {
        for stray in [
            "models/churn/versions/02.toml",
            "models/churn/versions/0.toml",
            "models/churn/versions/x.toml",
            "models/churn/states/short.toml",
            "models/churn/removed/03.toml",
            "models/churn/HEAD.lock",
            "models/churn/info/.x.toml",
            "models/churn/info/notes.txt",
            "models/churn/info/sub/1.toml",
            "models/../versions/1.toml",
            "models/-rf/HEAD",
            "runs/0123456789abcdef/log/.tmp-x.toml",
            "runs/0123456789abcdef/log/notes.txt",
            "runs/not-a-run/run.toml",
            "runs/0123456789abcdef/other.toml",
            "tmp/probe-1",
            "config.toml",
        ] {
            assert_eq!(parse(stray), None, "{stray}");
        }
    }
}
