//! `mreg model`: the fields a person writes about a model, kept with it, versioned,
//! synced, and read as untrusted input like every other record.

use std::fs;

use insta::assert_snapshot;

use crate::common::TestEnv;

/// Returns a registry holding churn@1.
fn pushed() -> TestEnv {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    env.ok(&["push", "out", "--model", "churn"]);
    env
}

/// Returns the names of the change files of a model's fields in a registry folder.
fn changes(registry: &std::path::Path, model: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(registry.join("models").join(model).join("info"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn fields_are_set_shown_logged_and_cleared_and_an_edit_that_changes_nothing_writes_nothing() {
    let env = pushed();
    assert_snapshot!(env.snap(&[
        "model", "set", "churn",
        "--license", "Apache-2.0",
        "--owner", "retention-ml@example.com",
        "--description", "Predicts which subscribers cancel.\r\nTrained monthly.",
        "--tag", "tabular, churn",
        "-m", "first card",
    ]), @r#"
    exit: 0
    --- stdout
    --- stderr
    Changed 4 fields of churn: description, license, owner, tags.
    "#);
    // The same values again: nothing is written.
    assert_snapshot!(env.snap(&["model", "set", "churn", "--license", "apache-2.0"]), @r#"
    exit: 0
    --- stdout
    --- stderr
    churn's fields already hold these values; nothing was written.
    "#);
    assert_eq!(changes(&env.registry(), "churn").len(), 1);
    env.ok(&[
        "model",
        "set",
        "churn",
        "--intended-use",
        "Ranking accounts for outreach.",
    ]);
    env.ok(&["model", "unset", "churn", "owner", "-m", "team renamed"]);
    assert_eq!(changes(&env.registry(), "churn").len(), 3);
    assert_snapshot!(env.snap(&["model", "show", "churn"]), @r#"
    exit: 0
    --- stdout
    # churn: 3 changes, the newest at 2026-01-01T00:05:00.000Z by tester@ci
    description = """
    Predicts which subscribers cancel.
    Trained monthly."""
    intended_use = "Ranking accounts for outreach."
    license = "apache-2.0"
    tags = ["tabular", "churn"]
    --- stderr
    "#);
    assert_snapshot!(env.snap(&["model", "log", "churn"]), @r#"
    exit: 0
    --- stdout
    2026-01-01T00:02:00.000Z by tester@ci: first card
      set description = "Predicts which subscribers cancel."… (51 characters)
      set license = "apache-2.0"
      set owner = "retention-ml@example.com"
      set tags = tabular, churn
    2026-01-01T00:04:00.000Z by tester@ci
      set intended_use = "Ranking accounts for outreach."
    2026-01-01T00:05:00.000Z by tester@ci: team renamed
      cleared owner
    --- stderr
    "#);
    let shown = env.ok(&["show", "churn"]);
    assert!(
        shown.starts_with(
            "# model churn\n#   description:\n#     Predicts which subscribers cancel.\n#     Trained monthly.\n#   intended use: Ranking accounts for outreach.\n#   license: apache-2.0\n#   tags: tabular, churn\n#   (3 changes, the newest at 2026-01-01T00:05:00.000Z by tester@ci: `mreg model log churn`)\n# newest version:\nformat = 2\n"
        ),
        "{shown}"
    );
    // A version named by number shows its record alone; JSON always carries the fields.
    assert!(env.ok(&["show", "churn@1"]).starts_with("format = 2\n"));
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["show", "churn@1", "--json"])).unwrap();
    assert_eq!(json["model_info"]["license"], "apache-2.0");
    assert_eq!(json["model_info"]["changes"], 3);
    assert!(json["model_info"].get("owner").is_none(), "{json}");
    // What `model show` prints is what `model set --file` reads: a round trip changes
    // nothing.
    env.write("fields.toml", env.ok(&["model", "show", "churn"]));
    let same = env.ok_err(&["model", "set", "churn", "--file", "fields.toml"]);
    assert!(same.contains("nothing was written"), "{same}");
    let log: serde_json::Value =
        serde_json::from_str(&env.ok(&["model", "log", "churn", "--json"])).unwrap();
    assert_eq!(log.as_array().unwrap().len(), 3);
    assert_eq!(log[2]["unset"], serde_json::json!(["owner"]));
    assert_eq!(log[0]["set"]["owner"], "retention-ml@example.com");
}

#[test]
fn bad_fields_are_usage_errors_that_name_the_field_and_write_nothing() {
    let env = pushed();
    env.write("bad.toml", "license = \"mit\"\ncolour = \"red\"\n");
    for (args, code, said) in [
        (vec!["--license", "Apache 2.0"], 2, "is not a license id"),
        (vec!["--owner", "a\u{1b}[31mred"], 2, "control character"),
        (vec!["--description", "   "], 2, "description is empty"),
        (vec!["--tag", "a", "--tag", "a"], 2, "twice"),
        (vec!["--file", "bad.toml"], 2, "unknown field `colour`"),
        (vec!["--file", "missing.toml"], 2, "missing.toml"),
        (vec![], 2, "no field to change"),
    ] {
        let mut full = vec!["model", "set", "churn"];
        full.extend(args.iter().copied());
        let out = env.run(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
    }
    let long = "x".repeat(40 << 10);
    let out = env.run(&["model", "set", "churn", "--limitations", &long]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("limitations is 40960 bytes long"));
    for (args, code, said) in [
        (
            vec!["model", "set", "churn@1", "--license", "mit"],
            2,
            "names a version",
        ),
        (
            vec!["model", "set", "fraud", "--license", "mit"],
            1,
            "no model named fraud",
        ),
        (
            vec!["model", "unset", "churn", "colour"],
            2,
            "\"colour\" is not a field",
        ),
        (vec!["model", "show", "fraud"], 1, "no model named fraud"),
    ] {
        let out = env.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
    }
    assert!(changes(&env.registry(), "churn").is_empty());
    assert!(!env.registry().join("models/fraud").exists());
}

#[test]
fn fields_edited_in_two_registries_meet_through_sync_and_agree() {
    let a = pushed();
    let share = a.root().join("share").display().to_string();
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["sync"]);
    let b = TestEnv::new();
    b.ok(&["clone", &share, "b"]);
    let b_reg = b.path("b/.mreg").display().to_string();
    // Different fields on each side, and the same field on both: both edits of
    // different fields stay, and of the same field the later one wins, on both sides.
    a.ok(&[
        "model",
        "set",
        "churn",
        "--license",
        "mit",
        "--owner",
        "alice",
    ]);
    b.ok(&[
        "--registry",
        &b_reg,
        "model",
        "set",
        "churn",
        "--owner",
        "bob",
        "--tag",
        "tabular",
    ]);
    let said = a.ok_err(&["sync"]);
    assert!(said.contains("Sent to share"), "{said}");
    b.ok(&["--registry", &b_reg, "sync"]);
    a.ok(&["sync"]);
    let shown_a = a.ok(&["model", "show", "churn", "--json"]);
    let shown_b = b.ok(&["--registry", &b_reg, "model", "show", "churn", "--json"]);
    assert_eq!(shown_a, shown_b);
    let fields: serde_json::Value = serde_json::from_str(&shown_a).unwrap();
    assert_eq!(fields["license"], "mit");
    assert_eq!(fields["owner"], "bob");
    assert_eq!(fields["tags"], serde_json::json!(["tabular"]));
    assert_eq!(fields["changes"], 2);
    // Nothing left to move: a second sync is a no-op.
    let again = a.ok_err(&["sync"]);
    assert!(again.contains("nothing to do"), "{again}");
}

#[test]
fn a_hostile_change_on_a_remote_is_refused_by_name_and_the_rest_syncs() {
    let a = pushed();
    let share = a.root().join("share").display().to_string();
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["model", "set", "churn", "--license", "mit"]);
    a.ok(&["sync"]);
    let shared = std::path::Path::new(&share).join(".mreg");
    let info = shared.join("models/churn/info");
    let good = fs::read_to_string(info.join(&changes(&shared, "churn")[0])).unwrap();
    // Another model's change, and one carrying a terminal escape, planted on the share.
    fs::write(
        info.join("00000000000000000001-aaaaaaaa.toml"),
        good.replace("model = \"churn\"", "model = \"fraud\""),
    )
    .unwrap();
    fs::write(
        info.join("00000000000000000002-bbbbbbbb.toml"),
        good.replace("license = \"mit\"", "owner = \"\\u001b]0;pwned\\u0007\""),
    )
    .unwrap();
    let b = TestEnv::new();
    let out = b.run(&["clone", &share, "b"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("00000000000000000001-aaaaaaaa.toml"), "{err}");
    assert!(err.contains("says it is a change of model fraud"), "{err}");
    assert!(err.contains("00000000000000000002-bbbbbbbb.toml"), "{err}");
    assert!(err.contains("control character"), "{err}");
    let b_reg = b.path("b/.mreg");
    // The good change came; the refused ones did not.
    assert_eq!(changes(&b_reg, "churn").len(), 1);
    let b_reg = b_reg.display().to_string();
    let fields: serde_json::Value =
        serde_json::from_str(&b.ok(&["--registry", &b_reg, "model", "show", "churn", "--json"]))
            .unwrap();
    assert_eq!(fields["license"], "mit");
    // fsck of the share names both files.
    let out = a.run(&["--registry", &share, "fsck"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("00000000000000000001-aaaaaaaa.toml"),
        "{text}"
    );
    assert!(
        text.contains("00000000000000000002-bbbbbbbb.toml"),
        "{text}"
    );
}

#[test]
fn a_model_with_more_changes_than_it_keeps_is_refused_not_read() {
    let env = pushed();
    env.ok(&["model", "set", "churn", "--license", "mit"]);
    let info = env.registry().join("models/churn/info");
    let name = changes(&env.registry(), "churn")[0].clone();
    let body = fs::read(info.join(&name)).unwrap();
    for i in 0..1000 {
        fs::write(info.join(format!("{i:020}-00000000.toml")), &body).unwrap();
    }
    let out = env.run(&["model", "show", "churn"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("more than 1000 changes of churn's fields"),
        "{err}"
    );
    // The version itself still shows, saying why the fields do not.
    let shown = env.ok(&["show", "churn"]);
    assert!(
        shown.starts_with("# model churn: its fields cannot be read: "),
        "{shown}"
    );
    assert!(
        env.ok(&["show", "churn@1", "--json"])
            .contains("model_info_error")
    );
    let out = env.run(&["card", "churn@1"]);
    assert_eq!(out.status.code(), Some(1));
}
