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
    env.write("huge.toml", format!("# {}\n", "x".repeat(300 << 10)));
    // A pipe nobody writes to: reading it would wait forever.
    assert!(
        std::process::Command::new("mkfifo")
            .arg(env.path("fields.fifo"))
            .status()
            .unwrap()
            .success()
    );
    for (args, code, said) in [
        (vec!["--license", "Apache 2.0"], 2, "is not a license id"),
        (vec!["--owner", "a\u{1b}[31mred"], 2, "control character"),
        (vec!["--description", "   "], 2, "description is empty"),
        (vec!["--tag", "a", "--tag", "a"], 2, "twice"),
        (vec!["--file", "bad.toml"], 1, "unknown field `colour`"),
        (vec!["--file", "missing.toml"], 1, "missing.toml"),
        (vec!["--file", "."], 1, "not a regular file"),
        (vec!["--file", "fields.fifo"], 1, "not a regular file"),
        (
            vec!["--file", "huge.toml"],
            1,
            "longer than the 262144 bytes",
        ),
        (vec!["--tag", ""], 2, "no tag given"),
        (vec!["--tag", " , "], 2, "no tag given"),
        (vec!["--owner", "ann\u{202e}gpj.exe"], 2, "could not see"),
        (vec!["--tag", "a\u{ffff}"], 2, "could not see"),
        (vec!["--license=-mit"], 2, "is not a license id"),
        (vec![], 2, "no field to change"),
    ] {
        let mut full = vec!["model", "set", "churn"];
        full.extend(args.iter().copied());
        let out = env.run_within(&full, 60);
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
fn a_model_with_more_changes_than_it_keeps_folds_the_first_and_says_so() {
    let env = pushed();
    env.ok(&["model", "set", "churn", "--license", "mit"]);
    let info = env.registry().join("models/churn/info");
    let name = changes(&env.registry(), "churn")[0].clone();
    let body = fs::read(info.join(&name)).unwrap();
    // 1000 changes older than the one written (writers racing past the limit, or a
    // remote written by hand), each setting the owner.
    for i in 0..1000 {
        let planted = String::from_utf8(body.clone())
            .unwrap()
            .replace("license = \"mit\"", &format!("owner = \"o{i}\""));
        fs::write(info.join(format!("{i:020}-00000000.toml")), planted).unwrap();
    }
    // Readers fold the first 1000 by name and say what they left.
    let out = env.run(&["model", "show", "churn", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("churn has 1 changes of its fields past the first 1000"),
        "{err}"
    );
    let fields: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fields["owner"], "o999");
    assert!(fields.get("license").is_none(), "{fields}");
    assert_eq!(fields["changes"], 1000);
    assert_eq!(fields["refused"].as_array().unwrap().len(), 1);
    assert!(env.ok(&["show", "churn"]).contains("owner"));
    env.ok(&["card", "churn@1"]);
    // A writer refuses the change past the limit, and says what to do.
    let out = env.run(&["model", "set", "churn", "--owner", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the most a model keeps"));
    assert_eq!(changes(&env.registry(), "churn").len(), 1001);
}

/// A damaged change, a stray file, and a change dated far in the future (a machine
/// whose clock is wrong) are each left out with a warning naming them; the fields the
/// other changes set still read everywhere, and fsck names all three.
#[test]
fn a_bad_change_is_left_out_by_name_and_the_fields_still_read() {
    let env = pushed();
    env.ok(&["model", "set", "churn", "--license", "mit"]);
    let info = env.registry().join("models/churn/info");
    let name = changes(&env.registry(), "churn")[0].clone();
    let good = fs::read_to_string(info.join(&name)).unwrap();
    fs::write(
        info.join("00000000000000000001-aaaaaaaa.toml"),
        "format = 1\n[[",
    )
    .unwrap();
    fs::write(
        info.join("99999999999999999999-bbbbbbbb.toml"),
        good.replace("license = \"mit\"", "license = \"gpl-3.0\""),
    )
    .unwrap();
    fs::write(
        info.join("18000000000000000000-cccccccc.toml"),
        good.replace("license = \"mit\"", "license = \"gpl-3.0\""),
    )
    .unwrap();
    fs::write(
        info.join("zzz.toml"),
        good.replace("license = \"mit\"", "license = \"gpl-3.0\""),
    )
    .unwrap();
    let out = env.run(&["model", "show", "churn"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("license = \"mit\""));
    assert!(err.contains("00000000000000000001-aaaaaaaa.toml"), "{err}");
    assert!(
        err.contains(
            "18000000000000000000-cccccccc.toml of churn's fields is dated more than a day after"
        ),
        "{err}"
    );
    assert!(err.contains("mreg fsck"), "{err}");
    for args in [
        vec!["show", "churn"],
        vec!["card", "churn@1"],
        vec!["model", "log", "churn"],
        vec!["report", "churn", "--out", "r.html"],
        vec!["pull", "churn", "--to", "served", "--card"],
    ] {
        let out = env.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.contains("aaaaaaaa.toml"), "{args:?}: {err}");
    }
    assert!(
        fs::read_to_string(env.path("served/README.md"))
            .unwrap()
            .contains("license: \"mit\"")
    );
    let out = env.run(&["fsck"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for named in [
        "00000000000000000001-aaaaaaaa.toml",
        "18000000000000000000-cccccccc.toml",
        "99999999999999999999-bbbbbbbb.toml",
        "zzz.toml",
    ] {
        assert!(text.contains(named), "{named}: {text}");
    }
}

/// Texts keep their tabs and survive any escaping TOML needs: what `model show` prints
/// reads back through `--file -` unchanged, and the card holds the text as written.
#[test]
fn long_texts_keep_their_tabs_and_quotes_through_show_set_and_the_card() {
    let env = pushed();
    let quoted = "\"\\".repeat(16 << 10);
    env.ok(&[
        "model",
        "set",
        "churn",
        "--description",
        "a\ttabbed\n\tline",
        "--intended-use",
        &quoted,
        "--limitations",
        &quoted,
    ]);
    let shown = env.ok(&["model", "show", "churn"]);
    let fields: serde_json::Value =
        serde_json::from_str(&env.ok(&["model", "show", "churn", "--json"])).unwrap();
    assert_eq!(fields["description"], "a\ttabbed\n\tline");
    assert_eq!(fields["limitations"].as_str().unwrap().len(), 32 << 10);
    let out = env.run_with_stdin(&["model", "set", "churn", "--file", "-"], shown.as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    let card = env.ok(&["card", "churn@1"]);
    assert!(card.contains("a\ttabbed\n\tline"), "{card:.400}");
}

/// A remote whose `info` is a file, or a link to a folder elsewhere, has no changes of
/// the model's fields to give: the sync moves the rest and reads nothing through them.
#[test]
fn an_info_that_is_no_folder_on_a_remote_stops_no_sync() {
    for planted in ["file", "link"] {
        let a = pushed();
        let share = a.root().join("share").display().to_string();
        a.ok(&["remote", "add", "share", &share]);
        a.ok(&["sync"]);
        let info = std::path::Path::new(&share).join(".mreg/models/churn/info");
        if planted == "file" {
            fs::write(&info, "not a folder").unwrap();
        } else {
            let elsewhere = a.path("elsewhere");
            fs::create_dir(&elsewhere).unwrap();
            fs::write(elsewhere.join("00000000000000000001-aaaaaaaa.toml"), "x").unwrap();
            std::os::unix::fs::symlink(&elsewhere, &info).unwrap();
        }
        a.write("out/build.txt", "2");
        a.ok(&["push", "out", "--model", "churn"]);
        let out = a.run(&["sync"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{planted}: {err}");
        assert!(
            fs::read_dir(std::path::Path::new(&share).join(".mreg/models/churn/versions"))
                .unwrap()
                .count()
                == 2,
            "{planted}: the new version was sent: {err}"
        );
        a.ok(&["model", "set", "churn", "--license", "mit"]);
        a.ok(&["run", "--", "true"]);
        let out = a.run(&["sync"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{planted}: {err}");
        assert!(
            err.contains("refused models/churn/info/"),
            "{planted}: {err}"
        );
        assert!(err.contains("everything else synced"), "{planted}: {err}");
        let runs = std::path::Path::new(&share).join(".mreg/runs");
        assert_eq!(
            fs::read_dir(runs).unwrap().count(),
            3,
            "{planted}: the run was sent"
        );
        assert!(
            info.is_symlink() || info.is_file(),
            "{planted}: the planted entry stays as it was"
        );
    }
}
