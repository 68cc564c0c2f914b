//! The demo's fixtures, built into the binary: `mreg demo` runs wherever mreg is
//! installed, with no source tree. They are the files of `fixtures/` byte for byte, so
//! the tree the demo pushes is the one the golden test pins.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Returns the bytes of a file of `fixtures/`, as built into the binary.
macro_rules! fixture {
    ($path:literal) => {
        (
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/", $path)).as_slice(),
        )
    };
}

/// The regular files, by path under the fixtures folder.
const FILES: &[(&str, &[u8])] = &[
    fixture!("params.yaml"),
    fixture!("eval.json"),
    fixture!("eval-v2.json"),
    fixture!("metrics.jsonl"),
    fixture!("metrics-v2.jsonl"),
    fixture!("models/tiny-v1/config.json"),
    fixture!("models/tiny-v1/model.safetensors"),
    fixture!("models/tiny-v1/serve.sh"),
    fixture!("models/tiny-v1/tokenizer/vocab.txt"),
    fixture!("models/tiny-v2/config.json"),
    fixture!("models/tiny-v2/model.safetensors"),
    fixture!("models/tiny-v2/serve.sh"),
    fixture!("models/tiny-v2/tokenizer/vocab.txt"),
    fixture!("models/tiny-v2/tokenizer/merges.txt"),
];

/// The files that are executable.
const EXECUTABLE: &[&str] = &["models/tiny-v1/serve.sh", "models/tiny-v2/serve.sh"];

/// The symlinks: where each is, and what it points to.
const LINKS: &[(&str, &str)] = &[
    ("models/tiny-v1/weights.safetensors", "model.safetensors"),
    ("models/tiny-v2/weights.safetensors", "model.safetensors"),
];

/// Writes the fixtures into `dir`, which is created.
pub fn write_to(dir: &Path) -> Result<()> {
    for (rel, bytes) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        let mode = if EXECUTABLE.contains(rel) {
            0o755
        } else {
            0o644
        };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    for (rel, target) in LINKS {
        let path = dir.join(rel);
        std::os::unix::fs::symlink(target, &path)
            .with_context(|| format!("linking {}", path.display()))?;
    }
    Ok(())
}
