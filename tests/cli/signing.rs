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
    assert!(
        out.contains("ok    toy@1 [") && out.contains("]: signed by key"),
        "{out}"
    );

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

    // The stock signature of the folder, against copies of it with a file renamed or
    // added: both verifiers refuse each.
    for (name, change) in [
        (
            "renamed",
            &(|d: &Path| fs::rename(d.join("sub.txt"), d.join("sub2.txt")).unwrap())
                as &dyn Fn(&Path),
        ),
        ("added", &|d: &Path| {
            fs::write(d.join("extra.txt"), "new\n").unwrap();
        }),
    ] {
        let copy = env.path(name);
        copy_tree(&oms::fixture_model(), &copy);
        change(&copy);
        let sig = s(&env.path("stock.sig"));
        let theirs = oms::run(
            env.root(),
            &[
                "verify",
                "key",
                &s(&copy),
                "--signature",
                &sig,
                "--public_key",
                &s(&public),
            ],
        );
        assert!(
            !theirs.status.success(),
            "the stock verifier took the {name} folder"
        );
        let ours = env.run(&[
            "verify",
            "--dir",
            name,
            "--signature",
            "stock.sig",
            "--key",
            &s(&public),
        ]);
        assert_eq!(ours.status.code(), Some(1), "mreg took the {name} folder");
    }
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
    FAIL  toy@1 [c5543687b0664ae2]: key 9f93ac5706e13b39: it was not made by a trusted key
    ok    toy@1 [d9a56d328322ae83]: signed by key eee1a7c9c7c49e04 (alice), 7 files match
    --- stderr
    "#);
    let json = env.ok(&["verify", "toy@1", "--key", &public, "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["verified"], true);
    assert_eq!(value["signatures"].as_array().unwrap().len(), 2);
    // Without a key named, the registry's own [signers] are the trusted keys.
    with_policy(&env);
    let own = env.ok(&["verify", "toy@1"]);
    assert!(own.contains("(alice), 7 files match"), "{own}");
    fs::write(
        env.registry().join("config.toml"),
        "format = 3\n[stages.production]\nreplaced_to = \"archived\"\n",
    )
    .unwrap();
    let nothing = env.snap(&["verify", "toy@1"]);
    insta::assert_snapshot!(nothing, @r#"
    exit: 2
    --- stdout
    --- stderr
    error: verify needs the keys to trust: --key PUB.pem or --signers FILE (or [signers] in the registry's config.toml)
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
fn bad_keys_and_unsigned_versions_are_refused_with_what_to_do() {
    let (env, _, public) = pushed();
    let wrong = env.snap(&["sign", "toy@1", "--key", &public]);
    assert!(wrong.starts_with("exit: 2"), "{wrong}");
    assert!(
        wrong.contains("it is a public key; signing needs the private key"),
        "{wrong}"
    );
    let unsigned = env.snap(&["pull", "toy@1", "--to", "out", "--signature"]);
    assert!(
        unsigned.contains("toy@1 has no signature to write"),
        "{unsigned}"
    );
    assert!(!env.path("out").exists(), "a refused pull writes nothing");
    env.write("top/model.sig", "not a signature");
    env.ok(&["push", "top", "--model", "top"]);
    let (private, _) = oms::test_keys();
    let taken = env.snap(&["sign", "top@1", "--key", &s(&private)]);
    assert!(taken.starts_with("exit: 1"), "{taken}");
    assert!(
        taken.contains("holds a file named model.sig at its top"),
        "{taken}"
    );
}

#[test]
fn a_link_to_a_file_is_signed_as_its_targets_content_as_the_stock_tool_signs_it() {
    let env = TestEnv::with_registry();
    let (private, public) = oms::test_keys();
    let (private, public) = (s(&private), s(&public));
    env.write("linked/model.safetensors", "weights");
    env.write("linked/tok/vocab.txt", "a b c");
    std::os::unix::fs::symlink("model.safetensors", env.path("linked/weights.safetensors"))
        .unwrap();
    std::os::unix::fs::symlink("tok", env.path("linked/tokenizer")).unwrap();
    env.ok(&["push", "linked", "--model", "ln"]);
    env.ok(&["sign", "ln@1", "--key", &private]);
    env.ok(&["pull", "ln@1", "--to", "out", "--signature"]);
    env.ok(&["verify", "--dir", "out", "--key", &public]);
    let out = env.path("out");
    let sig = s(&out.join("model.sig"));
    let stock = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "key",
            "out",
            "--signature",
            &sig,
            "--public_key",
            &public,
        ];
        args.extend_from_slice(extra);
        oms::run(env.path(".").as_path(), &args).status.success()
    };
    assert!(
        stock(&["--allow_symlinks"]),
        "the stock verifier refused the links"
    );
    assert!(
        !stock(&[]),
        "the stock verifier takes links only when told to"
    );
    // The reverse: the stock tool signs the folder, links and all; mreg takes it.
    let signed = oms::run(
        env.root(),
        &[
            "sign",
            "key",
            &s(&env.path("linked")),
            "--private_key",
            &private,
            "--signature",
            &s(&env.path("linked.sig")),
            "--allow_symlinks",
        ],
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    env.ok(&["sign", "ln@1", "--bundle", "linked.sig"]);
    let listed = env.ok(&["verify", "ln@1", "--key", &public]);
    assert_eq!(listed.matches("ok    ln@1").count(), 2, "{listed}");
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

/// Writes a config giving production a signing policy: signed by alice, and approved
/// by 2 of alice, bob and carol (whose keys are the fixtures' test, other and third
/// keys).
fn with_policy(env: &TestEnv) {
    policy_into(&env.registry().join("config.toml"));
}

/// Gives production the policy of [`with_policy`] in the config file `config`.
fn policy_into(config: &Path) {
    let dir = oms::fixture_model().with_file_name("");
    let pem = |name: &str| fs::read_to_string(dir.join(name)).unwrap();
    let text = fs::read_to_string(config).unwrap().replace(
        "[stages.production]\nreplaced_to = \"archived\"\n",
        "[stages.production]\nreplaced_to = \"archived\"\nrequire_signature = [\"alice\"]\n\
         approvals = 2\napprovers = [\"alice\", \"bob\", \"carol\"]\n",
    ) + &format!(
        "\n[signers]\nalice = \"\"\"\n{}\"\"\"\nbob = \"\"\"\n{}\"\"\"\ncarol = \"\"\"\n{}\"\"\"\n\n",
        pem("test-key.pub"),
        pem("other-key.pub"),
        pem("third-key.pub"),
    );
    fs::write(config, text).unwrap();
}

/// Returns [`pushed`]'s registry with [`with_policy`], `toy@1` signed by alice and
/// approved for production by alice and bob: what the policy asks.
fn signed_and_approved() -> TestEnv {
    let (env, _, _) = pushed();
    with_policy(&env);
    env.ok(&["sign", "toy@1", "--key", &key("test-key.pem")]);
    for approver in ["test-key.pem", "other-key.pem"] {
        env.ok(&["approve", "toy@1", "production", "--key", &key(approver)]);
    }
    env
}

fn key(name: &str) -> String {
    s(&oms::fixture_model().with_file_name(name))
}

#[test]
fn approvals_let_a_promotion_through_only_when_the_policy_holds() {
    let (env, _, _) = pushed();
    with_policy(&env);
    let approve = |stage: &str, file: &str, more: &[&str]| {
        let key = key(file);
        let mut args = vec!["approve", "toy@1", stage, "--key", &key];
        args.extend_from_slice(more);
        env.ok(&args);
    };
    let refused = env.snap(&["promote", "toy@1", "production"]);
    assert!(refused.starts_with("exit: 3"), "{refused}");
    assert!(refused.contains("no signature"), "{refused}");
    assert!(
        refused.contains("0 of 2 approvals for production"),
        "{refused}"
    );
    let gated = env.run(&["gate", "toy@1", "--stage", "production"]);
    assert_eq!(
        gated.status.code(),
        Some(3),
        "gate --stage checks the signing rules too"
    );
    let forced = env.snap(&["promote", "toy@1", "production", "--force", "--reason", "x"]);
    assert!(forced.starts_with("exit: 3"), "{forced}");
    assert!(forced.contains("--force does not override the stage's signing rules"));

    env.ok(&["sign", "toy@1", "--key", &key("test-key.pem")]);
    approve("production", "test-key.pem", &[]);
    // The same approver twice, an approval for another stage, and a key revoked
    // since: none of them is a second approval.
    approve("production", "test-key.pem", &["--comment", "again"]);
    let staged = env.ok_err(&[
        "approve",
        "toy@1",
        "staging",
        "--key",
        &key("other-key.pem"),
    ]);
    assert!(
        staged.contains("staging asks for no approvals"),
        "an approval no rule counts is said to be one: {staged}"
    );
    approve("production", "third-key.pem", &[]);
    revoke_carol(&env);
    let still = env.snap(&["promote", "toy@1", "production"]);
    assert!(still.starts_with("exit: 3"), "{still}");
    assert!(still.contains("1 of 2 approvals for production (alice); 1 more from bob"));
    assert!(still.contains("is for staging, not production"), "{still}");
    assert!(still.contains("an unknown or revoked key"), "{still}");

    approve("production", "other-key.pem", &[]);
    let shown = env.ok(&["show", "toy@1"]);
    assert!(
        shown.contains("# signed by 1 key (keys eee1a7c9c7c49e04;"),
        "{shown}"
    );
    assert!(
        shown.contains("# approved for production by 3 keys"),
        "{shown}"
    );
    assert!(shown.contains("# approved for staging by 1 key"), "{shown}");
    let signer = key("test-key.pem");
    let moved = env.ok_err(&["promote", "toy@1", "production", "--key", &signer]);
    assert!(
        moved.contains("Signed the move with key eee1a7c9c7c49e04"),
        "{moved}"
    );
    let history = env.ok(&["history", "toy", "--json"]);
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let newest = &history.as_array().unwrap()[0];
    assert_eq!(newest["signed_by"], serde_json::json!(["alice"]));
    let checks = newest["checks"].as_array().unwrap();
    let approvals = checks
        .iter()
        .find(|c| c["gate"] == "approvals >= 2")
        .unwrap();
    assert_eq!(
        approvals["actual"], "alice, bob",
        "the history says who approved"
    );
    let by_alice = |c: &serde_json::Value| c["gate"] == "signed by alice" && c["passed"] == true;
    assert!(checks.iter().any(by_alice));
    let table = env.ok(&["history", "toy"]);
    assert!(table.contains("signed: alice"), "{table}");
    // The model card says who vouched for the version, by the names this registry gives.
    let card = env.ok(&["card", "toy@1"]);
    let trust = card
        .split("## Signatures and approvals")
        .nth(1)
        .unwrap()
        .split("## ")
        .next()
        .unwrap();
    assert!(
        trust.contains("| OMS signature of the files | alice |"),
        "{trust}"
    );
    assert!(
        trust.contains("| approval for production | bob |"),
        "{trust}"
    );
    assert!(trust.contains("| again |"), "{trust}");
    assert!(
        trust.contains("| approval for production | a key this registry does not name ("),
        "carol was revoked: {trust}"
    );
}

/// Revokes carol's key: removed from [signers] and from production's approvers.
fn revoke_carol(env: &TestEnv) {
    let config = env.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    let carol_at = text.find("carol = ").unwrap();
    let carol_end = text[carol_at..].find("\"\"\"\n\n").unwrap() + carol_at + 4;
    let revoked = format!("{}{}", &text[..carol_at], &text[carol_end..]).replace(
        "approvers = [\"alice\", \"bob\", \"carol\"]",
        "approvers = [\"alice\", \"bob\"]",
    );
    fs::write(&config, revoked).unwrap();
}

#[test]
fn an_approval_is_of_one_tree_and_a_forged_one_is_refused() {
    let env = signed_and_approved();
    // A second version: the approvals of the first do not carry over, even copied
    // into its folder.
    fs::write(env.path("model/config.json"), "{\"v\": 2}\n").unwrap();
    env.ok(&["push", "model", "--model", "toy"]);
    env.ok(&["sign", "toy@2", "--key", &key("test-key.pem")]);
    let models = env.registry().join("models/toy/approvals");
    let mut trees: Vec<_> = fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(trees.len(), 1);
    let first = trees.pop().unwrap();
    let shown = env.ok(&["show", "toy@2", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let second_tree = shown["tree"].as_str().unwrap().to_owned();
    let second = models.join(&second_tree);
    fs::create_dir_all(&second).unwrap();
    for entry in fs::read_dir(&first).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), second.join(entry.file_name())).unwrap();
    }
    let replayed = env.snap(&["promote", "toy@2", "production"]);
    assert!(replayed.starts_with("exit: 3"), "{replayed}");
    assert!(replayed.contains("is for another version"), "{replayed}");
    // An approval whose bytes were altered no longer matches its name or signature.
    let name = fs::read_dir(&first)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = fs::read(&name).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    fs::write(&name, bytes).unwrap();
    let altered = env.snap(&["promote", "toy@1", "production"]);
    assert!(altered.starts_with("exit: 3"), "{altered}");
    assert!(altered.contains("is damaged"), "{altered}");
}

#[test]
fn approvals_travel_with_sync_and_count_on_the_other_side() {
    let env = signed_and_approved();
    let share = env.root().join("share");
    env.ok(&["init", &s(&share)]);
    policy_into(&share.join(".mreg/config.toml"));
    env.ok(&["remote", "add", "share", &s(&share)]);
    env.ok(&["sync", "share"]);
    let b = TestEnv::new();
    b.ok(&["clone", &s(&share), "b"]);
    let b_reg = s(&b.path("b/.mreg"));
    b.ok(&["--registry", &b_reg, "promote", "toy@1", "production"]);
    // The policy came with the clone: a version nobody approved stays out.
    b.write("next/weights.bin", "other weights");
    b.ok(&["--registry", &b_reg, "push", "next", "--model", "toy"]);
    let refused = b.run(&["--registry", &b_reg, "promote", "toy@2", "production"]);
    assert_eq!(refused.status.code(), Some(3));
}

#[test]
fn records_planted_in_bulk_on_a_remote_stop_at_a_cap_and_never_crowd_out_the_signers() {
    let (env, _, _) = pushed();
    with_policy(&env);
    revoke_carol(&env);
    env.ok(&["sign", "toy@1", "--key", &key("test-key.pem")]);
    let share = env.root().join("share");
    env.ok(&["init", &s(&share)]);
    env.ok(&["remote", "add", "share", &s(&share)]);
    env.ok(&["sync", "share"]);
    // Someone who can write to the share floods it with approvals by a key this
    // registry does not trust; alice approves there too.
    let b = TestEnv::new();
    b.ok(&["clone", &s(&share), "b"]);
    let b_reg = s(&b.path("b/.mreg"));
    let carol = key("third-key.pem");
    for i in 0..260 {
        let comment = format!("flood {i}");
        b.ok(&[
            "--registry",
            &b_reg,
            "approve",
            "toy@1",
            "production",
            "--key",
            &carol,
            "--comment",
            &comment,
        ]);
    }
    let alice = key("test-key.pem");
    b.ok(&[
        "--registry",
        &b_reg,
        "approve",
        "toy@1",
        "production",
        "--key",
        &alice,
    ]);
    b.ok(&["--registry", &b_reg, "sync"]);
    // A record filed under a tree no version has vouches for nothing, and stays there.
    let signed = fs::read_dir(share.join(".mreg/models/toy/signatures"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record = fs::read_dir(&signed).unwrap().next().unwrap().unwrap();
    let stray = share
        .join(".mreg/models/toy/signatures")
        .join("d".repeat(64));
    fs::create_dir_all(&stray).unwrap();
    fs::copy(record.path(), stray.join(record.file_name())).unwrap();

    let synced = env.run(&["sync", "share"]);
    assert_eq!(synced.status.code(), Some(1));
    let said = String::from_utf8_lossy(&synced.stderr);
    assert!(
        said.contains(
            "4 records there were left on the remote: none of this registry's [signers] signed them"
        ),
        "{said}"
    );
    let approvals = fs::read_dir(env.registry().join("models/toy/approvals"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(fs::read_dir(&approvals).unwrap().count(), 257);
    assert!(
        !env.registry()
            .join("models/toy/signatures")
            .join("d".repeat(64))
            .exists()
    );
    // Alice's approval came whatever its name; bob still approves here.
    env.ok(&[
        "approve",
        "toy@1",
        "production",
        "--key",
        &key("other-key.pem"),
    ]);
    env.ok(&["promote", "toy@1", "production"]);
}

#[cfg(feature = "s3")]
#[test]
fn approvals_count_on_a_bucket() {
    let env = TestEnv::with_registry();
    copy_tree(&oms::fixture_model(), &env.path("model"));
    let url = format!("s3://{}/reg", crate::common::s3::bucket());
    env.use_s3(crate::common::s3::server().port);
    // The bucket registry is made by a sync from a registry holding the policy, whose
    // config it takes.
    with_policy(&env);
    env.ok(&["remote", "add", "bucket", &url]);
    env.ok(&["sync", "bucket"]);
    env.ok(&["--registry", &url, "push", "model", "--model", "toy"]);
    let refused = env.run(&["--registry", &url, "promote", "toy@1", "production"]);
    assert_eq!(refused.status.code(), Some(3));
    env.ok(&[
        "--registry",
        &url,
        "sign",
        "toy@1",
        "--key",
        &key("test-key.pem"),
    ]);
    env.ok(&[
        "--registry",
        &url,
        "approve",
        "toy@1",
        "production",
        "--key",
        &key("test-key.pem"),
    ]);
    env.ok(&[
        "--registry",
        &url,
        "approve",
        "toy@1",
        "production",
        "--key",
        &key("other-key.pem"),
    ]);
    env.ok(&["--registry", &url, "promote", "toy@1", "production"]);
}

#[test]
fn what_the_attack_round_found_stays_fixed() {
    let (env, private, public) = pushed();
    env.ok(&["sign", "toy@1", "--key", &private]);
    // A signature made by the stock tool inside the folder, as its docs show: the
    // signature file is left out of the folder's files, as the stock verifier leaves
    // it out, and the git files its ignore_paths name are named as not covered.
    copy_tree(&oms::fixture_model(), &env.path("inside"));
    env.write("inside/.gitattributes", "* text=auto\n");
    let signed = oms::run(
        env.root(),
        &[
            "sign",
            "key",
            &s(&env.path("inside")),
            "--private_key",
            &private,
            "--signature",
            &s(&env.path("inside/model.sig")),
        ],
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    env.ok(&["verify", "--dir", "inside", "--key", &public]);
    fs::rename(env.path("inside/model.sig"), env.path("inside.sig")).unwrap();
    env.ok(&["push", "inside", "--model", "git"]);
    let stored = env.ok_err(&["sign", "git@1", "--bundle", "inside.sig"]);
    assert!(stored.contains("made elsewhere"), "{stored}");
    assert!(
        stored.contains("does not vouch for them: .gitattributes"),
        "{stored}"
    );
    let listed = env.ok(&["verify", "git@1", "--key", &public]);
    assert!(
        listed.contains("NOT covered by it: .gitattributes"),
        "{listed}"
    );

    // Two signatures by one key: a pull chooses one by its id.
    env.ok(&[
        "sign",
        "toy@1",
        "--bundle",
        &s(&oms::fixture_model().with_file_name("model_signing-1.1.1.sig")),
    ]);
    let both = env.run(&["pull", "toy@1", "--to", "two", "--signature", "eee1"]);
    assert_eq!(both.status.code(), Some(2));
    let said = String::from_utf8_lossy(&both.stderr);
    let id = said
        .split("its id (")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    env.ok(&["pull", "toy@1", "--to", "two", "--signature", &id]);
    assert!(stock_accepts(&env.path("two"), &public));

    // Hundreds of planted records past the cap do not hide the genuine signature.
    let dir = fs::read_dir(env.registry().join("models/toy/signatures"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // Each planted name sorts before every genuine one, so a reader that stopped at
    // the cap would never see them.
    let first = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .min()
        .unwrap();
    let (mut planted, mut i) = (0, 0u64);
    while planted < 300 {
        i += 1;
        let junk = format!("{{\"junk\": {i}}}");
        let name = format!("{}.sig", blake3::hash(junk.as_bytes()).to_hex());
        if name < first {
            fs::write(dir.join(name), junk).unwrap();
            planted += 1;
        }
    }
    let out = env.ok(&["verify", "toy@1", "--key", &public]);
    assert!(out.contains("ok    toy@1"), "{out}");

    // --signature belongs to --dir.
    let misplaced = env.run(&["verify", "toy@1", "--signature", "x.sig", "--key", &public]);
    assert_eq!(misplaced.status.code(), Some(2));
}

#[test]
fn a_stage_move_a_remote_brings_that_fails_the_rules_here_is_refused() {
    let (env, _, _) = pushed();
    with_policy(&env);
    let share = env.root().join("share");
    env.ok(&["init", &s(&share)]);
    env.ok(&["remote", "add", "share", &s(&share)]);
    env.run(&["sync", "share"]);
    // Someone who can only sync promotes on a share without the rules.
    let b = TestEnv::new();
    b.ok(&["clone", &s(&share), "b"]);
    let b_reg = s(&b.path("b/.mreg"));
    b.ok(&["--registry", &b_reg, "promote", "toy@1", "production"]);
    b.ok(&["--registry", &b_reg, "sync"]);
    let synced = env.run(&["sync", "share"]);
    assert_eq!(synced.status.code(), Some(1));
    let said = String::from_utf8_lossy(&synced.stderr);
    assert!(
        said.contains("which this registry's signing rules for production do not allow"),
        "{said}"
    );
    let listed = env.ok(&["ls", "toy", "--json"]);
    assert!(
        !listed.contains("\"production\""),
        "production moved here: {listed}"
    );
}

#[test]
fn the_rules_hold_around_promote_too() {
    let (env, _, _) = pushed();
    env.ok(&["promote", "toy@1", "production"]);
    fs::write(env.path("model/config.json"), "{\"v\": 2}\n").unwrap();
    env.ok(&["push", "model", "--model", "toy"]);
    env.ok(&["promote", "toy@2", "production"]);
    with_policy(&env);
    // A rollback to a version the rules do not allow is refused like a promotion.
    let back = env.snap(&["rollback", "toy", "production", "--reason", "x"]);
    assert!(back.starts_with("exit: 3"), "{back}");
    assert!(back.contains("signing rules do not hold"), "{back}");
    // A forced dry run answers as the forced promotion would.
    let dry = env.run(&[
        "promote",
        "toy@1",
        "production",
        "--force",
        "--reason",
        "x",
        "--dry-run",
    ]);
    assert_eq!(dry.status.code(), Some(3));
    // A signature that leaves files of the version out does not meet require_signature.
    copy_tree(&oms::fixture_model(), &env.path("git"));
    env.write("git/.gitignore", "*.tmp\n");
    env.ok(&["push", "git", "--model", "toy"]);
    env.ok(&["sign", "toy@3", "--bundle", &key("model_signing-1.1.1.sig")]);
    for file in ["other-key.pem", "third-key.pem"] {
        env.ok(&["approve", "toy@3", "production", "--key", &key(file)]);
    }
    let partial = env.snap(&["promote", "toy@3", "production"]);
    assert!(partial.starts_with("exit: 3"), "{partial}");
    assert!(
        partial.contains("leave files of the version out: .gitignore"),
        "{partial}"
    );
    // A private key pasted under [signers] is refused, naming it.
    let config = env.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    let leaked = fs::read_to_string(key("third-key.pem")).unwrap();
    fs::write(&config, format!("{text}dave = \"\"\"\n{leaked}\"\"\"\n")).unwrap();
    let refused = env.snap(&["promote", "toy@3", "production"]);
    assert!(
        refused.contains("the signer dave of config.toml is a private key"),
        "{refused}"
    );
}

#[test]
fn a_version_too_large_to_sign_is_refused_before_anything_is_written() {
    let env = TestEnv::with_registry();
    // Long names make each listed file some 450 bytes of the signature: 48,000 of them
    // pass the 16 MiB a signature may be.
    let long = "n".repeat(180);
    for d in 0..80 {
        let dir = env.path(&format!("many/d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..600 {
            fs::write(dir.join(format!("{long}{i:04}")), format!("{d} {i}")).unwrap();
        }
    }
    env.ok(&["push", "many", "--model", "many"]);
    let (private, _) = oms::test_keys();
    let refused = env.snap(&["sign", "many@1", "--key", &s(&private)]);
    assert!(refused.starts_with("exit: 1"), "{refused}");
    assert!(
        refused.contains("more than the 16777216 a signature may be"),
        "{refused}"
    );
    let dir = env.registry().join("models/many/signatures");
    assert!(
        !dir.exists() || fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing written"
    );
}
