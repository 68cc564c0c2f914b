//! The stock OpenSSF Model Signing tool (`model_signing`, pip `model-signing`), in a
//! virtual environment of its own under the target folder, installed on first use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The version the tests run against. 1.1.1 imports pyOpenSSL without declaring it,
/// so that is installed beside it.
const PACKAGES: [&str; 2] = ["model-signing==1.1.1", "pyOpenSSL"];

static TOOL: OnceLock<PathBuf> = OnceLock::new();

/// Returns the `model_signing` executable, installing it on first use.
pub fn tool() -> &'static Path {
    TOOL.get_or_init(|| {
        let python = super::support::venv(
            "model-signing-venv",
            &PACKAGES,
            &["-m", "model_signing", "--help"],
            "the signing tests",
        );
        python.with_file_name("model_signing")
    })
}

/// Runs `model_signing ARGS` in `dir`.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(tool())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running model_signing")
}

/// Returns the test key pair's paths (P-256; it protects nothing).
pub fn test_keys() -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oms");
    (dir.join("test-key.pem"), dir.join("test-key.pub"))
}

/// Returns the folder the stock tool signed for the fixtures.
pub fn fixture_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oms/model")
}
