//! The Python environment a run's command finds, and the distributions installed in it,
//! read from its package folders without running Python (which would cost a run far
//! more than reading a folder or two).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Getenv, small_text_file, var};
use crate::manifest::lineage::Python;

/// The largest package list stored, and read back: a few thousand distributions take a
/// few hundred KiB. A writer keeps within what every reader takes.
pub const LIST_LIMIT: u64 = 4 << 20;

/// Returns the Python environment `getenv` points at, with how many distributions it
/// holds; `None` when there is none.
pub(crate) fn detect(getenv: Getenv<'_>) -> Option<Python> {
    let (kind, prefix) = find(getenv)?;
    let dirs = site_dirs(&prefix);
    let packages = installed(&dirs);
    // pyenv names each interpreter's folder after its full version.
    let version = match kind {
        "pyenv" => prefix
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned),
        _ => None,
    };
    Some(Python {
        kind: kind.to_owned(),
        version: version.or_else(|| version_of(&prefix, &dirs)),
        prefix: prefix.display().to_string(),
        packages: packages.len() as u64,
        packages_object: None,
    })
}

/// Returns the package list of a recorded environment, read again from its folders:
/// one `name==version` line per distribution, sorted; `None` when it holds none.
pub fn package_list(python: &Python) -> Option<String> {
    let packages = installed(&site_dirs(Path::new(&python.prefix)));
    if packages.is_empty() {
        return None;
    }
    let mut list = String::new();
    for (name, version) in &packages {
        list.push_str(name);
        list.push_str("==");
        list.push_str(version);
        list.push('\n');
    }
    Some(list)
}

/// Returns a package list's lines as (name, version) pairs, or the first line that is
/// not `name==version` as mreg writes it (a list from a registry is untrusted).
pub fn parse_package_list(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let valid = line.split_once("==").filter(|(name, version)| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && version.starts_with(|c: char| c.is_ascii_digit())
                && version
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '_'))
        });
        let Some((name, version)) = valid else {
            return Err(format!("line {} is not name==version", n + 1));
        };
        out.insert(name.to_owned(), version.to_owned());
    }
    Ok(out)
}

/// Returns how the environment was found and its prefix. `MREG_PYTHON` names the prefix
/// outright (`given`), or `none` for no environment at all: for a command that runs an
/// interpreter of its own (`/opt/conda/envs/x/bin/python`), or to record none.
fn find(getenv: Getenv<'_>) -> Option<(&'static str, PathBuf)> {
    if let Some(given) = var(getenv, "MREG_PYTHON") {
        let given = PathBuf::from(given);
        if given.as_os_str() == "none" {
            return None;
        }
        if given.is_dir() {
            return Some(("given", given));
        }
        // An interpreter: `.venv/bin/python3`, `/opt/envs/x/bin/python`.
        return given
            .is_file()
            .then(|| prefix_of(&given))
            .flatten()
            .map(|p| ("given", p));
    }
    for (name, kind) in [("VIRTUAL_ENV", "venv"), ("CONDA_PREFIX", "conda")] {
        if let Some(dir) = var(getenv, name).map(PathBuf::from)
            && dir.is_dir()
        {
            return Some((kind, dir));
        }
    }
    let path = var(getenv, "PATH")?;
    let mut found = std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .filter(|p| p.is_file());
    let mut python = found.next()?;
    // pyenv's shim runs the version pyenv selects: its prefix is under versions/.
    if python.parent().and_then(Path::file_name) == Some("shims".as_ref()) {
        let root = python.parent()?.parent()?;
        match pyenv_version(root, getenv).filter(|v| v != "system") {
            Some(version) if root.join("versions").join(&version).is_dir() => {
                return Some(("pyenv", root.join("versions").join(version)));
            }
            _ => python = found.next()?,
        }
    }
    let prefix = prefix_of(&python)?;
    let kind = if prefix.join("pyvenv.cfg").is_file() {
        "venv"
    } else {
        "path"
    };
    Some((kind, prefix))
}

/// Returns the prefix of the interpreter at `python`: a venv's folder (its link is not
/// followed: it points at the interpreter the venv was made from), else the folder
/// above the `bin/` the real file is in (`/usr/bin/python3` -> `python3.11`: `/usr`).
fn prefix_of(python: &Path) -> Option<PathBuf> {
    let prefix = python.parent()?.parent()?;
    if prefix.join("pyvenv.cfg").is_file() {
        return Some(prefix.to_path_buf());
    }
    let real = std::fs::canonicalize(python).ok()?;
    Some(real.parent()?.parent()?.to_path_buf())
}

