//! `mreg promote`, `gate`, `history` and `rollback`: stages, gates, policy and races.

use std::fs;

use crate::common::{TestEnv, snapshot_files};
use insta::assert_snapshot;
use serde_json::Value as Json;

/// Pushes one version of `m` per metrics list, from one folder changed each time.
fn env_with_versions(metrics: &[&[&str]]) -> TestEnv {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    for (n, list) in metrics.iter().enumerate() {
        // Each version differs in content, or the push would record nothing.
        env.write("v1/build.txt", format!("build {}\n", n + 1));
        let mut args = vec!["push", "v1", "--model", "m"];
        for m in *list {
            args.extend(["--metric", m]);
        }
        env.ok(&args);
    }
    env
}

fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap()
}

/// Returns the version a reference resolves to, through `mreg show`.
fn version_of(env: &TestEnv, reference: &str) -> Option<u64> {
    let out = env.run(&["show", reference, "--json"]);
    out.status.success().then(|| {
        json(&String::from_utf8(out.stdout).unwrap())["version"]
            .as_u64()
            .unwrap()
    })
}

#[test]
fn promotion_moves_the_stage_and_archives_the_replaced_version() {
    let env = env_with_versions(&[&["acc=0.84"], &["acc=0.91", "latency_ms=18"]]);
    assert_snapshot!(env.snap(&["promote", "m@1", "production", "--force", "--reason", "first model"]), @"
    exit: 0
    --- stdout
    --- stderr
    Promoted m@1 to production (it held nothing); history #1.
    ");
    assert_snapshot!(env.snap(&[
        "promote", "m@2", "production", "--gate", "acc>0.85", "--gate", "acc>=@production-0.005",
        "--gate", "latency_ms<=20"
    ]), @"
    exit: 0
    --- stdout
    GATE                    REQUIRED                                 ACTUAL  RESULT
    acc>0.85                > 0.85                                   0.91    pass
    acc>=@production-0.005  >= 0.835 (production m@1: 0.84 - 0.005)  0.91    pass
    latency_ms<=20          <= 20                                    18.0    pass
    --- stderr
    Promoted m@2 to production (it held m@1; m@1 moved to archived); history #2.
    ");
    assert_eq!(version_of(&env, "m@production"), Some(2));
    assert_eq!(version_of(&env, "m@archived"), Some(1));
    assert_snapshot!(env.snap(&["ls"]), @r#"
    exit: 0
    --- stdout
    MODEL  LATEST  VERSIONS  SIZE OF LATEST  UPDATED               STAGES
    m      m@2     2         484 B           2026-01-01T00:02:00Z  production=2 archived=1
    --- stderr
    "#);
    assert_snapshot!(env.snap(&["ls", "m"]), @"
    exit: 0
    --- stdout
    VERSION  STAGES      TREE          FILES  SIZE   CREATED               BY         MESSAGE
    m@2      production  f990252e73ed  5      484 B  2026-01-01T00:02:00Z  tester@ci
    m@1      archived    5efd728cc1c9  5      484 B  2026-01-01T00:01:00Z  tester@ci
    --- stderr
    ");
    assert_snapshot!(env.snap(&["history", "m"]), @"
    exit: 0
    --- stdout
    #  TIME                  ACTION   MOVES               GATES                               BY         REASON
    2  2026-01-01T00:04:00Z  promote  production: 1 -> 2  acc>0.85 = 0.91 pass                tester@ci
                                      archived: - -> 1    acc>=@production-0.005 = 0.91 pass
                                                          latency_ms<=20 = 18.0 pass
    1  2026-01-01T00:03:00Z  promote  production: - -> 1  -                                   tester@ci  first model
    --- stderr
    ");
    env.ok(&["pull", "m@production", "--to", "serve"]);
    assert!(env.path("serve/config.json").is_file());
}

#[test]
fn a_refused_promotion_moves_nothing_and_is_recorded_with_its_values() {
    let env = env_with_versions(&[&["acc=0.9"], &["acc=0.84"]]);
    env.ok(&["promote", "m@1", "staging"]);
    assert_snapshot!(env.snap(&["promote", "m@2", "staging", "--gate", "acc>0.85", "--gate", "acc>=@staging"]), @"
    exit: 3
    --- stdout
    GATE           REQUIRED              ACTUAL  RESULT
    acc>0.85       > 0.85                0.84    FAIL
    acc>=@staging  >= 0.9 (staging m@1)  0.84    FAIL
    --- stderr
    error: m@2 was not promoted to staging: 2 of 2 checks failed:
      acc>0.85: 0.84 is not > 0.85
      acc>=@staging: 0.84 is not >= 0.9 (m@1 in staging)
    hint: the refusal is recorded (`mreg history m`); nothing moved. To override: mreg promote m@2 staging --force --reason TEXT
    ");
    assert_eq!(version_of(&env, "m@staging"), Some(1));
    let history = json(&env.ok(&["history", "m", "--json"]));
    assert_eq!(history[0]["action"], "refused");
    assert_eq!(history[0]["checks"][0]["actual"], 0.84);
    assert_eq!(history[0]["checks"][0]["passed"], false);
    assert_eq!(history[0]["stages"]["staging"], 1);
    assert_eq!(history[1]["action"], "promote");
}

#[test]
fn missing_metrics_nan_and_empty_stages_fail_with_a_sentence() {
    let env = env_with_versions(&[&["acc=nan"], &["loss=0.2"]]);
    // m@1 has no loss, which m@2 has: the candidate lacks it, a refusal.
    assert_snapshot!(env.snap(&["gate", "m@1", "acc>0.5", "acc>=@production", "loss<0.3"]), @r#"
    exit: 3
    --- stdout
    GATE              REQUIRED        ACTUAL  RESULT
    acc>0.5           > 0.5           NaN     FAIL
    acc>=@production  >= @production  NaN     FAIL
    loss<0.3          < 0.3           -       FAIL
    --- stderr
    error: m@1 fails 3 of 3 gates:
      acc>0.5: acc of m@1 is NaN
      acc>=@production: acc of m@1 is NaN
      loss<0.3: m@1 has no metric loss
    hint: nothing was recorded; `mreg promote` records a refusal, `mreg gate` never does
    "#);
    assert_snapshot!(env.snap(&["gate", "m@2", "loss<=@production*1.1"]), @"
    exit: 3
    --- stdout
    GATE                   REQUIRED              ACTUAL  RESULT
    loss<=@production*1.1  <= @production * 1.1  0.2     FAIL
    --- stderr
    error: m@2 fails 1 of 1 gate:
      loss<=@production*1.1: production holds no version, so there is nothing to compare loss with (@production? passes while it holds none)
    hint: nothing was recorded; `mreg promote` records a refusal, `mreg gate` never does
    ");
    assert_snapshot!(env.snap(&["gate", "m@2", "loss<0.3", "--json"]), @r#"
    exit: 0
    --- stdout
    {
      "model": "m",
      "version": 2,
      "passed": true,
      "checks": [
        {
          "gate": "loss<0.3",
          "source": "command line",
          "required": "< 0.3",
          "threshold": 0.3,
          "against": null,
          "actual": 0.2,
          "passed": true,
          "why": null
        }
      ]
    }
    --- stderr
    m@2 passes 1 gate.
    "#);
}

#[test]
fn gate_syntax_errors_point_at_the_column() {
    let env = env_with_versions(&[&["acc=0.9"]]);
    assert_snapshot!(env.snap(&["promote", "m@1", "production", "--gate", "acc=>0.85"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: gate 'acc=>0.85' has a syntax error at column 4: '=>' is not an operator
      acc=>0.85
         ^
    hint: use >= for 'at least': 'acc>=0.85'
    ");
    assert_snapshot!(env.snap(&["gate", "m@1", "acc"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: gate 'acc' has a syntax error at column 4: expected an operator after 'acc', found the end of the gate
      acc
         ^
    hint: add an operator and a value, and quote the whole gate, since an unquoted > is a shell redirect: --gate 'acc>0.85'
    ");
    assert_snapshot!(env.snap(&["gate", "m@1", "acc>@canary"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: gate 'acc>@canary' compares with stage "canary", which does not exist
    hint: stages: staging, production, archived
    "#);
}

#[test]
fn bad_promotions_are_refused_and_leave_the_registry_as_it_was() {
    let env = env_with_versions(&[&["acc=0.9"], &["acc=0.95"]]);
    env.ok(&["promote", "m@1", "production"]);
    let before = snapshot_files(&env.registry());
    for (args, code) in [
        (&["promote", "m@2", "production", "--force"][..], 2),
        (
            &["promote", "m@2", "production", "--force", "--reason", " "][..],
            2,
        ),
        (&["promote", "m@2", "canary"][..], 2),
        (&["promote", "m@7", "production"][..], 1),
        (&["promote", "m@2", "production", "--expect", "2"][..], 4),
        (
            &["promote", "m@2", "production", "--expect", "other@1"][..],
            2,
        ),
        (&["promote", "m@2", "production", "--gate", "acc>"][..], 2),
        (&["promote", "m@2", "production", "--wait", "-1"][..], 2),
        (&["promote", "m@2", "production", "--dry-run"][..], 0),
        (&["rollback", "m", "production"][..], 1),
        (&["rollback", "m", "staging"][..], 1),
        (&["gate", "m@2", "acc>0.99"][..], 3),
    ] {
        let out = env.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            snapshot_files(&env.registry()),
            before,
            "{args:?} changed the registry"
        );
    }
    assert_snapshot!(env.snap(&["promote", "m@2", "production", "--force"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: --force needs --reason TEXT, which is recorded
    hint: say why the gates may be skipped: --force --reason 'hotfix for incident 42'
    ");
    assert_snapshot!(env.snap(&["promote", "m@2", "production", "--expect", "2"]), @"
    exit: 4
    --- stdout
    --- stderr
    error: production holds m@1, not m@2 as --expect said
    hint: another promotion moved it; check `mreg history` before promoting again
    ");
    assert_snapshot!(env.snap(&["promote", "m@2", "production", "--dry-run"]), @"
    exit: 0
    --- stdout
    --- stderr
    Dry run: would promote m@2 to production (it holds m@1; m@1 would move to archived); nothing was written.
    ");
}

#[test]
fn forcing_past_a_gate_is_recorded_with_its_reason() {
    let env = env_with_versions(&[&["acc=0.7"]]);
    assert_snapshot!(env.snap(&[
        "promote", "m@1", "production", "--gate", "acc>0.85", "--force", "--reason", "incident 42"
    ]), @"
    exit: 0
    --- stdout
    GATE      REQUIRED  ACTUAL  RESULT
    acc>0.85  > 0.85    0.7     FAIL
    --- stderr
    warning: forced past 1 failing check; the reason is recorded
    Promoted m@1 to production (it held nothing); history #1.
    ");
    let history = json(&env.ok(&["history", "m", "--json"]));
    assert_eq!(history[0]["forced"], true);
    assert_eq!(history[0]["reason"], "incident 42");
    assert_eq!(history[0]["checks"][0]["passed"], false);
}

#[test]
fn production_never_moves_backwards_without_rollback_or_a_flag() {
    let env = env_with_versions(&[&["acc=0.9"], &["acc=0.9"], &["acc=0.9"]]);
    env.ok(&["promote", "m@3", "production"]);
    assert_snapshot!(env.snap(&["promote", "m@2", "production"]), @"
    exit: 4
    --- stdout
    --- stderr
    error: production holds m@3, newer than m@2: this would move production backwards
    hint: to go back on purpose, run `mreg rollback m production` or promote with --allow-downgrade
    ");
    env.ok(&["promote", "m@2", "production", "--allow-downgrade"]);
    assert_eq!(version_of(&env, "m@production"), Some(2));
    let history = json(&env.ok(&["history", "m", "--json"]));
    assert_eq!(history[0]["downgrade"], true);
    // archived accepts older versions: its default policy allows downgrades.
    env.ok(&["promote", "m@1", "archived"]);
}

#[test]
fn rollbacks_walk_back_through_earlier_holders() {
    let env = env_with_versions(&[&["acc=0.8"], &["acc=0.85"], &["acc=0.9"]]);
    for v in ["m@1", "m@2", "m@3"] {
        env.ok(&["promote", v, "production"]);
    }
    assert_snapshot!(env.snap(&["rollback", "m", "production", "--reason", "latency regression"]), @"
    exit: 0
    --- stdout
    --- stderr
    Rolled production back from m@3 to m@2; m@3 moved to archived; history #4.
    ");
    assert_eq!(version_of(&env, "m@production"), Some(2));
    assert_eq!(version_of(&env, "m@archived"), Some(3));
    env.ok(&["rollback", "m", "production"]);
    assert_eq!(version_of(&env, "m@production"), Some(1));
    assert_snapshot!(env.snap(&["rollback", "m", "production"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: production of m has no earlier holder to go back to: m@1 is the first version it held
    hint: promote another version: mreg promote m@N production
    ");
    assert_snapshot!(env.snap(&["history", "m", "--stage", "production", "--limit", "3", "--md"]), @"
    exit: 0
    --- stdout
    | # | TIME | ACTION | MOVES | GATES | BY | REASON |
    |---|---|---|---|---|---|---|
    | 5 | 2026-01-01T00:10:00Z | rollback | production: 2 -> 1<br>archived: 3 -> 2 | - | tester@ci |  |
    | 4 | 2026-01-01T00:07:00Z | rollback | production: 3 -> 2<br>archived: 2 -> 3 | - | tester@ci | latency regression |
    | 3 | 2026-01-01T00:06:00Z | promote | production: 2 -> 3<br>archived: 1 -> 2 | - | tester@ci |  |
    --- stderr
    ");
}

#[test]
fn stage_policy_gates_and_required_previous_stage_are_enforced() {
    let env = env_with_versions(&[&["acc=0.9"], &["acc=0.95"], &["acc=0.7"]]);
    let config = env.registry().join("config.toml");
    let mut text = fs::read_to_string(&config).unwrap();
    text = text.replace(
        "[stages.production]\n",
        "[stages.production]\ngates = [\"acc>0.8\"]\nfrom = \"staging\"\n",
    );
    fs::write(&config, text).unwrap();
    env.ok(&["promote", "m@1", "staging"]);
    assert_snapshot!(env.snap(&["promote", "m@2", "production"]), @"
    exit: 3
    --- stdout
    GATE                                 REQUIRED           ACTUAL  RESULT
    from staging (policy of production)  staging holds m@2  m@1     FAIL
    acc>0.8 (policy of production)       > 0.8              0.95    pass
    --- stderr
    error: m@2 was not promoted to production: 1 of 2 checks failed:
      from staging: production takes only the version staging holds, which is m@1, not m@2
    hint: the refusal is recorded (`mreg history m`); nothing moved. To override: mreg promote m@2 production --force --reason TEXT
    ");
    env.ok(&["promote", "m@1", "production"]);
    env.ok(&["promote", "m@3", "staging"]);
    assert_snapshot!(env.snap(&["promote", "m@staging", "production"]), @"
    exit: 3
    --- stdout
    GATE                                 REQUIRED           ACTUAL  RESULT
    from staging (policy of production)  staging holds m@3  m@3     pass
    acc>0.8 (policy of production)       > 0.8              0.7     FAIL
    --- stderr
    error: m@3 was not promoted to production: 1 of 2 checks failed:
      acc>0.8: 0.7 is not > 0.8
    hint: the refusal is recorded (`mreg history m`); nothing moved. To override: mreg promote m@3 production --force --reason TEXT
    ");
    assert_snapshot!(env.snap(&["gate", "m@3", "--stage", "production", "--json"]), @r#"
    exit: 3
    --- stdout
    {
      "model": "m",
      "version": 3,
      "passed": false,
      "checks": [
        {
          "gate": "from staging",
          "source": "policy of production",
          "required": "staging holds m@3",
          "threshold": null,
          "against": "m@3",
          "actual": "m@3",
          "passed": true,
          "why": null
        },
        {
          "gate": "acc>0.8",
          "source": "policy of production",
          "required": "> 0.8",
          "threshold": 0.8,
          "against": null,
          "actual": 0.7,
          "passed": false,
          "why": "0.7 is not > 0.8"
        }
      ]
    }
    --- stderr
    error: m@3 fails 1 of 2 gates:
      acc>0.8: 0.7 is not > 0.8
    hint: nothing was recorded; `mreg promote` records a refusal, `mreg gate` never does
    "#);
}

#[test]
fn a_bad_stage_policy_is_reported_with_the_file() {
    let env = env_with_versions(&[&["acc=0.9"]]);
    let config = env.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("{text}\n[stages.qa]\nfrom = \"dev\"\n")).unwrap();
    assert_snapshot!(env.snap(&["promote", "m@1", "staging"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: registry config [TMP]/work/.mreg/config.toml: stage "qa" names unknown stage "dev" in from
    hint: fix the [stages] tables of config.toml; docs/stages.md explains them
    "#);
}

#[test]
fn promoting_a_version_whose_content_is_missing_is_refused() {
    let env = env_with_versions(&[&["acc=0.9"]]);
    let objects = env.registry().join("objects");
    let victim = walkdir::WalkDir::new(&objects)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap();
    fs::remove_file(victim.path()).unwrap();
    let out = env.run(&["promote", "m@1", "production"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot take a stage: the registry lacks the content of"),
        "{stderr}"
    );
    assert!(!env.registry().join("models/m/HEAD").exists());
}

#[test]
fn a_lock_left_by_a_process_that_is_gone_is_removed_by_the_next_promotion() {
    let env = env_with_versions(&[&["acc=0.9"]]);
    let host = rustix_free_hostname();
    let lock = env.registry().join("models/m/HEAD.lock");
    fs::write(
        &lock,
        format!(
            "pid = 4000000\nhost = \"{host}\"\ncommand = \"mreg promote m@1 staging\"\nsince = \"2026-01-01T00:00:00Z\"\n"
        ),
    )
    .unwrap();
    let fsck = env.run(&["fsck"]);
    assert_eq!(fsck.status.code(), Some(0));
    let said = String::from_utf8_lossy(&fsck.stderr);
    assert!(
        said.contains("1 item left by interrupted commands"),
        "{said}"
    );
    assert!(said.contains("HEAD.lock"), "{said}");
    let out = env.run(&["promote", "m@1", "production", "--wait", "0.1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!lock.exists());
}

#[test]
fn a_lock_held_by_a_running_process_names_its_holder_and_is_kept() {
    let env = env_with_versions(&[&["acc=0.9"]]);
    let lock = env.registry().join("models/m/HEAD.lock");
    fs::write(
        &lock,
        "pid = 4000000\nhost = \"build-7\"\ncommand = \"mreg promote m@1 staging\"\nsince = \"2026-01-01T00:00:00Z\"\n",
    )
    .unwrap();
    // This test process holds the OS lock, as a running mreg would, however old the file.
    let held = fs::File::open(&lock).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = env.run(&["promote", "m@1", "production", "--wait", "0.1"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is held by pid 4000000 on build-7"),
        "{stderr}"
    );
    assert!(stderr.contains("mreg promote m@1 staging"), "{stderr}");
    assert!(lock.exists());
    drop(held);
}

/// Returns this machine's host name, as the lock file records it.
fn rustix_free_hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn push_with_a_stage_promotes_through_its_gates() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    assert_snapshot!(env.snap(&[
        "push", "v1", "--model", "m", "--metric", "acc=0.9", "--stage", "staging", "--gate", "acc>0.85"
    ]), @"
    exit: 0
    --- stdout
    m@1
    --- stderr
    Stored 4 files (476 B, 476 B new) as m@1, from run 16580034d5a1d5c1.
    GATE      REQUIRED  ACTUAL  RESULT
    acc>0.85  > 0.85    0.9     pass
    Promoted m@1 to staging (it held nothing); history #1.
    ");
    env.write("v1/build.txt", "2");
    let out = env.run(&[
        "push",
        "v1",
        "--model",
        "m",
        "--metric",
        "acc=0.8",
        "--stage",
        "staging",
        "--gate",
        "acc>=@staging",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let pushed = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        pushed["version"], 2,
        "the version is pushed even when the stage refuses it"
    );
    assert_eq!(pushed["promotion"]["result"], "refused");
    assert_eq!(pushed["promotion"]["checks"][0]["actual"], 0.8);
    assert_eq!(version_of(&env, "m@staging"), Some(1));
    let before = snapshot_files(&env.registry());
    let out = env.run(&["push", "v1", "--model", "m", "--stage", "qa"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown stage is refused before anything is written"
    );
    assert_eq!(snapshot_files(&env.registry()), before);
}

#[test]
fn promoting_the_holder_again_still_answers_with_its_gates() {
    let env = env_with_versions(&[&["acc=0.8"]]);
    env.ok(&["promote", "m@1", "production"]);
    let before = snapshot_files(&env.registry());
    assert_snapshot!(env.snap(&["promote", "m@1", "production", "--gate", "acc>0.9", "--expect", "none"]), @"
    exit: 3
    --- stdout
    GATE     REQUIRED  ACTUAL  RESULT
    acc>0.9  > 0.9     0.8     FAIL
    --- stderr
    error: production already holds m@1, but it fails 1 of 1 check:
      acc>0.9: 0.8 is not > 0.9
    hint: nothing moved and nothing was recorded; `mreg rollback m production` takes it out
    ");
    assert_eq!(snapshot_files(&env.registry()), before);
    env.ok(&["promote", "m@1", "production", "--gate", "acc>0.5"]);
}

#[test]
fn a_lock_without_a_holder_is_called_out_by_promote_and_fsck() {
    let env = env_with_versions(&[&["acc=0.9"]]);
    fs::write(env.registry().join("models/m/HEAD.lock"), "").unwrap();
    let out = env.run(&["promote", "m@1", "production", "--wait", "0"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not name its holder"), "{stderr}");
    let fsck = env.run(&["fsck"]);
    assert_eq!(fsck.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&fsck.stdout).contains("a lock that names no holder"));
}

#[test]
fn an_unknown_attribute_in_a_gate_is_a_usage_error() {
    let env = env_with_versions(&[&["acc=0.9"]]);
    let out = env.run(&["gate", "m@1", "attributes.size<=100"]);
    assert_eq!(out.status.code(), Some(2));
    env.ok(&[
        "gate",
        "m@1",
        "attributes.bytes<=100000",
        "attributes.version==1",
    ]);
}

#[test]
fn markdown_history_keeps_each_entry_on_one_row() {
    let env = env_with_versions(&[&["acc=0.9"]]);
    env.ok(&[
        "promote",
        "m@1",
        "staging",
        "--reason",
        "line one | pipe\nline two",
    ]);
    let md = env.ok(&["history", "m", "--md"]);
    assert_eq!(md.lines().count(), 3, "{md}");
    assert!(md.contains("line one \\| pipe<br>line two"), "{md}");
}

#[test]
fn a_stage_removed_from_the_config_still_resolves_while_it_points_somewhere() {
    let env = env_with_versions(&[&["acc=0.9"]]);
    let config = env.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("{text}\n[stages.canary]\n")).unwrap();
    env.ok(&["promote", "m@1", "canary"]);
    fs::write(&config, text).unwrap();
    assert_eq!(version_of(&env, "m@canary"), Some(1));
    assert!(env.ok(&["ls"]).contains("canary=1"));
}
