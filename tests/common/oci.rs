//! The OCI tools of the tests: Debian's `skopeo`, and its `docker-registry` on
//! 127.0.0.1, started once per test process (see tests/support/oci_registry.py).
//! `.ci/run` installs both.

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The running registry.
pub struct Registry {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Kept open for the life of the test process; the registry stops when it closes.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// Returns whether a program is on the PATH.
fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Returns the registry, starting it on first use.
pub fn registry() -> &'static Registry {
    REGISTRY.get_or_init(|| {
        assert!(
            installed("docker-registry"),
            "the OCI tests need Debian's docker-registry: apt-get install docker-registry skopeo"
        );
        let (child, stdin, ports) = super::support::start_ready("oci_registry.py", &[], None);
        Registry {
            port: ports[0],
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
        }
    })
}

/// Runs skopeo with `args` in `dir`, and returns what it did.
pub fn skopeo(dir: &Path, args: &[&str]) -> Output {
    assert!(
        installed("skopeo"),
        "the OCI tests need Debian's skopeo: apt-get install skopeo docker-registry"
    );
    Command::new("skopeo")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running skopeo")
}

/// Runs skopeo and returns its stdout, failing the test when it fails.
pub fn skopeo_ok(dir: &Path, args: &[&str]) -> String {
    let out = skopeo(dir, args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