/// Returns the version pyenv selects: `$PYENV_VERSION`, else the nearest
/// `.python-version` from the current folder up, else its global `version` file (the
/// first name in each).
fn pyenv_version(root: &Path, getenv: Getenv<'_>) -> Option<String> {
    let first = |text: &str| text.split_whitespace().next().map(str::to_owned);
    if let Some(version) = var(getenv, "PYENV_VERSION") {
        return first(&version);
    }
    let cwd = std::env::current_dir().ok()?;
    let local = cwd
        .ancestors()
        .find_map(|dir| small_text_file(&dir.join(".python-version")));
    let text = local.or_else(|| small_text_file(&root.join("version")))?;
    first(&text)
}

/// Returns the folders packages are installed in under `prefix`, in the order Python
/// searches them: `lib/pythonX.Y/site-packages`, Debian's `local/lib/pythonX.Y/
/// dist-packages` and `lib/python3/dist-packages`.
fn site_dirs(prefix: &Path) -> Vec<PathBuf> {
    let versioned = |lib: &Path, leaf: &str| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(lib) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("python3."))
            })
            .map(|e| e.path().join(leaf))
            .filter(|d| d.is_dir())
            .collect();
        // The newest interpreter's folder first.
        dirs.sort_by_key(|d| std::cmp::Reverse(minor_of(d)));
        dirs
    };
    let mut dirs = versioned(&prefix.join("lib"), "site-packages");
    dirs.extend(versioned(&prefix.join("local/lib"), "dist-packages"));
    dirs.extend(versioned(&prefix.join("lib"), "dist-packages"));
    let debian = prefix.join("lib/python3/dist-packages");
    if debian.is_dir() {
        dirs.push(debian);
    }
    dirs
}

/// Returns the minor version of a `…/python3.N/…` folder, for ordering.
fn minor_of(dir: &Path) -> u32 {
    dir.parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("python3."))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Returns the distributions installed in `dirs`, by normalized name; where two folders
/// hold one, the first (the one Python imports) wins.
fn installed(dirs: &[PathBuf]) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some((name, version)) = name.to_str().and_then(distribution) else {
                continue;
            };
            found.entry(name).or_insert(version);
        }
    }
    found
}

/// Returns the name (normalized) and version a metadata folder's name gives:
/// `numpy-2.0.1.dist-info`, `PyYAML-6.0.egg-info`, `six-1.16.0-py3.11.egg-info`.
fn distribution(entry: &str) -> Option<(String, String)> {
    let stem = entry
        .strip_suffix(".dist-info")
        .or_else(|| entry.strip_suffix(".egg-info"))?;
    let (name, rest) = stem.split_once('-')?;
    let version = rest.split_once("-py").map_or(rest, |(v, _)| v);
    // What the packaging specs allow: anything else (a newline, `==`) is no
    // distribution, and would break the list's `name==version` lines.
    let name_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'));
    let version_ok = version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '_'));
    if name.is_empty()
        || !name_ok
        || !version_ok
        || name.len() + version.len() > 200
        || !version.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    Some((normalize(name), version.to_owned()))
}

