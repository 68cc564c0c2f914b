//! Dependency lock files at the top of the source folder, with their blake3 hashes.

use std::ffi::OsStr;
use std::fs::File;
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

/// Returns the lock files directly in `dir` (not in subfolders), sorted by path.
///
/// Symbolic links to files count. Files that cannot be read, and names that are not
/// UTF-8, are skipped.
pub(crate) fn lockfiles(dir: &Path) -> Vec<LockFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<LockFile> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            if !is_lock_file(&name) {
                return None;
            }
            let path = entry.path();
            if !path.is_file() {
                return None;
            }
            Some(LockFile {
                blake3: hash_file(&path)?,
                path: name,
                stored: false,
            })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Returns whether a file name is one of the recognized lock files.
fn is_lock_file(name: &str) -> bool {
    NAMES.contains(&name)
        || (name.starts_with("requirements")
            && Path::new(name).extension() == Some(OsStr::new("txt")))
}

/// Returns the blake3 hex of a file's content, read in a stream.
fn hash_file(path: &Path) -> Option<String> {
    let file = File::open(path).ok()?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file).ok()?;
    Some(hasher.finalize().to_hex().to_string())
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
}
