//! Git provenance of a run: commit, branch, dirtiness, a hash of the changes, the remote.
//!
//! Everything comes from the `git` binary, run with `GIT_OPTIONAL_LOCKS=0` (so a
//! concurrent git command never finds the index locked by us), stdin null and stderr
//! discarded. A clean tree costs three git invocations, run side by side; a dirty one
//! adds the diff (two on a branch with no commit yet), streamed into the hasher.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::lineage::url::strip_credentials;
use crate::manifest::lineage::Source;

/// Untracked files larger than this enter the diff hash by name and size, not content.
///
/// Hashing runs at the start of every recorded run; a multi-gigabyte checkpoint left
/// untracked in the work tree must not stall it.
const UNTRACKED_CONTENT_LIMIT: u64 = 32 << 20;

/// Returns the git state of the work tree containing `dir`.
///
/// Returns `None` when `git` is not installed, or `dir` is not inside a work tree (or
/// git refuses it, e.g. for dubious ownership). Never fails otherwise: a diff that
/// cannot be produced leaves `diff_hash` out.
pub fn source(dir: &Path) -> Option<Source> {
    let toplevel = git(dir).args(["rev-parse", "--show-toplevel"]).spawn();
    let status = git(dir)
        .args([
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--untracked-files=all",
        ])
        .spawn();
    let remotes = git(dir)
        .args(["config", "-z", "--get-regexp", r"^remote\..*\.url$"])
        .spawn();
    // Collect all three before judging any, so no child is left unreaped.
    let (toplevel, status, remotes) = (output(toplevel), output(status), output(remotes));
    let root = String::from_utf8_lossy(toplevel?.strip_suffix(b"\n")?).into_owned();
    let status = parse_status(&status?);
    let diff_hash = if status.dirty {
        diff_hash(Path::new(&root), status.commit.is_none(), status.untracked)
    } else {
        None
    };
    Some(Source {
        commit: status.commit,
        branch: status.branch,
        dirty: status.dirty,
        diff_hash,
        remote: remotes
            .and_then(|r| pick_remote(&r))
            .map(|u| strip_credentials(&u)),
        root,
    })
}

/// Returns a `git -C dir` command with optional locks off, stdin null, stdout piped.
fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Returns the stdout of a child that exited successfully.
fn output(child: io::Result<Child>) -> Option<Vec<u8>> {
    let out = child.ok()?.wait_with_output().ok()?;
    out.status.success().then_some(out.stdout)
}

/// What `git status --porcelain=v2 --branch -z` says.
#[derive(Debug, Default, PartialEq)]
struct Status {
    commit: Option<String>,
    branch: Option<String>,
    dirty: bool,
    untracked: Vec<Vec<u8>>,
}

/// Parses `git status --porcelain=v2 --branch -z` output.
fn parse_status(out: &[u8]) -> Status {
    let mut status = Status::default();
    let mut records = out.split(|&b| b == 0);
    while let Some(record) = records.next() {
        if let Some(header) = record.strip_prefix(b"# ") {
            let text = String::from_utf8_lossy(header);
            if let Some(oid) = text.strip_prefix("branch.oid ") {
                status.commit = (oid != "(initial)").then(|| oid.to_owned());
            } else if let Some(head) = text.strip_prefix("branch.head ") {
                status.branch = (head != "(detached)").then(|| head.to_owned());
            }
            continue;
        }
        match record.first() {
            Some(b'1' | b'u') => status.dirty = true,
            Some(b'2') => {
                status.dirty = true;
                // A rename or copy is followed by its original path as its own record.
                records.next();
            }
            Some(b'?') => {
                status.dirty = true;
                if let Some(path) = record.get(2..) {
                    status.untracked.push(path.to_vec());
                }
            }
            _ => {}
        }
    }
    status
}

/// Returns the URL of `origin`, else of the first remote, in `git config -z` output.
fn pick_remote(config: &[u8]) -> Option<String> {
    let remotes: Vec<(&str, &str)> = std::str::from_utf8(config)
        .ok()?
        .split('\0')
        .filter_map(|record| {
            let (key, url) = record.split_once('\n')?;
            let name = key.strip_prefix("remote.")?.strip_suffix(".url")?;
            Some((name, url))
        })
        .collect();
    remotes
        .iter()
        .find(|(name, _)| *name == "origin")
        .or(remotes.first())
        .map(|(_, url)| (*url).to_owned())
}

