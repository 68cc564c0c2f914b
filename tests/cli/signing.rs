//! Model signatures (OMS v1.0), proven against the stock tool: a version mreg signs is
//! verified by `model_signing verify key` once pulled with `--signature`, a folder the
//! stock tool signs is verified by `mreg verify` once pushed, and a changed byte, a
//! renamed file and an added file fail both. Signatures travel with sync, to a folder
//! and to a bucket, and what a registry or remote holds is checked before it is trusted.

use std::fs;
use std::path::Path;

use crate::common::{TestEnv, copy_tree, oms};

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// A registry holding the fixture folder as `toy@1`, and the test key pair.
fn pushed() -> (TestEnv, String, String) {
    let env = TestEnv::with_registry();
    copy_tree(&oms::fixture_model(), &env.path("model"));
    env.ok(&["push", "model", "--model", "toy"]);
    let (private, public) = oms::test_keys();
    (env, s(&private), s(&public))
}

/// Runs the stock verifier on `dir` with its `model.sig`; returns whether it accepts.
fn stock_accepts(dir: &Path, public: &str) -> bool {
    let sig = s(&dir.join("model.sig"));
    let out = oms::run(
        dir.parent().unwrap(),
        &[
            "verify",
            "key",
            &s(dir),
            "--signature",
            &sig,
            "--public_key",
            public,
        ],
    );
    out.status.success()
}

#[test]
fn a_version_mreg_signs_is_verified_by_the_stock_tool_and_any_change_fails_both() {
    let (env, private, public) = pushed();
    env.ok(&["sign", "toy@1", "--key", &private]);
    env.ok(&["pull", "toy@1", "--to", "out", "--signature"]);
    let out = env.path("out");
    assert!(
        stock_accepts(&out, &public),
        "the stock verifier refused mreg's signature"
    );
    env.ok(&["verify", "--dir", "out", "--key", &public]);

    let changed_byte = |dir: &Path| {
        let path = dir.join("weights.bin");
        let mut bytes = fs::read(&path).unwrap();
        bytes[100] ^= 1;
        fs::write(&path, bytes).unwrap();
    };
    let renamed = |dir: &Path| fs::rename(dir.join("sub.txt"), dir.join("sub2.txt")).unwrap();
    let added = |dir: &Path| fs::write(dir.join("extra.txt"), "new\n").unwrap();
    for (name, change) in [
        ("changed", &changed_byte as &dyn Fn(&Path)),
        ("renamed", &renamed),
        ("added", &added),
    ] {
        let copy = env.path(name);
        copy_tree(&out, &copy);
        change(&copy);
        assert!(
            !stock_accepts(&copy, &public),
            "the stock verifier took the {name} folder"
        );
        let refused = env.run(&["verify", "--dir", name, "--key", &public]);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "mreg verify took the {name} folder"
        );
    }
}