/// Returns a distribution name as pip compares them: lowercase, runs of `-`, `_` and
/// `.` made one `-` (`PyYAML` and `pyyaml`, `typing_extensions` and `typing-extensions`).
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Returns the environment's Python version: a venv's `pyvenv.cfg` says it in full;
/// otherwise the `pythonX.Y` folder of its first package folder gives major and minor.
fn version_of(prefix: &Path, dirs: &[PathBuf]) -> Option<String> {
    if let Some(cfg) = small_text_file(&prefix.join("pyvenv.cfg")) {
        for line in cfg.lines() {
            if let Some((key, value)) = line.split_once('=')
                && matches!(key.trim(), "version" | "version_info")
            {
                let value = value.trim();
                // version_info = 3.11.2.final.0
                let parts: Vec<&str> = value.split('.').take(3).collect();
                return Some(parts.join("."));
            }
        }
    }
    dirs.iter().find_map(|d| {
        d.parent()?
            .file_name()?
            .to_str()?
            .strip_prefix("python")
            .filter(|v| v.starts_with("3."))
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn touch_dir(path: &Path) {
        std::fs::create_dir_all(path).expect("mkdir");
    }

    #[test]
    fn metadata_folder_names_give_name_and_version() {
        assert_eq!(
            distribution("numpy-2.0.1.dist-info"),
            Some(("numpy".into(), "2.0.1".into()))
        );
        assert_eq!(
            distribution("PyYAML-6.0.1.egg-info"),
            Some(("pyyaml".into(), "6.0.1".into()))
        );
        assert_eq!(
            distribution("six-1.16.0-py3.11.egg-info"),
            Some(("six".into(), "1.16.0".into()))
        );
        assert_eq!(
            distribution("typing_extensions-4.12.2.dist-info"),
            Some(("typing-extensions".into(), "4.12.2".into()))
        );
        for no in [
            "numpy",
            "numpy.dist-info",
            "-1.0.dist-info",
            "x-.dist-info",
            "README.txt",
            "new\nline-2.0.dist-info",
            "weird==name-1.0.dist-info",
            "a-1.0\nb==2.dist-info",
        ] {
            assert_eq!(distribution(no), None, "{no}");
        }
    }

    #[test]
    fn a_venv_is_found_from_its_variable_and_listed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let venv = dir.path().join("venv");
        let site = venv.join("lib/python3.11/site-packages");
        for d in [
            "numpy-2.0.1.dist-info",
            "torch-2.3.0.dist-info",
            "numpy",
            "__pycache__",
        ] {
            touch_dir(&site.join(d));
        }
        std::fs::write(
            venv.join("pyvenv.cfg"),
            "home = /usr/bin\nversion = 3.11.2\n",
        )
        .expect("write");
        let vars: HashMap<&str, String> = [("VIRTUAL_ENV", venv.display().to_string())].into();
        let getenv = |name: &str| vars.get(name).cloned();
        let found = detect(&getenv).expect("a venv");
        assert_eq!(
            (
                found.kind.as_str(),
                found.version.as_deref(),
                found.packages
            ),
            ("venv", Some("3.11.2"), 2)
        );
        assert_eq!(
            package_list(&found).as_deref(),
            Some("numpy==2.0.1\ntorch==2.3.0\n")
        );
        assert_eq!(
            parse_package_list("numpy==2.0.1\ntorch==2.3.0\n").map(|p| p.len()),
            Ok(2)
        );
        assert_eq!(
            parse_package_list("numpy==2.0.1\nnot a line\n"),
            Err("line 2 is not name==version".to_owned())
        );
    }

    #[test]
    fn a_python3_on_path_finds_its_prefix_and_the_first_folder_wins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let prefix = dir.path().join("usr");
        touch_dir(&prefix.join("bin"));
        std::fs::write(prefix.join("bin/python3.12"), "").expect("write");
        std::os::unix::fs::symlink("python3.12", prefix.join("bin/python3")).expect("link");
        touch_dir(&prefix.join("local/lib/python3.12/dist-packages/requests-2.32.0.dist-info"));
        touch_dir(&prefix.join("lib/python3/dist-packages/requests-2.28.1.egg-info"));
        touch_dir(&prefix.join("lib/python3/dist-packages/six-1.16.0.egg-info"));
        let vars: HashMap<&str, String> = [(
            "PATH",
            format!("/nonexistent:{}", prefix.join("bin").display()),
        )]
        .into();
        let getenv = |name: &str| vars.get(name).cloned();
        let found = detect(&getenv).expect("an interpreter");
        assert_eq!(
            (found.kind.as_str(), found.version.as_deref()),
            ("path", Some("3.12"))
        );
        assert_eq!(
            package_list(&found).as_deref(),
            Some("requests==2.32.0\nsix==1.16.0\n")
        );
        let none: HashMap<&str, String> = [("PATH", "/nonexistent".to_owned())].into();
        assert_eq!(detect(&|name: &str| none.get(name).cloned()), None);
    }

    #[test]
    fn a_pyenv_shim_leads_to_the_selected_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join(".pyenv");
        touch_dir(&root.join("shims"));
        std::fs::write(root.join("shims/python3"), "#!/bin/sh\n").expect("write");
        touch_dir(&root.join("versions/3.11.7/lib/python3.11/site-packages/numpy-2.0.1.dist-info"));
        let vars: HashMap<&str, String> = [
            ("PATH", root.join("shims").display().to_string()),
            ("PYENV_VERSION", "3.11.7".to_owned()),
        ]
        .into();
        let found = detect(&|name: &str| vars.get(name).cloned()).expect("an interpreter");
        assert_eq!(
            (
                found.kind.as_str(),
                found.version.as_deref(),
                found.packages
            ),
            ("pyenv", Some("3.11.7"), 1)
        );
        assert!(
            found.prefix.ends_with("versions/3.11.7"),
            "{}",
            found.prefix
        );
    }

    #[test]
    fn mreg_python_may_name_an_interpreter_or_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let venv = dir.path().join(".venv");
        touch_dir(&venv.join("bin"));
        touch_dir(&venv.join("lib/python3.12/site-packages/torch-2.3.0.dist-info"));
        std::fs::write(venv.join("bin/python3"), "").expect("write");
        std::fs::write(venv.join("pyvenv.cfg"), "version_info = 3.12.4.final.0\n").expect("write");
        let with = |value: String| {
            let vars: HashMap<&str, String> = [("MREG_PYTHON", value)].into();
            detect(&|name: &str| vars.get(name).cloned())
        };
        let found = with(venv.join("bin/python3").display().to_string()).expect("a venv");
        assert_eq!(
            (
                found.kind.as_str(),
                found.version.as_deref(),
                found.packages
            ),
            ("given", Some("3.12.4"), 1)
        );
        assert_eq!(
            with(venv.display().to_string()).map(|p| p.packages),
            Some(1)
        );
        assert_eq!(with("none".into()), None);
        assert_eq!(with("/nonexistent/python3".into()), None);
    }
}