/// Returns the blake3 hex of the work tree's changes: the diff, then the untracked files.
///
/// The diff is streamed into the hasher. It never holds a NUL byte (`--binary`
/// encodes binary files), so NUL-separated untracked records cannot be confused with it.
fn diff_hash(root: &Path, unborn: bool, mut untracked: Vec<Vec<u8>>) -> Option<String> {
    let mut hasher = blake3::Hasher::new();
    if unborn {
        // No HEAD to diff against: what is staged, then what changed since staging.
        hash_diff(&mut hasher, root, &["--cached"])?;
        hash_diff(&mut hasher, root, &[])?;
    } else {
        hash_diff(&mut hasher, root, &["HEAD"])?;
    }
    untracked.sort();
    for path in &untracked {
        hasher.update(b"\0untracked\0");
        hasher.update(path);
        hasher.update(b"\0");
        hash_untracked(&mut hasher, &root.join(OsStr::from_bytes(path)));
    }
    Some(hasher.finalize().to_hex().to_string())
}

/// Streams `git diff <args> --binary` into `hasher`, ignoring diff settings that would
/// change its bytes (color, external drivers, textconv, prefixes, algorithm).
fn hash_diff(hasher: &mut blake3::Hasher, root: &Path, args: &[&str]) -> Option<()> {
    let mut child = git(root)
        .args([
            "diff",
            "--binary",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
        ])
        .args([
            "--src-prefix=a/",
            "--dst-prefix=b/",
            "--diff-algorithm=myers",
        ])
        .args(args)
        .spawn()
        .ok()?;
    let streamed = match child.stdout.take() {
        Some(mut stdout) => hasher.update_reader(&mut stdout).is_ok(),
        None => false,
    };
    // stdout is closed by now, so a child we stopped reading exits instead of blocking.
    let status = child.wait().ok()?;
    (streamed && status.success()).then_some(())
}

