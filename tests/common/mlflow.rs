//! Real MLflow 3 (pip `mlflow-skinny`, with SQLAlchemy and Alembic for its database
//! store) in a virtual environment of its own under the target folder, installed on
//! first use; and the script that writes the stores the import tests read
//! (tests/support/mlflow_store.py).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The versions the tests run against.
const PACKAGES: [&str; 3] = [
    "mlflow-skinny==3.18.0",
    "SQLAlchemy==2.1.9",
    "alembic==1.20.1",
];

static PYTHON: OnceLock<PathBuf> = OnceLock::new();

/// Returns the Python of the environment MLflow is installed in, installing it on first
/// use.
pub fn python() -> &'static Path {
    PYTHON.get_or_init(|| {
        super::support::venv(
            "mlflow-venv",
            &PACKAGES,
            &["-c", "import mlflow, sqlalchemy, alembic"],
            "the MLflow tests",
        )
    })
}

/// Runs tests/support/mlflow_store.py with `args` in `dir`, and returns its stdout;
/// fails the test when it fails.
pub fn store(dir: &Path, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mlflow_store.py");
    let out: Output = Command::new(python())
        .arg(script)
        .args(args)
        .current_dir(dir)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .env("GIT_PYTHON_REFRESH", "quiet")
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .expect("running the MLflow store script");
    assert!(
        out.status.success(),
        "mlflow_store.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