#[test]
fn a_folder_the_stock_tool_signs_is_verified_by_mreg_once_pushed() {
    let env = TestEnv::with_registry();
    let (private, public) = oms::test_keys();
    copy_tree(&oms::fixture_model(), &env.path("model"));
    let signed = oms::run(
        env.root(),
        &[
            "sign",
            "key",
            &s(&env.path("model")),
            "--private_key",
            &s(&private),
            "--signature",
            &s(&env.path("stock.sig")),
        ],
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    env.ok(&["push", "model", "--model", "toy"]);
    env.ok(&["sign", "toy@1", "--bundle", "stock.sig"]);
    let out = env.ok(&["verify", "toy@1", "--key", &s(&public)]);
    assert!(out.contains("ok    toy@1: signed by key"), "{out}");

    // The same signature does not fit a version whose files differ, nor one with a
    // file more; each is refused by name, and nothing is stored.
    fs::write(
        env.path("model/config.json"),
        "{\"model_type\": \"other\"}\n",
    )
    .unwrap();
    env.ok(&["push", "model", "--model", "toy"]);
    let refused = env.snap(&["sign", "toy@2", "--bundle", "stock.sig"]);
    insta::assert_snapshot!(refused, @r#"
    exit: 1
    --- stdout
    --- stderr
    error: stock.sig is not a signature of toy@2: config.json differs from what was signed
    hint: sign the folder that was pushed as this version, or push the folder that was signed
    "#);
    let none = env.run(&["verify", "toy@2", "--key", &s(&public)]);
    assert_eq!(none.status.code(), Some(1));
}

#[test]
fn verify_names_each_signature_and_trusts_only_the_keys_it_is_given() {
    let (env, private, public) = pushed();
    env.ok(&["sign", "toy@1", "--key", &private]);
    let other = oms::fixture_model().with_file_name("other-key.pem");
    env.ok(&["sign", "toy@1", "--key", &s(&other)]);
    let signers = format!(
        "[signers]\nalice = \"\"\"\n{}\"\"\"\n",
        fs::read_to_string(&public).unwrap()
    );
    env.write("signers.toml", signers);
    let out = env.snap(&["verify", "toy@1", "--signers", "signers.toml"]);
    insta::assert_snapshot!(out, @r#"
    exit: 0
    --- stdout
    FAIL  toy@1: key 9f93ac5706e13b39: it was not made by a trusted key
    ok    toy@1: signed by key eee1a7c9c7c49e04 (alice), 7 files match; not covered: model.sig
    --- stderr
    "#);
    let json = env.ok(&["verify", "toy@1", "--key", &public, "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["verified"], true);
    assert_eq!(value["signatures"].as_array().unwrap().len(), 2);
    let nothing = env.snap(&["verify", "toy@1"]);
    insta::assert_snapshot!(nothing, @r#"
    exit: 2
    --- stdout
    --- stderr
    error: verify needs the keys to trust: --key PUB.pem or --signers FILE
    hint: a signature proves who made it only against a key you already trust
    "#);
}

#[test]
fn signing_reads_the_files_once_and_the_same_key_signs_the_same_bytes() {
    let (env, private, _) = pushed();
    let first = env.ok(&["sign", "toy@1", "--key", &private, "--json"]);
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let total: u64 = walkdir::WalkDir::new(oms::fixture_model())
        .into_iter()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len())
        .sum();
    assert_eq!(first["digested_bytes"], total);
    assert_eq!(first["new"], true);
    let again = env.ok(&["sign", "toy@1", "--key", &private, "--json"]);
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["digested_bytes"], 0, "digests are remembered");
    assert_eq!(again["new"], false);
    assert_eq!(again["signature"], first["signature"]);
}

#[test]
fn bad_keys_and_unsignable_versions_are_refused_with_what_to_do() {
    let (env, _, public) = pushed();
    let wrong = env.snap(&["sign", "toy@1", "--key", &public]);
    assert!(wrong.starts_with("exit: 2"), "{wrong}");
    assert!(
        wrong.contains("it is a public key; signing needs the private key"),
        "{wrong}"
    );
    env.write("linked/a.txt", "a");
    std::os::unix::fs::symlink("a.txt", env.path("linked/b.txt")).unwrap();
    env.ok(&["push", "linked", "--model", "ln"]);
    let (private, _) = oms::test_keys();
    let link = env.snap(&["sign", "ln@1", "--key", &s(&private)]);
    insta::assert_snapshot!(link, @r#"
    exit: 1
    --- stdout
    --- stderr
    error: ln@1 holds the link b.txt: a model signature lists file contents only
    hint: push the folder with the link resolved (a copy of its target) to sign it
    "#);
    let unsigned = env.snap(&["pull", "ln@1", "--to", "out", "--signature"]);
    assert!(
        unsigned.contains("ln@1 has no signature to write"),
        "{unsigned}"
    );
    assert!(!env.path("out").exists(), "a refused pull writes nothing");
}

#[test]
fn signatures_travel_with_sync_and_a_forged_one_is_refused_by_name() {
    let (env, private, public) = pushed();
    env.ok(&["sign", "toy@1", "--key", &private]);
    let share = env.root().join("share");
    env.ok(&["init", &s(&share)]);
    env.ok(&["remote", "add", "share", &s(&share)]);
    let sent = env.ok_err(&["sync", "share"]);
    assert!(sent.contains("1 signature"), "{sent}");
    // Someone with write access to the share plants a signature whose bytes are not
    // what its name says, and another that is no signature at all.
    let dir = walkdir::WalkDir::new(share.join(".mreg/models/toy/signatures"))
        .min_depth(1)
        .max_depth(1)
        .into_iter()
        .next()
        .unwrap()
        .unwrap()
        .into_path();
    let garbage = b"{\"mediaType\": \"x\"}";
    let name = blake3::hash(garbage).to_hex().to_string();
    fs::write(dir.join(format!("{name}.sig")), garbage).unwrap();
    fs::write(dir.join(format!("{}.sig", "0".repeat(64))), "not its hash").unwrap();
    let fsck = env.run(&["--registry", &s(&share.join(".mreg")), "fsck"]);
    assert_eq!(fsck.status.code(), Some(1), "fsck names damaged signatures");
    let told = format!(
        "{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    assert_eq!(told.matches("not a model signature").count(), 2, "{told}");

    let b = TestEnv::new();
    let cloned = b.run(&["clone", &s(&share), "b"]);
    assert_eq!(
        cloned.status.code(),
        Some(1),
        "a clone that refused items says so"
    );
    let said = String::from_utf8_lossy(&cloned.stderr);
    assert!(said.contains("1 signature"), "{said}");
    assert!(
        said.contains("its bytes are not the ones its name is the hash of"),
        "{said}"
    );
    assert!(said.contains("its media type is not"), "{said}");
    let b_reg = s(&b.path("b/.mreg"));
    let out = b.snap(&["--registry", &b_reg, "verify", "toy@1", "--key", &public]);
    assert!(out.starts_with("exit: 0"), "{out}");
    assert!(out.contains("signed by key eee1a7c9c7c49e04"), "{out}");
    b.ok(&[
        "--registry",
        &b_reg,
        "pull",
        "toy@1",
        "--to",
        "out",
        "--signature",
    ]);
    assert!(stock_accepts(&b.path("out"), &public));
}

#[cfg(feature = "s3")]
#[test]
fn signatures_travel_through_a_bucket() {
    let (env, private, public) = pushed();
    let bucket = crate::common::s3::bucket();
    let url = format!("s3://{bucket}/reg");
    let port = crate::common::s3::server().port;
    env.use_s3(port);
    env.ok(&["--registry", &url, "init"]);
    env.ok(&["--registry", &url, "push", "model", "--model", "toy"]);
    env.ok(&["--registry", &url, "sign", "toy@1", "--key", &private]);
    let b = TestEnv::new();
    b.use_s3(port);
    b.ok(&["clone", &url, "b"]);
    let b_reg = s(&b.path("b/.mreg"));
    b.ok(&["--registry", &b_reg, "verify", "toy@1", "--key", &public]);
    b.ok(&["--registry", &url, "verify", "toy@1", "--key", &public]);
}
