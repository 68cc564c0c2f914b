//! `rm`, `gc` and `du`: removal recorded and respected everywhere, garbage collected
//! without touching what anything still names, removals carried by sync, and gc safe
//! against concurrent writers and kills.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use insta::assert_snapshot;

use crate::common::{Template, TestEnv, churn, shared_with_a_clone, snapshot_files};

/// Returns a registry holding `churn@1` to `@3`: each a `config.json` shared by all
/// and a `w.bin` of its own.
fn three_versions() -> TestEnv {
    let env = TestEnv::with_registry();
    env.write("out/config.json", "{\"layers\": 2}\n");
    for i in 1..=3 {
        env.write("out/w.bin", format!("weights of version {i}\n").repeat(40));
        env.ok(&["push", "out", "--model", "churn"]);
    }
    env
}

/// Returns the object files of a registry, as relative paths.
fn objects(registry: &Path) -> Vec<String> {
    crate::common::listing(&registry.join("objects"))
        .into_iter()
        .filter(|line| !line.starts_with("dir "))
        .collect()
}

#[test]
fn a_removed_version_no_longer_lists_resolves_or_pulls_and_says_who_removed_it() {
    let env = three_versions();
    assert_snapshot!(env.snap(&["rm", "churn@2", "--reason", "trained on leaked labels"]), @r"
    exit: 0
    --- stdout
    --- stderr
    Removed churn@2.
    `mreg gc` frees the files no surviving version or run holds.
    ");
    assert_snapshot!(env.snap(&["ls", "churn"]), @r"
    exit: 0
    --- stdout
    VERSION  STAGES  TREE          FILES  SIZE   CREATED               BY         MESSAGE
    churn@3  -       707aa53e5c92  2      854 B  2026-01-01T00:03:00Z  tester@ci
    churn@1  -       5ae7c8bf408f  2      854 B  2026-01-01T00:01:00Z  tester@ci
    --- stderr
    Not listed, as they were removed: churn@2. `mreg show churn@N` says when and by whom.
    ");
    assert_snapshot!(env.snap(&["show", "churn@2"]), @r#"
    exit: 0
    --- stdout
    # removed at 2026-01-01T00:04:00Z by tester@ci: trained on leaked labels
    # it no longer pulls; `mreg gc` frees what no other version or run holds
    format = 2
    model = "churn"
    version = 2
    tree = "483e0974a127463af1235ca0cc77c412d985f7a2f67da3f520285663a9566e17"
    files = 2
    bytes = 854
    created = "2026-01-01T00:02:00Z"
    actor = "tester@ci"
    run = "8562c9ece8b61bac"
    nonce = "f65cf66e774d12e5"
    --- stderr
    "#);
    assert_snapshot!(env.snap(&["pull", "churn@2", "--to", "got"]), @r"
    exit: 1
    --- stdout
    --- stderr
    error: churn@2 was removed at 2026-01-01T00:04:00Z by tester@ci: trained on leaked labels
    hint: `mreg show churn@2` shows what it was; `mreg ls churn` lists the versions there are
    ");
    assert!(!env.path("got").exists());
    assert_snapshot!(env.snap(&["promote", "churn@2", "staging"]), @r"
    exit: 1
    --- stdout
    --- stderr
    error: churn@2 was removed at 2026-01-01T00:04:00Z by tester@ci: trained on leaked labels
    hint: `mreg show churn@2` shows what it was; `mreg ls churn` lists the versions there are
    ");
    assert_snapshot!(env.snap(&["history", "churn"]), @r"
    exit: 0
    --- stdout
    #  TIME                  ACTION  MOVES            GATES  BY         REASON
    -  2026-01-01T00:04:00Z  remove  churn@2 removed  -      tester@ci  trained on leaked labels
    --- stderr
    ");
    // Removing it again is no error, and writes nothing.
    let before = snapshot_files(&env.registry());
    assert_snapshot!(env.snap(&["rm", "churn@2"]), @r"
    exit: 0
    --- stdout
    --- stderr
    churn@2 was removed before; nothing to do.
    ");
    assert_eq!(snapshot_files(&env.registry()), before);
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["show", "churn@2", "--json"])).unwrap();
    assert_eq!(json["removed"]["actor"], "tester@ci");
    assert_eq!(json["removed"]["reason"], "trained on leaked labels");
    // The others are untouched.
    env.ok(&["pull", "churn@3", "--to", "three"]);
    env.ok(&["pull", "churn@1", "--to", "one"]);
}

#[test]
fn a_version_a_stage_holds_is_refused_unless_forced_and_the_stage_is_emptied_in_the_move() {
    let env = three_versions();
    env.ok(&[
        "promote",
        "churn@3",
        "production",
        "--force",
        "--reason",
        "first",
    ]);
    let before = snapshot_files(&env.registry());
    assert_snapshot!(env.snap(&["rm", "churn@3"]), @r"
    exit: 1
    --- stdout
    --- stderr
    error: production holds churn@3, so nothing was removed
    hint: promote another version first, or add --force --reason TEXT to empty that stage in the same recorded move
    ");
    assert_snapshot!(env.snap(&["rm", "churn@3", "--force"]), @r"
    exit: 2
    --- stdout
    --- stderr
    error: --force needs --reason TEXT: the reason is recorded
    hint: say why a stage may lose its version, e.g. --reason 'trained on leaked data'
    ");
    assert_eq!(
        snapshot_files(&env.registry()),
        before,
        "a refusal wrote something"
    );
    assert_snapshot!(env.snap(&["rm", "churn@production", "--force", "--reason", "bad data", "--json"]), @r#"
    exit: 0
    --- stdout
    {
      "result": "removed",
      "removed": [
        {
          "model": "churn",
          "version": 3,
          "tree": "707aa53e5c927f919e4f96e7b9d3197cea4f2350d8102efc407c9f46ae523ed1",
          "bytes": 854,
          "emptied": [
            "production"
          ],
          "run": "8a9d06422a681749"
        }
      ],
      "already_removed": [],
      "models": [
        {
          "model": "churn",
          "state": "b02c4c32d39d647fc3f7123a02dde2cc4b2defb8d533e3a6e41c66a59cbd9b04",
          "number": 2,
          "retries": 0
        }
      ],
      "runs": [],
      "kept_runs": []
    }
    --- stderr
    Removed churn@3, emptying production.
    `mreg gc` frees the files no surviving version or run holds.
    "#);
    assert_snapshot!(env.snap(&["pull", "churn@production", "--to", "got"]), @r"
    exit: 1
    --- stdout
    --- stderr
    error: production of churn holds no version
    hint: promote one: mreg promote churn@N production; `mreg history churn` shows past moves
    ");
    assert_snapshot!(env.snap(&["history", "churn", "--stage", "production"]), @r"
    exit: 0
    --- stdout
    #  TIME                  ACTION           MOVES               GATES  BY         REASON
    2  2026-01-01T00:07:00Z  remove (forced)  churn@3 removed     -      tester@ci  bad data
                                              production: 3 -> -
    1  2026-01-01T00:04:00Z  promote          production: - -> 3  -      tester@ci  first
    --- stderr
    ");
    // `latest` now names the newest surviving version.
    assert!(env.ok(&["show", "churn@latest"]).contains("version = 2"));
    env.ok(&["fsck"]);
}

#[test]
fn numbers_are_never_given_again_and_the_same_content_pushed_again_is_a_new_version() {
    let env = three_versions();
    env.ok(&["rm", "churn@3", "churn@2"]);
    // The removed churn@3's content, pushed again.
    assert_eq!(
        env.ok(&["push", "out", "--model", "churn", "-q"]).trim(),
        "churn@4"
    );
    env.write("out/w.bin", "new weights\n");
    assert_eq!(
        env.ok(&["push", "out", "--model", "churn", "-q"]).trim(),
        "churn@5"
    );
    env.ok(&["rm", "--model", "churn"]);
    assert_snapshot!(env.snap(&["pull", "churn@latest", "--to", "got"]), @r"
    exit: 1
    --- stdout
    --- stderr
    error: churn has no version left: every one of them was removed
    hint: `mreg history churn` shows the removals; push a new version to use the model again
    ");
    assert_eq!(
        env.ok(&["push", "out", "--model", "churn", "-q"]).trim(),
        "churn@6"
    );
}

#[test]
fn gc_frees_what_only_removed_versions_held_and_every_survivor_still_pulls() {
    let env = three_versions();
    let reg = env.registry();
    env.ok(&["pull", "churn@3", "--to", "three-before"]);
    assert_snapshot!(env.snap(&["gc", "--dry-run"]), @r#"
    exit: 0
    --- stdout
    KIND              COUNT  SIZE
    removed-versions  0      0 B
    removed-runs      0      0 B
    unreferenced      0      0 B
    temp-files        0      0 B
    --- stderr
    Dry run: gc would free 0 B; 7 objects (559 B) are kept. Nothing was deleted.
    "#);
    env.ok(&["rm", "churn@1", "churn@3"]);
    assert_snapshot!(env.snap(&["du"]), @r#"
    exit: 0
    --- stdout
    NAME        VERSIONS  OBJECTS  SIZE   UNIQUE
    churn       1         3        195 B  195 B
    (runs)      -         0        0 B    0 B
    (shared)    -         0        0 B    -
    (gc frees)  -         4        364 B  -
    (stored)    -         7        559 B  -
    --- stderr
    "#);
    let before = objects(&reg);
    assert_snapshot!(env.snap(&["gc", "--dry-run", "--json"]), @r#"
    exit: 0
    --- stdout
    {
      "result": "would-collect",
      "kinds": [
        {
          "kind": "removed-versions",
          "count": 4,
          "bytes": 364
        },
        {
          "kind": "removed-runs",
          "count": 0,
          "bytes": 0
        },
        {
          "kind": "unreferenced",
          "count": 0,
          "bytes": 0
        },
        {
          "kind": "temp-files",
          "count": 0,
          "bytes": 0
        }
      ],
      "freed_bytes": 364,
      "kept": {
        "count": 3,
        "bytes": 195
      },
      "records": 11,
      "finished_removals": [],
      "policy": null
    }
    --- stderr
    Dry run: gc would free 364 B; 3 objects (195 B) are kept. Nothing was deleted.
    "#);
    assert_eq!(objects(&reg), before, "a dry run deleted something");
    assert_snapshot!(env.snap(&["gc"]), @r#"
    exit: 0
    --- stdout
    KIND              COUNT  SIZE
    removed-versions  4      364 B
    removed-runs      0      0 B
    unreferenced      0      0 B
    temp-files        0      0 B
    --- stderr
    Freed 364 B; 3 objects (195 B) are kept.
    "#);
    // The shared config stays with churn@2; each removed version's own weights and
    // tree went.
    assert_eq!(objects(&reg).len(), before.len() - 4);
    assert_snapshot!(env.snap(&["fsck"]), @r"
    exit: 0
    --- stdout
    --- stderr
    Checked 3 objects (1.01 KiB) and 8 manifests: all good.
    ");
    env.ok(&["pull", "churn@2", "--to", "two"]);
    assert_eq!(
        fs::read(env.path("two/w.bin")).unwrap(),
        "weights of version 2\n".repeat(40).into_bytes()
    );
    let again: serde_json::Value = serde_json::from_str(&env.ok(&["gc", "--json"])).unwrap();
    assert_eq!(again["freed_bytes"], 0, "a second gc found more: {again}");
    // A removed version's record still shows, though its files are gone.
    assert!(env.ok(&["show", "churn@3"]).contains("# removed at"));
    assert_snapshot!(env.snap(&["show", "churn@3", "--files"]), @r"
    exit: 1
    --- stdout
    --- stderr
    error: churn@3 was removed at 2026-01-01T00:06:00Z by tester@ci
    hint: `mreg show churn@3` shows what it was; `mreg ls churn` lists the versions there are
    ");
}

#[test]
fn gc_keeps_what_runs_name_and_deletes_nothing_when_a_record_does_not_read() {
    let env = three_versions();
    env.write("data/train.csv", "a,b\n1,2\n".repeat(100));
    env.ok(&[
        "run",
        "--experiment",
        "e",
        "--store-data",
        "--data",
        "data/train.csv",
        "--",
        "true",
    ]);
    env.ok(&["rm", "--model", "churn"]);
    let reg = env.registry();
    // A version record that does not parse: gc cannot know what it names.
    let record = reg.join("models/churn/versions/2.toml");
    let good = fs::read(&record).unwrap();
    fs::set_permissions(&record, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&record, "format = 2\nmodel = \"churn\"\n").unwrap();
    let before = objects(&reg);
    let out = env.run(&["gc"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("versions/2.toml"), "{stderr}");
    assert_eq!(
        objects(&reg),
        before,
        "gc deleted something it could not vouch for"
    );
    fs::write(&record, good).unwrap();
    env.ok(&["gc"]);
    // The data the run stored is kept; the versions' files went.
    let left = objects(&reg);
    assert_eq!(left.len(), 1, "{left:?}");
    env.ok(&["fsck"]);
}

/// Appends `text` to the registry's `config.toml`.
fn configure(env: &TestEnv, text: &str) {
    let path = env.registry().join("config.toml");
    let mut config = fs::read_to_string(&path).unwrap();
    config.push_str(text);
    fs::write(&path, config).unwrap();
}

#[test]
fn the_retention_policy_removes_what_no_rule_keeps_and_gc_policy_collects_it() {
    let env = three_versions();
    for i in 4..=5 {
        env.write("out/w.bin", format!("weights of version {i}\n").repeat(40));
        env.ok(&["push", "out", "--model", "churn"]);
    }
    env.write("fraud/w.bin", "fraud weights\n");
    env.ok(&["push", "fraud", "--model", "fraud"]);
    env.write("fraud/w.bin", "fraud weights 2\n");
    env.ok(&["push", "fraud", "--model", "fraud"]);
    env.ok(&["promote", "churn@1", "production"]);
    assert_snapshot!(env.snap(&["rm", "--policy"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: config.toml has no [retention] table, so --policy has nothing to apply; nothing was removed
    hint: add one, e.g. [retention] keep_last = 10 and keep_within = "30d" (docs/lifecycle.md)
    "#);
    configure(
        &env,
        "\n[retention]\nkeep_last = 2\nremove_runs = true\n[retention.models.fraud]\nkeep_all = true\n",
    );
    let before = snapshot_files(&env.registry());
    assert_snapshot!(env.snap(&["rm", "--policy", "--dry-run"]), @r#"
    exit: 0
    --- stdout
    --- stderr
    Would remove churn@2.
    Would remove churn@3.
    Would remove run 8562c9ece8b61bac (experiment churn).
    Would remove run 8a9d06422a681749 (experiment churn).
    Dry run: nothing was written.
    "#);
    let dry: serde_json::Value =
        serde_json::from_str(&env.ok(&["gc", "--policy", "--dry-run", "--json"])).unwrap();
    assert_eq!(dry["policy"]["result"], "would-remove", "{dry}");
    assert_eq!(
        dry["kinds"][0]["count"], 4,
        "the two versions' trees and weights: {dry}"
    );
    assert_eq!(
        dry["kinds"][1]["count"], 0,
        "their runs stored nothing: {dry}"
    );
    assert_eq!(
        snapshot_files(&env.registry()),
        before,
        "a dry run wrote something"
    );
    assert_snapshot!(env.snap(&["gc", "--policy"]), @r#"
    exit: 0
    --- stdout
    KIND              COUNT  SIZE
    removed-versions  4      363 B
    removed-runs      0      0 B
    unreferenced      0      0 B
    temp-files        0      0 B
    --- stderr
    Removed churn@2.
    Removed churn@3.
    Removed run 8562c9ece8b61bac (experiment churn).
    Removed run 8a9d06422a681749 (experiment churn).
    Freed 363 B; 11 objects (769 B) are kept.
    "#);
    let history: serde_json::Value =
        serde_json::from_str(&env.ok(&["history", "churn", "--json"])).unwrap();
    assert_eq!(
        history[0]["reason"], "retention policy (keep_last = 2)",
        "{history}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["ls", "churn", "--json"])).unwrap();
    let numbers: Vec<u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 4, 5]);
    // Applied again, the policy finds nothing more to remove.
    let again: serde_json::Value =
        serde_json::from_str(&env.ok(&["rm", "--policy", "--json"])).unwrap();
    assert_eq!(again["result"], "unchanged", "{again}");
    env.ok(&["fsck"]);
    // A policy that would keep nothing is refused when the config is read.
    configure(&env, "[retention.models.churn]\nremove_runs = true\n");
    let out = env.run(&["rm", "--policy"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("[retention.models.churn] keeps nothing"),
        "{said}"
    );
}

#[test]
fn rm_goes_by_what_is_said_and_a_registry_with_nothing_left_says_so() {
    let env = three_versions();
    assert_snapshot!(env.snap(&["rm", "churn"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: "churn" names a model, not a version: rm takes NAME@N, NAME@STAGE or NAME@latest
    hint: mreg rm churn@latest removes its newest version; mreg rm --model churn removes every version
    "#);
    assert_snapshot!(env.snap(&["rm", "deadbeef"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: "deadbeef" names no model and no run
    hint: `mreg ls` lists the models and `mreg runs` the runs (ids are hex, 4 or more digits name one)
    "#);
    env.ok(&["rm", "--model", "churn"]);
    assert_snapshot!(env.snap(&["ls"]), @r#"
    exit: 0
    --- stdout
    --- stderr
    No model has a version left: every version of churn was removed. `mreg ls NAME` names them; `mreg push DIR --model NAME` records a new one.
    "#);
    assert_snapshot!(env.snap(&["rm", "churn@latest"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: churn has no version left: every one of them was removed
    hint: `mreg history churn` shows the removals; push a new version to use the model again
    "#);
}

/// Returns the ids of the runs `mreg runs` lists, oldest first.
fn listed_runs(env: &TestEnv, registry: Option<&str>) -> Vec<String> {
    let mut args = vec!["runs", "--json", "--sort", "start"];
    if let Some(reg) = registry {
        args.extend(["--registry", reg]);
    }
    let listed: serde_json::Value = serde_json::from_str(&env.ok(&args)).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Returns a registry with two runs that stored their data: the first made `churn@1`,
/// the second made nothing. Returns their ids too.
fn two_runs() -> (TestEnv, String, String) {
    let env = TestEnv::with_registry();
    for (i, data) in ["a,b\n1,2\n", "a,b\n3,4\n"].iter().enumerate() {
        env.write("data/train.csv", data.repeat(100));
        env.ok(&[
            "run",
            "--experiment",
            &format!("e{i}"),
            "--store-data",
            "--data",
            "data/train.csv",
            "--",
            "true",
        ]);
    }
    let ids = listed_runs(&env, None);
    env.write("out/w.bin", "weights\n".repeat(40));
    env.ok(&["push", "out", "--model", "churn", "--run", &ids[0]]);
    (env, ids[0].clone(), ids[1].clone())
}

#[test]
fn a_removed_run_no_longer_lists_compares_or_logs_and_gc_frees_what_it_stored() {
    let (env, made_churn, idle) = two_runs();
    // A run a surviving version came from is that version's evidence: refused.
    let before = snapshot_files(&env.registry().join("runs"));
    let out = env.run(&["rm", &made_churn[..8], &idle]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("churn@1 came from run {made_churn}")),
        "{said}"
    );
    assert_eq!(
        snapshot_files(&env.registry().join("runs")),
        before,
        "nothing written"
    );
    let said = env.ok_err(&["rm", &idle, "--reason", "abandoned sweep"]);
    assert!(
        said.contains(&format!("Removed run {idle} (experiment e1).")),
        "{said}"
    );
    let out = env.run(&["runs"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Not listed, as they were removed: 1 run."),
        "{out:?}"
    );
    assert_eq!(listed_runs(&env, None), std::slice::from_ref(&made_churn));
    let shown: serde_json::Value =
        serde_json::from_str(&env.ok(&["show", &idle, "--json"])).unwrap();
    assert_eq!(shown["removed"]["reason"], "abandoned sweep", "{shown}");
    assert!(env.ok(&["show", &idle]).starts_with("# removed at "));
    for refused in [
        vec!["log", "--run", idle.as_str(), "--metric", "acc=1"],
        vec!["diff", idle.as_str(), made_churn.as_str()],
    ] {
        let out = env.run(&refused);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{refused:?}: {said}");
        assert!(
            said.contains(&format!("run {idle} was removed at")),
            "{said}"
        );
    }
    // --runs takes the run of each version removed; again, nothing is left to do.
    let out: serde_json::Value =
        serde_json::from_str(&env.ok(&["rm", "churn@1", "--runs", "--json"])).unwrap();
    assert_eq!(out["runs"][0]["run"], made_churn.as_str(), "{out}");
    assert_eq!(out["kept_runs"], serde_json::json!([]), "{out}");
    let again: serde_json::Value =
        serde_json::from_str(&env.ok(&["rm", "churn@1", "--runs", "--json"])).unwrap();
    assert_eq!(again["result"], "unchanged", "{again}");
    assert!(listed_runs(&env, None).is_empty());
    // gc frees the data both runs stored, as removed-runs.
    let gc: serde_json::Value = serde_json::from_str(&env.ok(&["gc", "--json"])).unwrap();
    assert_eq!(gc["kinds"][1]["kind"], "removed-runs", "{gc}");
    assert_eq!(gc["kinds"][1]["count"], 2, "{gc}");
    assert_eq!(gc["kept"]["count"], 0, "{gc}");
    assert!(objects(&env.registry()).is_empty());
    env.ok(&["fsck"]);
}

#[test]
fn rm_runs_keeps_a_run_another_surviving_version_came_from() {
    let (env, made_churn, _) = two_runs();
    env.write("out/w.bin", "other weights\n".repeat(40));
    env.ok(&["push", "out", "--model", "fraud", "--run", &made_churn]);
    assert_snapshot!(env.snap(&["rm", "churn@1", "--runs"]).replace(&made_churn, "[RUN]"), @r"
    exit: 0
    --- stdout
    --- stderr
    Removed churn@1.
    Kept run [RUN]: fraud@1 came from it.
    `mreg gc` frees the files no surviving version or run holds.
    ");
    assert_eq!(listed_runs(&env, None).len(), 2);
}

#[test]
fn a_run_removal_travels_through_sync_both_ways() {
    let (a, _, idle) = two_runs();
    let share = a.root().join("share").display().to_string();
    a.ok(&["init", &share]);
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["rm", &idle]);
    let said = a.ok_err(&["sync"]);
    assert!(said.contains("1 removal"), "{said}");
    let b = TestEnv::new();
    b.ok(&["clone", &share, "b"]);
    let b_reg = b.path("b/.mreg").display().to_string();
    assert_eq!(listed_runs(&b, Some(&b_reg)).len(), 1);
    b.ok(&["--registry", &b_reg, "rm", "churn@1", "--runs"]);
    b.ok(&["--registry", &b_reg, "sync"]);
    a.ok(&["sync"]);
    assert!(listed_runs(&a, None).is_empty());
    // A forged removal naming another run is refused by name.
    let forged = a
        .root()
        .join("share/.mreg/runs")
        .join(&idle)
        .join("removed.toml");
    let text = fs::read_to_string(&forged).unwrap();
    let other = listed_runs(&b, Some(&b_reg));
    assert!(other.is_empty());
    fs::set_permissions(&forged, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&forged, text.replace(&idle, "0123456789abcdef")).unwrap();
    let c = TestEnv::new();
    let out = c.run(&["clone", &share, "c"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("removed.toml"), "{said}");
}

#[test]
fn removals_travel_through_sync_both_ways_and_a_clone_after_gc_is_whole() {
    let a = three_versions();
    let (share, b, b_reg) = shared_with_a_clone(&a);
    a.ok(&["rm", "churn@1", "--reason", "obsolete"]);
    assert_snapshot!(a.snap(&["sync"]), @r"
    exit: 0
    --- stdout
    --- stderr
    Sent to share: 0 objects, 0 B, 0 versions, 1 removal, 0 runs, 0 records, 0 stage pointers.
    ");
    b.ok(&["--registry", &b_reg, "rm", "churn@2"]);
    assert_snapshot!(b.snap(&["--registry", &b_reg, "sync"]), @r"
    exit: 0
    --- stdout
    --- stderr
    Fetched from origin: 0 objects, 0 B, 0 versions, 1 removal, 0 runs, 0 records, 0 stage pointers.
    Sent to origin: 0 objects, 0 B, 0 versions, 1 removal, 0 runs, 0 records, 0 stage pointers.
    ");
    a.ok(&["sync"]);
    for (env, reg) in [
        (&a, a.registry().display().to_string()),
        (&b, b_reg.clone()),
    ] {
        let json: serde_json::Value =
            serde_json::from_str(&env.ok(&["--registry", &reg, "ls", "churn", "--json"])).unwrap();
        let listed: Vec<u64> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect();
        assert_eq!(listed, [3], "{reg}");
    }
    // Collected on the share, a new clone gets the removed versions' records and
    // removals, none of their objects, and passes fsck.
    a.ok(&["gc", "--registry", &share]);
    let c = TestEnv::new();
    let out = c.run(&["clone", &share, "c"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // Three objects: churn@3's tree, weights and config; the removed versions' records
    // and removals, none of their files.
    assert!(
        said.contains("3 objects, 52 B, 3 versions, 2 removals"),
        "{said}"
    );
    let c_reg = c.path("c/.mreg").display().to_string();
    c.ok(&["--registry", &c_reg, "fsck"]);
    assert_snapshot!(c.snap(&["--registry", &c_reg, "pull", "churn@1", "--to", "one"]), @r"
    exit: 1
    --- stdout
    --- stderr
    error: churn@1 was removed at 2026-01-01T00:07:00Z by tester@ci: obsolete
    hint: `mreg show churn@1` shows what it was; `mreg ls churn` lists the versions there are
    ");
    c.ok(&["--registry", &c_reg, "pull", "churn@3", "--to", "three"]);
    // A removal for another record at the same number is refused by name.
    let forged = a.registry().join("models/churn/removed/3.toml");
    let text = fs::read_to_string(a.registry().join("models/churn/removed/1.toml")).unwrap();
    fs::write(&forged, text.replace("version = 1", "version = 3")).unwrap();
    let out = a.run(&["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("removed/3.toml"), "{stderr}");
    c.ok(&["--registry", &c_reg, "sync"]);
    c.ok(&[
        "--registry",
        &c_reg,
        "pull",
        "churn@3",
        "--to",
        "three-again",
    ]);
}

#[test]
fn a_removal_on_one_side_and_a_promotion_of_the_same_version_on_the_other_are_a_conflict() {
    // In both orders: the removal syncs first, or the promotion does.
    for promote_first in [false, true] {
        let a = three_versions();
        let (_, b, b_reg) = shared_with_a_clone(&a);
        let remove = || b.ok(&["--registry", &b_reg, "rm", "churn@1"]);
        let promote = || a.ok(&["promote", "churn@1", "production"]);
        if promote_first {
            promote();
            a.ok(&["sync"]);
            remove();
        } else {
            remove();
            b.ok(&["--registry", &b_reg, "sync"]);
            promote();
        }
        let out = if promote_first {
            b.run(&["--registry", &b_reg, "sync"])
        } else {
            a.run(&["sync"])
        };
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{said}");
        assert!(
            said.contains("churn@1 was removed") && said.contains("production holds it"),
            "{said}"
        );
        for reg in [a.registry().display().to_string(), b_reg.clone()] {
            a.ok(&["fsck", "--registry", &reg]);
        }
        a.ok(&[
            "fsck",
            "--registry",
            &a.root().join("share").display().to_string(),
        ]);
        // Resolved where production holds it: emptied and removed there, then synced.
        a.ok(&["rm", "churn@1", "--force", "--reason", "removed elsewhere"]);
        a.ok(&["sync"]);
        b.ok(&["--registry", &b_reg, "sync"]);
        for reg in [a.registry().display().to_string(), b_reg.clone()] {
            a.ok(&["fsck", "--registry", &reg]);
            let out = a.run(&["pull", "churn@production", "--registry", &reg, "--to", "p"]);
            assert_eq!(out.status.code(), Some(1), "production is empty: {out:?}");
        }
    }
}

#[test]
fn a_run_removed_on_one_side_is_not_taken_where_a_surviving_version_came_from_it() {
    let (a, _, idle) = two_runs();
    let (share, b, b_reg) = shared_with_a_clone(&a);
    b.write("out/w.bin", "b weights\n");
    b.ok(&[
        "--registry",
        &b_reg,
        "push",
        "out",
        "--model",
        "bmodel",
        "--run",
        &idle,
    ]);
    a.ok(&["rm", &idle]);
    a.ok(&["sync"]);
    let out = b.run(&["--registry", &b_reg, "sync"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains(&format!("run {idle} was removed on "))
            && said.contains("bmodel@1 came from it"),
        "{said}"
    );
    assert_eq!(
        listed_runs(&b, Some(&b_reg)).len(),
        2,
        "the run stays listed in b"
    );
    // Nor does bmodel@1 reach the share, where the run is removed.
    let shared = a.ok(&["ls", "--registry", &share]);
    assert!(!shared.contains("bmodel"), "{shared}");
    // Should the two meet all the same (the removal copied by hand here), gc keeps
    // what the run stored and fsck notes the pair.
    let removal = a.registry().join("runs").join(&idle).join("removed.toml");
    fs::copy(
        &removal,
        b.path("b/.mreg/runs").join(&idle).join("removed.toml"),
    )
    .unwrap();
    let gc: serde_json::Value =
        serde_json::from_str(&b.ok(&["--registry", &b_reg, "gc", "--json"])).unwrap();
    assert_eq!(gc["kinds"][1]["count"], 0, "{gc}");
    let said = b.ok_err(&["--registry", &b_reg, "fsck"]);
    assert!(said.contains(&format!("{idle} (bmodel@1)")), "{said}");
}

#[test]
fn a_sync_after_gc_on_the_remote_sends_again_what_gc_deleted_there() {
    // The registry remembers which objects the share holds; a gc on the share deletes
    // some of them; the same content pushed again here must reach the share whole.
    let a = three_versions();
    let share = a.root().join("share").display().to_string();
    a.ok(&["init", &share]);
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["sync"]);
    a.ok(&["rm", "churn@1", "--registry", &share]);
    a.ok(&["gc", "--registry", &share]);
    a.ok(&["sync"]);
    a.write("out/w.bin", "weights of version 1\n".repeat(40));
    a.ok(&["push", "out", "--model", "churn"]);
    let out = a.run(&["sync"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Sent to share: 2 objects"), "{said}");
    a.ok(&["fsck", "--registry", &share]);
    a.ok(&["pull", "churn@4", "--registry", &share, "--to", "four"]);
}

#[test]
fn gc_in_a_loop_against_eight_pushers_and_pullers_never_deletes_what_a_version_names() {
    let env = TestEnv::with_registry();
    env.write("stable/w.bin", churn::stable());
    env.ok(&["push", "stable", "--model", "stable"]);
    let mreg = Template::of(&env);
    let actor = |n: usize| churn::Actor {
        mreg: &mreg,
        dir: env.root().join(format!("actor-{n}")),
    };
    let pushers: Vec<_> = (0..4).map(actor).collect();
    let pullers: Vec<_> = (4..8).map(actor).collect();
    let big = 9 << 20;
    let kept = churn::gc_against_writers(&mreg, &pushers, &pullers, &[], 4, big);
    env.ok(&["gc"]);
    env.ok(&["fsck"]);
    for (reference, t, i) in kept {
        let to = format!("check-{t}-{i}");
        env.ok(&["pull", &reference, "--to", &to]);
        churn::check_pulled(&env.path(&to), &reference, t, i, big);
    }
}

/// Runs `args` killed at `point`, and checks it was.
fn killed(env: &TestEnv, point: &str, args: &[&str]) {
    let out = env.run_with(args, &[("MREG_CRASH_AT", point)]);
    assert_eq!(out.status.signal(), Some(9), "{point}: {out:?}");
}

#[test]
fn a_kill_during_rm_or_gc_leaves_a_registry_fsck_passes_and_the_next_gc_finishes() {
    let env = three_versions();
    env.ok(&["promote", "churn@3", "staging"]);
    killed(
        &env,
        "removal-recorded",
        &["rm", "churn@3", "--force", "--reason", "bad"],
    );
    // The history records the removal and staging is empty; the removal record is not
    // written yet, and no stage move can bring the version back meanwhile.
    assert_snapshot!(env.snap(&["fsck"]), @r#"
    exit: 0
    --- stdout
    --- stderr
    The removal of churn@3 was recorded but left unfinished by an interrupted command; the next `mreg gc` or stage move of the model finishes it.
    Note: 2 items (182 B) no surviving version, stage or run holds; `mreg gc` frees them.
    Checked 7 objects (2.99 KiB) and 12 manifests: all good.
    "#);
    assert_snapshot!(env.snap(&["promote", "churn@3", "staging"]), @r"
    exit: 1
    --- stdout
    --- stderr
    error: churn@3 was removed at 2026-01-01T00:05:00Z by tester@ci: bad
    hint: `mreg show churn@3` shows what it was; `mreg ls churn` lists the versions there are
    ");
    assert!(env.registry().join("models/churn/removed/3.toml").is_file());
    env.ok(&["rm", "churn@1"]);
    let all = objects(&env.registry());
    for point in ["gc-marked", "gc-swept-some"] {
        killed(&env, point, &["gc"]);
        env.ok(&["fsck"]);
    }
    assert!(objects(&env.registry()).len() < all.len());
    assert_snapshot!(env.snap(&["gc"]), @r#"
    exit: 0
    --- stdout
    KIND              COUNT  SIZE
    removed-versions  2      182 B
    removed-runs      0      0 B
    unreferenced      1      38 B
    temp-files        0      0 B
    --- stderr
    Freed 220 B; 3 objects (195 B) are kept.
    "#);
    assert_eq!(objects(&env.registry()).len(), all.len() - 4);
    env.ok(&["pull", "churn@2", "--to", "two"]);
    // The kills left no lock behind that a writer waits for.
    env.write("out/w.bin", "after the kills\n");
    env.ok(&["push", "out", "--model", "churn"]);
}

#[test]
fn gc_and_du_name_a_kept_version_whose_tree_cannot_be_read() {
    let env = TestEnv::with_registry();
    env.write("v/w.bin", "weights");
    env.ok(&["push", "v", "--model", "m"]);
    let shown: serde_json::Value =
        serde_json::from_str(&env.ok(&["show", "m@1", "--json"])).unwrap();
    let tree = shown["tree"].as_str().unwrap().to_owned();
    let path = walkdir::WalkDir::new(env.registry().join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(&tree[2..]))
        .expect("the tree is a file of its own")
        .into_path();
    std::fs::remove_file(&path).unwrap();
    for args in [&["gc"][..], &["du"]] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("m@1 is kept") && said.contains("gc deletes nothing"),
            "{args:?}: {said}"
        );
    }
}
