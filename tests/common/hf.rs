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
