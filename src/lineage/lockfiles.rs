//! Dependency lock files at the top of the source folder: which ones, and the content a
//! run stores of each (credentials masked), read only from regular files inside it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use crate::manifest::lineage::LockFile;

/// Lock-file names recognized exactly; `requirements*.txt` is matched separately.
const NAMES: [&str; 8] = [
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "environment.yml",
    "environment.yaml",
    "conda-lock.yml",
    "Cargo.lock",
    "package-lock.json",
];

/// The largest lock file recorded; a larger one is no lock file a run depends on, and
/// hashing it would hold up the command.
pub const SIZE_LIMIT: u64 = 16 << 20;

/// The most lock files recorded of one folder, by name.
pub const COUNT_LIMIT: usize = 32;

/// Returns the lock files directly in `dir` (not in subfolders), sorted by path, at most
/// [`COUNT_LIMIT`], each with the blake3 of its content as found; a run that stores it
/// ([`masked`]) names it by the hash of what it stored.
///
/// Only regular files count, and a link only when it leads to one inside `dir`: a link
/// to `/proc/self/environ` or `~/.netrc` is not a lock file, and its content must never
/// reach a registry. Files over [`SIZE_LIMIT`], names that are not UTF-8, and files that
/// cannot be read are skipped.
pub(crate) fn lockfiles(dir: &Path) -> Vec<LockFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| is_lock_file(name))
        .collect();
    names.sort();
    names.truncate(COUNT_LIMIT);
    names
        .into_iter()
        .filter_map(|name| {
            let bytes = content(dir, &name)?;
            Some(LockFile {
                blake3: blake3::hash(&bytes).to_hex().to_string(),
                path: name,
                stored: false,
            })
        })
        .collect()
}

/// Returns the content of the lock file `name` in `dir`, or `None` when it is no lock
/// file to read (see [`lockfiles`]). What a run stores of it is [`masked`].
pub fn content(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let path = dir.join(name);
    let link = std::fs::symlink_metadata(&path).ok()?;
    if link.file_type().is_symlink() {
        let inside = std::fs::canonicalize(&path).ok()?;
        if !inside.starts_with(std::fs::canonicalize(dir).ok()?) {
            return None;
        }
    }
    // Checked before opening: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > SIZE_LIMIT {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    File::open(&path)
        .ok()?
        .take(SIZE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > SIZE_LIMIT {
        return None;
    }
    Some(bytes)
}

/// Returns what a run stores of a lock file's content: the credentials it may hold
/// masked as in every text mreg records (an index URL's `user:token@`, a `ghp_…`
/// token). Masking a large file takes a while; a caller keeps the result per content.
pub fn masked(bytes: Vec<u8>) -> Vec<u8> {
    match std::str::from_utf8(&bytes) {
        Ok(text) => super::mask_text(text).into_bytes(),
        Err(_) => bytes,
    }
}

/// Returns whether a file name is one of the recognized lock files.
fn is_lock_file(name: &str) -> bool {
    NAMES.contains(&name)
        || (name.starts_with("requirements")
            && Path::new(name).extension() == Some(OsStr::new("txt")))
}

#[cfg(test)]
mod tests {
    use super::{LockFile, is_lock_file, lockfiles};

    #[test]
    fn names() {
        for yes in [
            "uv.lock",
            "requirements.txt",
            "requirements-dev.txt",
            "Cargo.lock",
        ] {
            assert!(is_lock_file(yes), "{yes}");
        }
        for no in [
            "notes.txt",
            "requirements.in",
            "requirements",
            "uv.lock.bak",
            "cargo.lock",
        ] {
            assert!(!is_lock_file(no), "{no}");
        }
    }

    #[test]
    fn finds_and_hashes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::write(root.join("uv.lock"), "version = 1\n").expect("write");
        std::fs::write(root.join("requirements-dev.txt"), "pytest\n").expect("write");
        std::fs::write(root.join("requirements.txt"), "").expect("write");
        std::fs::write(root.join("notes.txt"), "hello").expect("write");
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/poetry.lock"), "nested").expect("write");
        std::fs::create_dir(root.join("Cargo.lock")).expect("mkdir");
        std::os::unix::fs::symlink("uv.lock", root.join("Pipfile.lock")).expect("symlink");
        std::os::unix::fs::symlink("missing", root.join("poetry.lock")).expect("symlink");

        let hex = |bytes: &[u8]| blake3::hash(bytes).to_hex().to_string();
        assert_eq!(
            lockfiles(root),
            vec![
                LockFile {
                    path: "Pipfile.lock".into(),
                    blake3: hex(b"version = 1\n"),
                    stored: false,
                },
                LockFile {
                    path: "requirements-dev.txt".into(),
                    blake3: hex(b"pytest\n"),
                    stored: false,
                },
                LockFile {
                    path: "requirements.txt".into(),
                    blake3: hex(b""),
                    stored: false,
                },
                LockFile {
                    path: "uv.lock".into(),
                    blake3: hex(b"version = 1\n"),
                    stored: false,
                },
            ]
        );
        assert_eq!(lockfiles(&root.join("nope")), vec![]);
    }

    #[test]
    fn links_out_of_the_folder_fifos_and_huge_files_are_no_lock_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("project");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::write(dir.path().join("secret"), "TOKEN=x").expect("write");
        std::os::unix::fs::symlink("../secret", root.join("requirements-a.txt")).expect("link");
        std::os::unix::fs::symlink("/proc/self/environ", root.join("requirements-b.txt"))
            .expect("link");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("requirements-c.txt"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("fifo");
        let big = std::fs::File::create(root.join("uv.lock")).expect("create");
        big.set_len(super::SIZE_LIMIT + 1).expect("sparse");
        assert_eq!(lockfiles(&root), vec![]);
    }

    #[test]
    fn credentials_in_a_lock_file_are_masked_in_what_is_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = "--extra-index-url https://__token__:glpat-SECRET@gitlab.example.com/simple\nnumpy==2.0.1\n";
        std::fs::write(dir.path().join("requirements.txt"), text).expect("write");
        let raw = super::content(dir.path(), "requirements.txt").expect("read");
        assert_eq!(
            lockfiles(dir.path())[0].blake3,
            blake3::hash(&raw).to_hex().to_string()
        );
        let stored = String::from_utf8(super::masked(raw)).expect("text");
        assert!(!stored.contains("SECRET"), "{stored}");
        assert!(
            stored.contains("gitlab.example.com/simple") && stored.ends_with("numpy==2.0.1\n"),
            "{stored}"
        );
    }
}
