//! Hugging Face's `huggingface_hub` (pip), for the tests that check what it reads of
//! mreg's output: model cards, and cache entries `mreg pull --layout hf-cache` writes.

use std::process::{Command, Output, Stdio};

/// Installs `huggingface_hub` with pip when it is missing, as the S3 tests install moto.
pub fn ensure() {
    let has = || {
        Command::new("python3")
            .args(["-c", "import huggingface_hub"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has() {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "huggingface_hub==2.4.0"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed && has(),
            "these tests need huggingface_hub: pip install 'huggingface_hub==2.4.0'"
        );
    }
}

/// Runs a Python script with `args`, offline (`HF_HUB_OFFLINE=1`), with `envs` set.
pub fn python(script: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    ensure();
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HOME")
        .envs(envs.iter().copied())
        .output()
        .expect("running python3")
}

/// A stand-in for the Hub on 127.0.0.1 serving one repository at one commit (see
/// tests/support/fake_hub.py); it stops when dropped.
pub struct FakeHub {
    /// Its port.
    pub port: u16,
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
}

impl FakeHub {
    /// Serves the files below `files` as every repository, at `commit`.
    pub fn start(files: &std::path::Path, commit: &str) -> FakeHub {
        let files = files.to_str().expect("a UTF-8 test path");
        let (child, stdin, ports) =
            super::support::start_ready("fake_hub.py", &[files, commit], None);
        FakeHub {
            port: ports[0],
            child,
            stdin: Some(stdin),
        }
    }

    /// Downloads `repo_id` into the cache `cache` with huggingface_hub's
    /// `snapshot_download`, and returns the snapshot folder.
    pub fn download(&self, repo_id: &str, cache: &std::path::Path) -> String {
        ensure();
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys; from huggingface_hub import snapshot_download; \
                 print(snapshot_download(sys.argv[1], cache_dir=sys.argv[2]))",
                repo_id,
            ])
            .arg(cache)
            .env("HF_ENDPOINT", format!("http://127.0.0.1:{}", self.port))
            .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_TOKEN")
            .output()
            .expect("running python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