/// Feeds one untracked file into `hasher`: a link's target, a small file's content hash,
/// a large file's size, or a marker when it cannot be read.
fn hash_untracked(hasher: &mut blake3::Hasher, path: &Path) {
    let Ok(meta) = path.symlink_metadata() else {
        hasher.update(b"gone");
        return;
    };
    if meta.file_type().is_symlink() {
        hasher.update(b"link");
        if let Ok(target) = std::fs::read_link(path) {
            hasher.update(target.as_os_str().as_bytes());
        }
    } else if meta.len() > UNTRACKED_CONTENT_LIMIT {
        hasher.update(b"size");
        hasher.update(&meta.len().to_le_bytes());
    } else {
        let mut content = blake3::Hasher::new();
        match File::open(path).map(|file| content.update_reader(file).map(|_| ())) {
            Ok(Ok(())) => {
                hasher.update(b"file");
                hasher.update(content.finalize().as_bytes());
            }
            _ => {
                hasher.update(b"unreadable");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::{Source, Status, parse_status, pick_remote, source};

    #[test]
    fn parses_status() {
        let out = b"# branch.oid 0123abcd\0# branch.head main\0# branch.upstream origin/main\0\
                    # branch.ab +0 -0\0\
                    2 R. N... 100644 100644 100644 aaa bbb R100 new name.txt\0old.txt\0\
                    1 .M N... 100644 100644 100644 aaa aaa src/a.py\0\
                    ? data/x y.csv\0? b.txt\0";
        assert_eq!(
            parse_status(out),
            Status {
                commit: Some("0123abcd".into()),
                branch: Some("main".into()),
                dirty: true,
                untracked: vec![b"data/x y.csv".to_vec(), b"b.txt".to_vec()],
            }
        );
        let clean = b"# branch.oid (initial)\0# branch.head (detached)\0";
        assert_eq!(parse_status(clean), Status::default());
        // A rename's original path that looks like an entry is not one.
        let renamed = b"2 R. N... 100644 100644 100644 a b R100 n\0? not-untracked\0";
        assert!(parse_status(renamed).untracked.is_empty());
    }

    #[test]
    fn picks_remote() {
        let config = b"remote.upstream.url\nhttps://a/u.git\0remote.origin.url\nhttps://a/o.git\0";
        assert_eq!(pick_remote(config).as_deref(), Some("https://a/o.git"));
        let config = b"remote.my.fork.url\ngit@h:f.git\0remote.z.url\nz\0";
        assert_eq!(pick_remote(config).as_deref(), Some("git@h:f.git"));
        assert_eq!(pick_remote(b""), None);
    }

    fn has_git() -> bool {
        Command::new("git").arg("--version").output().is_ok()
    }

    /// Runs a git command in `dir` that must succeed, isolated from user configuration.
    fn run(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(status.status.success(), "git {args:?}: {status:?}");
    }

    #[test]
    fn none_outside_a_work_tree() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(source(&dir.path().join("missing")), None);
        if has_git() {
            assert_eq!(source(dir.path()), None);
        }
    }

    #[test]
    fn records_a_real_repository() {
        if !has_git() {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().canonicalize().expect("canonical temp dir");
        let root = repo.to_str().expect("utf-8 temp path").to_owned();
        run(&repo, &["init", "-q", "-b", "main"]);
        assert_eq!(
            source(&repo),
            Some(Source {
                branch: Some("main".into()),
                root: root.clone(),
                ..Source::default()
            })
        );

        std::fs::write(repo.join("train.py"), "print(1)\n").expect("write");
        let unborn = source(&repo).expect("source");
        assert!(unborn.dirty && unborn.commit.is_none() && unborn.diff_hash.is_some());

        run(&repo, &["add", "."]);
        run(&repo, &["commit", "-q", "-m", "first"]);
        run(&repo, &["remote", "add", "backup", "https://b/r.git"]);
        run(
            &repo,
            &["remote", "add", "origin", "https://user:secret@host/r.git"],
        );
        let clean = source(&repo).expect("source");
        let commit = clean.commit.clone().expect("commit");
        assert_eq!(commit.len(), 40);
        assert_eq!(
            clean,
            Source {
                commit: Some(commit.clone()),
                branch: Some("main".into()),
                dirty: false,
                diff_hash: None,
                remote: Some("https://host/r.git".into()),
                root: root.clone(),
            }
        );

        // Every change moves the hash; the same state gives the same hash.
        let mut hashes = Vec::new();
        let record = || {
            let s = source(&repo).expect("source");
            assert!(s.dirty);
            assert_eq!(s.commit.as_deref(), Some(commit.as_str()));
            s.diff_hash.expect("diff hash when dirty")
        };
        std::fs::write(repo.join("train.py"), "print(2)\n").expect("write");
        hashes.push(record());
        hashes.push(record());
        std::fs::write(repo.join("train.py"), "print(3)\n").expect("write");
        hashes.push(record());
        std::fs::create_dir(repo.join("conf")).expect("mkdir");
        std::fs::write(repo.join("conf/lr.txt"), "0.1").expect("write");
        hashes.push(record());
        std::fs::write(repo.join("conf/lr.txt"), "0.2").expect("write");
        hashes.push(record());
        std::fs::write(repo.join(".gitignore"), "out/\n").expect("write");
        hashes.push(record());
        std::fs::create_dir(repo.join("out")).expect("mkdir");
        std::fs::write(repo.join("out/model.bin"), "weights").expect("write");
        hashes.push(record());
        assert_eq!(hashes[0], hashes[1]);
        assert_eq!(hashes[5], hashes[6], "ignored files do not count");
        for i in 1..5 {
            assert_ne!(hashes[i], hashes[i + 1], "change {i}");
        }

        // From a subfolder, on a detached HEAD.
        run(&repo, &["checkout", "-q", "--detach"]);
        let sub = source(&repo.join("conf")).expect("source");
        assert_eq!(sub.root, root);
        assert_eq!(sub.branch, None);
        assert_eq!(sub.diff_hash.as_deref(), Some(hashes[6].as_str()));
    }
}
