//! `mreg export --oci` and `mreg push-oci`, checked with Debian's skopeo and a real
//! registry (Debian's docker-registry) on 127.0.0.1.

use std::fs;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

#[cfg(feature = "s3")]
use crate::common::oci::registry;
use crate::common::oci::skopeo_ok;
use crate::common::{TestEnv, noise};

/// Pushes a model folder (weights, a link to them, config, tokenizer, README, an
/// executable) as `churn`, with a metric; returns the environment.
fn pushed() -> TestEnv {
    let env = TestEnv::with_registry();
    env.write("model/config.json", "{\"layers\": 2}\n");
    env.write("model/model.safetensors", noise(3 << 20, 5));
    env.write("model/tokenizer/vocab.txt", "a\nb\n");
    env.write("model/README.md", "# churn\n");
    let serve = env.write("model/serve.sh", "#!/bin/sh\necho serve\n");
    fs::set_permissions(&serve, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("model.safetensors", env.path("model/alias.safetensors")).unwrap();
    env.ok(&["push", "model", "--model", "churn", "--metric", "acc=0.91"]);
    env
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Returns the tags the index of the layout at `dir` names, in its order.
fn tags_of(dir: &Path) -> Vec<String> {
    let index = json(&fs::read_to_string(dir.join("index.json")).unwrap());
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Returns the blob `digest` of the layout at `dir`.
fn blob(dir: &Path, digest: &str) -> Vec<u8> {
    fs::read(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

/// Checks that every layer of the manifest at `layout:tag` holds the file its path
/// annotation names in the pushed folder, byte for byte.
fn layers_hold_the_files(env: &TestEnv, layout: &Path, manifest: &Value) {
    let layers = manifest["layers"].as_array().unwrap();
    let mut paths: Vec<&str> = layers
        .iter()
        .map(|l| {
            l["annotations"]["org.cncf.model.filepath"]
                .as_str()
                .unwrap()
        })
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "README.md",
            "alias.safetensors",
            "config.json",
            "model.safetensors",
            "serve.sh",
            "tokenizer/vocab.txt"
        ]
    );
    for layer in layers {
        let path = layer["annotations"]["org.cncf.model.filepath"]
            .as_str()
            .unwrap();
        let content = fs::read(env.path("model").join(path)).unwrap();
        let digest = layer["digest"].as_str().unwrap();
        assert_eq!(digest, sha256(&content), "{path}");
        assert_eq!(blob(layout, digest), content, "{path}");
        assert_eq!(layer["size"].as_u64(), Some(content.len() as u64));
    }
}

#[test]
fn an_export_is_a_modelpack_layout_skopeo_reads_and_copies_with_the_same_digests() {
    let env = pushed();
    let out = env.ok(&["export", "churn@1", "--oci", "layout", "--json"]);
    let out = json(&out);
    assert_eq!(out["tag"], "1");
    assert_eq!(out["layers"], 6);
    let raw = skopeo_ok(env.root(), &["inspect", "--raw", "oci:work/layout:1"]);
    let manifest = json(&raw);
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.cncf.model.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.model.config.v1+json"
    );
    assert_eq!(out["digest"], sha256(raw.as_bytes()));
    layers_hold_the_files(&env, &env.path("layout"), &manifest);
    let kind = |path: &str| {
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["annotations"]["org.cncf.model.filepath"] == path)
            .unwrap()["mediaType"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        kind("model.safetensors"),
        "application/vnd.cncf.model.weight.v1.raw"
    );
    assert_eq!(
        kind("config.json"),
        "application/vnd.cncf.model.weight.config.v1.raw"
    );
    assert_eq!(kind("README.md"), "application/vnd.cncf.model.doc.v1.raw");
    assert_eq!(kind("serve.sh"), "application/vnd.cncf.model.code.v1.raw");
    assert_eq!(
        manifest["annotations"]["dev.mreg.metrics"], "{\"acc\":0.91}",
        "the metrics travel where the spec has room"
    );
    // The config as the spec asks: descriptor, config and modelfs, one diffId a layer.
    let config_raw = skopeo_ok(
        env.root(),
        &["inspect", "--raw", "--config", "oci:work/layout:1"],
    );
    let config = json(&config_raw);
    assert_eq!(config["descriptor"]["name"], "churn");
    assert_eq!(config["descriptor"]["version"], "1");
    assert_eq!(config["config"]["format"], "safetensors");
    assert_eq!(config["modelfs"]["type"], "layers");
    let diff_ids: Vec<&Value> = config["modelfs"]["diffIds"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let digests: Vec<&Value> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    assert_eq!(diff_ids, digests);

    // skopeo copies it, checking every digest, and the copy holds the same bytes.
    skopeo_ok(
        env.root(),
        &["copy", "oci:work/layout:1", "oci:work/copy:1"],
    );
    let copied = json(&skopeo_ok(
        env.root(),
        &["inspect", "--raw", "oci:work/copy:1"],
    ));
    assert_eq!(copied, manifest);
    layers_hold_the_files(&env, &env.path("copy"), &copied);

    // The same version gives the same digests; a second version joins the layout,
    // sharing the blobs it has in common.
    let again = json(&env.ok(&["export", "churn@1", "--oci", "layout", "--json"]));
    assert_eq!(again["digest"], out["digest"]);
    assert_eq!(again["blobs_moved"], 0, "nothing new to write");
    env.write("model/config.json", "{\"layers\": 3}\n");
    env.ok(&["push", "model", "--model", "churn"]);
    let second = json(&env.ok(&[
        "export", "churn@2", "--oci", "layout", "--tag", "v2", "--json",
    ]));
    assert_eq!(
        second["blobs_moved"], 3,
        "the new config.json, model config and manifest"
    );
    let tags = tags_of(&env.path("layout"));
    assert_eq!(tags, ["1", "v2"]);
    skopeo_ok(env.root(), &["inspect", "--raw", "oci:work/layout:v2"]);
}

#[test]
fn export_refuses_a_folder_it_did_not_write_and_a_bad_tag() {
    let env = pushed();
    env.write("taken/notes.txt", "mine");
    let run = env.run(&["export", "churn@1", "--oci", "taken"]);
    assert_eq!(run.status.code(), Some(1));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains("is not empty and is no OCI image layout"),
        "{said}"
    );
    assert_eq!(
        fs::read_dir(env.path("taken")).unwrap().count(),
        1,
        "nothing written"
    );
    let run = env.run(&["export", "churn@1", "--oci", "new", "--tag", "-bad"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(!env.path("new").exists());
}

#[cfg(feature = "s3")]
#[test]
fn push_oci_sends_what_the_registry_lacks_and_skopeo_copies_it_back_by_digest() {
    let env = pushed();
    let port = registry().port;
    let dest = format!("127.0.0.1:{port}/ml/churn-{}", std::process::id());
    let sent = json(&env.ok(&["push-oci", "churn@1", &dest, "--plain-http", "--json"]));
    assert_eq!(sent["tag"], "1");
    assert_eq!(sent["blobs_moved"], 6, "five distinct files and the config");
    let again = json(&env.ok(&[
        "push-oci",
        "churn@1",
        &format!("{dest}:prod"),
        "--plain-http",
        "--json",
    ]));
    assert_eq!(again["blobs_moved"], 0, "the registry had every blob");
    assert_eq!(again["digest"], sent["digest"]);

    // Copied back by digest: skopeo checks the manifest and every blob against it.
    let by_digest = format!("docker://{dest}@{}", sent["digest"].as_str().unwrap());
    skopeo_ok(
        env.root(),
        &[
            "copy",
            "--src-tls-verify=false",
            &by_digest,
            "oci:work/back:1",
        ],
    );
    let manifest = json(&skopeo_ok(
        env.root(),
        &["inspect", "--raw", "oci:work/back:1"],
    ));
    layers_hold_the_files(&env, &env.path("back"), &manifest);
    let tagged = skopeo_ok(
        env.root(),
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{dest}:prod"),
        ],
    );
    assert_eq!(sha256(tagged.as_bytes()), sent["digest"].as_str().unwrap());
}

#[cfg(feature = "s3")]
#[test]
fn push_oci_says_what_is_wrong_with_a_destination_or_a_registry() {
    let env = pushed();
    for bad in ["churn", "https://host/repo", "host/Repo", "host/repo:-x"] {
        let run = env.run(&["push-oci", "churn@1", bad]);
        assert_eq!(run.status.code(), Some(2), "{bad}");
        let said = String::from_utf8_lossy(&run.stderr);
        assert!(said.contains("is not an OCI destination"), "{said}");
    }
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = env.run(&[
        "push-oci",
        "churn@1",
        &format!("127.0.0.1:{port}/x"),
        "--plain-http",
    ]);
    assert_eq!(run.status.code(), Some(1));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains(&format!("cannot reach http://127.0.0.1:{port}")),
        "{said}"
    );
    // A registry that speaks plain HTTP, asked for HTTPS.
    let run = env.run(&[
        "push-oci",
        "churn@1",
        &format!("127.0.0.1:{}/x", registry().port),
    ]);
    assert_eq!(run.status.code(), Some(1));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(said.contains("--plain-http"), "{said}");
}

/// Starts tests/support/fake_oci.py in `mode`; returns it, its stdin and its two ports.
#[cfg(feature = "s3")]
fn fake_registry(mode: &str) -> (std::process::Child, std::process::ChildStdin, u16, u16) {
    let (child, stdin, ports) = crate::common::support::start_ready("fake_oci.py", &[mode], None);
    (child, stdin, ports[0], ports[1])
}

#[cfg(feature = "s3")]
#[test]
fn credentials_go_only_to_the_registry_and_a_silent_one_times_out() {
    let env = pushed();
    let (mut child, _stdin, port, other) = fake_registry("elsewhere");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mreg"))
        .args([
            "push-oci",
            "churn@1",
            &format!("127.0.0.1:{port}/x:t"),
            "--plain-http",
        ])
        .current_dir(env.path(""))
        .env("MREG_OCI_USERNAME", "ci")
        .env("MREG_OCI_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = std::process::Command::new("python3")
        .args([
            "-c",
            &format!("import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{other}/seen').read().decode())"),
        ])
        .output()
        .unwrap();
    let seen: Value = serde_json::from_slice(&seen.stdout).unwrap();
    assert_eq!(
        seen.as_array().unwrap().len(),
        6,
        "every blob went to the other host"
    );
    assert!(
        seen.as_array().unwrap().iter().all(Value::is_null),
        "no credentials to another origin: {seen}"
    );
    let _ = child.kill();

    let (mut child, _stdin, port, _) = fake_registry("silent");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mreg"))
        .args([
            "push-oci",
            "churn@1",
            &format!("127.0.0.1:{port}/x:t"),
            "--plain-http",
        ])
        .current_dir(env.path(""))
        .env("MREG_OCI_TIMEOUT", "2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("stopped answering"), "{said}");
    let _ = child.kill();
}

#[test]
fn concurrent_exports_keep_every_tag_and_a_damaged_blob_is_written_again() {
    let env = pushed();
    let children: Vec<std::process::Child> = (0..6)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_mreg"))
                .args([
                    "export",
                    "churn@1",
                    "--oci",
                    "shared",
                    "--tag",
                    &format!("t{i}"),
                ])
                .current_dir(env.path(""))
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let mut tags = tags_of(&env.path("shared"));
    tags.sort_unstable();
    assert_eq!(tags, ["t0", "t1", "t2", "t3", "t4", "t5"]);

    // One byte of the weights' blob flipped, its size the same: written again.
    let weights = sha256(&noise(3 << 20, 5));
    let path = env.path("shared/blobs/sha256").join(&weights[7..]);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let again = json(&env.ok(&["export", "churn@1", "--oci", "shared", "--json"]));
    assert_eq!(again["blobs_moved"], 1, "{again}");
    assert_eq!(fs::read(&path).unwrap(), noise(3 << 20, 5));
}
