//! A user's first day: the natural CI sequence (train in one step, push in another)
//! links the version to its training run, and the mistakes a new user makes get a
//! clear answer instead of a silent wrong one.

use crate::cli::lineage::git;
use crate::common::TestEnv;
use insta::assert_snapshot;
use serde_json::Value;

/// Records a training run that logs a loss curve and pushes nothing, as a CI training
/// step does; returns its id.
fn train(env: &TestEnv) -> String {
    let out = env.run(&[
        "run",
        "--experiment",
        "churn",
        "--param",
        "lr=0.1",
        "--",
        "sh",
        "-c",
        "mreg log -q --metric loss=0.5 --step 1 && mreg log -q --metric loss=0.3 --step 2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Value = serde_json::from_str(&env.ok(&["runs", "--json"])).unwrap();
    runs[0]["id"].as_str().unwrap().to_owned()
}

fn run_of(env: &TestEnv, reference: &str) -> String {
    let shown: Value = serde_json::from_str(&env.ok(&["show", reference, "--json"])).unwrap();
    shown["run"].as_str().unwrap().to_owned()
}

#[test]
fn a_push_in_a_later_step_links_to_the_training_run_with_run_last() {
    let env = TestEnv::with_registry();
    let trained = train(&env);
    env.fixture("tiny-v1", "out");
    env.ok(&["push", "out", "--model", "churn", "--run", "last"]);
    assert_eq!(run_of(&env, "churn@1"), trained);
    let shown: Value = serde_json::from_str(&env.ok(&["show", &trained, "--json"])).unwrap();
    assert_eq!(shown["params"]["lr"], 0.1);
    assert_eq!(shown["outputs"][0]["version"], 1);
    // `mreg log --run last` reaches the same run, for an evaluation step.
    env.write("eval.json", r#"{"acc": 0.91}"#);
    env.ok(&["log", "--run", "last", "--metrics-file", "eval.json"]);
    let shown: Value = serde_json::from_str(&env.ok(&["show", &trained, "--json"])).unwrap();
    assert_eq!(shown["metrics"]["acc"], 0.91);
}

#[test]
fn run_last_skips_runs_of_other_folders_and_says_when_there_is_none() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    assert_snapshot!(env.snap(&["push", "out", "--model", "churn", "--run", "last"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: --run last: no finished run of this registry was started by `mreg run` from [TMP]/work
    hint: `mreg runs` lists the runs; pass --run ID, or start the training with `mreg run` from this work tree and commit
    "#);
    // A run started elsewhere is not this work tree's.
    std::fs::create_dir(env.path("elsewhere")).unwrap();
    let out = env
        .cmd(&["run", "--", "true"])
        .current_dir(env.path("elsewhere"))
        .env("MREG_REGISTRY", env.registry())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.run(&["push", "out", "--model", "churn", "--run", "last"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(env.version_files().is_empty());
}

#[test]
fn a_push_that_records_its_own_run_warns_of_the_training_run_it_missed() {
    let env = TestEnv::with_registry();
    let trained = train(&env);
    env.fixture("tiny-v1", "out");
    let snap = env.snap(&["push", "out", "--model", "churn"]);
    assert!(snap.contains(&trained), "{snap}");
    assert_snapshot!(snap, @r#"
    exit: 0
    --- stdout
    churn@1
    --- stderr
    Stored 4 files (476 B, 476 B new) as churn@1, from run 8a9d06422a681749.
    warning: churn@1 is linked to run 8a9d06422a681749, which this push recorded, not to run eb16012c5aff4a1a (experiment churn), a `mreg run` started here (same folder and commit) that finished 1 minute ago without pushing a model.
    hint: churn@1 stays linked to 8a9d06422a681749. To link the next push to its training run, push from inside `mreg run`, or pass --run last (or --run eb16012c5aff4a1a); in GitHub Actions, later steps of the job have MREG_RUN_ID already
    "#);
    assert_ne!(run_of(&env, "churn@1"), trained);
    // Once a run has pushed a model, a later push from the folder does not warn of it.
    env.fixture("tiny-v2", "out2");
    env.ok(&["push", "out2", "--model", "churn", "--run", &trained]);
    env.fixture("tiny-v1", "out3");
    std::fs::write(env.path("out3/extra.txt"), "x").unwrap();
    let err = env.ok_err(&["push", "out3", "--model", "churn"]);
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn run_hands_its_id_to_later_github_actions_steps() {
    let env = TestEnv::with_registry();
    let github_env = env.write("github-env", "EARLIER=1\n");
    let github_env = github_env.display().to_string();
    let vars = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_ENV", github_env.as_str()),
    ];
    let out = env.run_with(&["run", "--experiment", "churn", "--", "true"], &vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let runs: Value = serde_json::from_str(&env.ok(&["runs", "--json"])).unwrap();
    let id = runs[0]["id"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(&github_env).unwrap(),
        format!("EARLIER=1\nMREG_RUN_ID={id}\n")
    );
    assert!(
        stderr.contains(&format!("MREG_RUN_ID={id} goes to the job's later steps")),
        "{stderr}"
    );
    // The later step, as the runner starts it: MREG_RUN_ID from that file.
    env.fixture("tiny-v1", "out");
    let out = env.run_with(&["push", "out", "--model", "churn"], &[("MREG_RUN_ID", id)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run_of(&env, "churn@1"), id);
    // Outside GitHub Actions nothing is written.
    env.ok(&["run", "--", "true"]);
    assert_eq!(
        std::fs::read_to_string(&github_env)
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn run_last_is_the_newest_run_of_the_checked_out_commit() {
    let env = TestEnv::with_registry();
    let work = env.path("");
    env.write(".gitignore", ".mreg/\nout/\n");
    git(&work, &["init", "-q"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "first"]);
    let first = train(&env);
    env.write("train.py", "print('v2')\n");
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "second"]);
    env.fixture("tiny-v1", "out");
    // The only run is of another commit: not this checkout's training.
    let out = env.run(&["push", "out", "--model", "churn", "--run", "last"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("at commit"), "{stderr}");
    let second = train(&env);
    env.ok(&["push", "out", "--model", "churn", "--run", "last"]);
    assert_eq!(run_of(&env, "churn@1"), second);
    assert_ne!(first, second);
}

#[test]
fn a_gate_key_no_version_has_is_a_usage_error_not_a_refusal() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    env.ok(&[
        "push", "out", "--model", "churn", "--metric", "acc=0.9", "--metric", "loss=0.2",
    ]);
    assert_snapshot!(env.snap(&["promote", "churn@1", "staging", "--gate", "acuracy>0.85"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: gate 'acuracy>0.85' reads metric acuracy, which no version of churn has
    hint: did you mean acc? metrics of churn@1: acc, loss
    "#);
    assert_snapshot!(env.snap(&["gate", "churn@1", "params.lrr<0.1"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: gate 'params.lrr<0.1' reads params.lrr, which no version of churn has
    hint: churn@1 has no params
    "#);
    // Nothing recorded: no refusal in the history.
    assert_snapshot!(env.snap(&["history", "churn"]), @r#"
    exit: 0
    --- stdout
    --- stderr
    No stage moves for churn yet; `mreg promote churn@N STAGE` makes the first.
    "#);
    // From push --stage: the version is pushed, the promotion refused as a usage error.
    env.write("out/build.txt", "2");
    let out = env.run(&[
        "push",
        "out",
        "--model",
        "churn",
        "--metric",
        "acc=0.95",
        "--stage",
        "staging",
        "--gate",
        "acuracy>0.85",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The version exists: its JSON says which, though the promotion failed.
    let pushed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["version"], 2, "{pushed}");
    assert_eq!(pushed["created"], true, "{pushed}");
    // A metric another version has but the candidate lacks stays a refusal (exit 3).
    env.write("out/build.txt", "3");
    env.ok(&["push", "out", "--model", "churn", "--metric", "f1=0.5"]);
    let out = env.run(&["promote", "churn@3", "staging", "--gate", "acc>0.85"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_pipeline_bootstraps_an_empty_stage_with_a_question_mark_gate() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    env.ok(&["push", "out", "--model", "churn", "--metric", "acc=0.9"]);
    let gate = "acc>=@production?-0.005";
    assert_snapshot!(env.snap(&["promote", "churn@1", "production", "--gate", gate]), @r#"
    exit: 0
    --- stdout
    GATE                     REQUIRED                                                       ACTUAL  RESULT
    acc>=@production?-0.005  >= @production? - 0.005 (production holds no version: passes)  0.9     pass
    --- stderr
    Promoted churn@1 to production (it held nothing); history #1.
    "#);
    let history: Value = serde_json::from_str(&env.ok(&["history", "churn", "--json"])).unwrap();
    assert_eq!(history[0]["checks"][0]["passed"], true);
    assert_eq!(
        history[0]["checks"][0]["required"],
        ">= @production? - 0.005 (production holds no version: passes)"
    );
    // From then on the same gate judges against the incumbent.
    env.write("out/build.txt", "2");
    env.ok(&["push", "out", "--model", "churn", "--metric", "acc=0.8"]);
    let out = env.run(&["promote", "churn@2", "production", "--gate", gate]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn where_refuses_the_unquoted_redirect_shape_and_warns_of_unknown_keys() {
    let env = TestEnv::with_registry();
    train(&env);
    env.write("eval.json", r#"{"acc": 0.91}"#);
    env.ok(&[
        "log",
        "--run",
        "last",
        "--metrics-file",
        "eval.json",
        "--param",
        "debug=false",
    ]);
    // What the shell leaves of `mreg runs --where acc>0.85`.
    assert_snapshot!(env.snap(&["runs", "--where", "acc"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: --where ends with the bare key metrics.acc, which matches only runs where it is true, and no run has a true/false value there: the rest of the expression was most likely taken by the shell
    hint: quote the whole expression: --where 'acc>0.85' (unquoted, > and < redirect: the shell may have created a file named after the value)
    "#);
    assert_snapshot!(env.snap(&["runs", "--where", "accc > 0.5", "--sort", "-acuracy"]), @r#"
    exit: 0
    --- stdout
    --- stderr
    warning: no run has metrics.accc, so --where cannot use it; did you mean metrics.acc?
    warning: no run has metrics.acuracy, so --sort cannot use it; did you mean metrics.acc?
    No runs match.
    "#);
    // A bare key some run holds a bool under is a real filter.
    let out = env.run(&["runs", "--where", "not params.debug"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn in_ci_the_actor_is_the_account_that_started_the_job() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    let out = env
        .cmd(&["push", "out", "--model", "churn"])
        .env_remove("MREG_ACTOR")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_ACTOR", "octocat")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env
        .cmd(&["promote", "churn@1", "staging"])
        .env_remove("MREG_ACTOR")
        .env("GITLAB_CI", "true")
        .env("GITLAB_USER_LOGIN", "alice")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_str(&env.ok(&["show", "churn@1", "--json"])).unwrap();
    assert_eq!(shown["actor"], "octocat@github");
    let history: Value = serde_json::from_str(&env.ok(&["history", "churn", "--json"])).unwrap();
    assert_eq!(history[0]["actor"], "alice@gitlab");
}

#[test]
fn a_name_that_is_neither_model_nor_run_and_a_missing_file_get_sentences() {
    let env = TestEnv::with_registry();
    assert_snapshot!(env.snap(&["show", "deadbeef"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: no model or run matches "deadbeef"
    hint: `mreg ls` lists the models and `mreg runs` the runs; a run is named by its id or a unique prefix of it (4 or more hex digits), a version by NAME@N
    "#);
    env.fixture("tiny-v1", "out");
    assert_snapshot!(env.snap(&["push", "out", "--model", "churn", "--metrics-file", "eval.json"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: the metrics file eval.json does not exist
    hint: check the path; a relative one is read from the folder mreg runs in ([TMP]/work), and a training script must have written the file before this step
    "#);
    assert!(env.version_files().is_empty());
}

#[test]
fn a_model_name_that_differs_only_in_case_is_refused() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    env.ok(&["push", "out", "--model", "churn"]);
    env.write("out/build.txt", "2");
    assert_snapshot!(env.snap(&["push", "out", "--model", "Churn"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: model Churn differs from the existing model churn only in case
    hint: push to churn, or pick a name that differs in more than case: on a case-insensitive file system (macOS, Windows) the two would share one folder
    "#);
    assert_eq!(env.version_files(), ["churn/versions/1.toml"]);
}

#[test]
fn promote_and_gate_write_markdown_for_a_step_summary() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    env.ok(&["push", "out", "--model", "churn", "--metric", "acc=0.9"]);
    let refused = [
        "promote", "churn@1", "staging", "--gate", "acc>0.95", "--md",
    ];
    assert_snapshot!(env.snap(&refused), @r#"
    exit: 3
    --- stdout
    ### churn@1 → staging: refused


    **gates: 0 of 1 passed**

    | gate | required | actual | result |
    |---|---|---|---|
    | acc&gt;0.95 | &gt; 0.95 | 0.9 | **FAIL** |

    acc&gt;0.95: 0.9 is not &gt; 0.95  
    --- stderr
    error: churn@1 was not promoted to staging: 1 of 1 check failed:
      acc>0.95: 0.9 is not > 0.95
    hint: the refusal is recorded (`mreg history churn`); nothing moved. To override: mreg promote churn@1 staging --force --reason TEXT
    "#);
    assert_snapshot!(env.snap(&["gate", "churn@1", "acc>0.85", "--md"]), @r#"
    exit: 0
    --- stdout
    ### churn@1: passes


    **gates: 1 of 1 passed**

    | gate | required | actual | result |
    |---|---|---|---|
    | acc&gt;0.85 | &gt; 0.85 | 0.9 | pass |
    --- stderr
    churn@1 passes 1 gate.
    "#);
    let both = env.run(&["gate", "churn@1", "acc>0.85", "--md", "--json"]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn json_shapes_hold_every_documented_key() {
    let env = TestEnv::with_registry();
    // A run ended by a signal has no exit code: the key is there, null.
    let out = env.run(&["run", "--json", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(143));
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ended["exit_code"], Value::Null, "{ended}");
    assert_eq!(ended["signal"], "SIGTERM", "{ended}");
    let out = env.run(&["run", "--json", "--", "true"]);
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ended["signal"], Value::Null, "{ended}");
    assert_eq!(ended["exit_code"], 0, "{ended}");
    // Checks: every key, in promote, gate and history alike.
    env.fixture("tiny-v1", "out");
    env.ok(&["push", "out", "--model", "churn", "--metric", "acc=0.9"]);
    let keys = [
        "gate",
        "source",
        "required",
        "threshold",
        "against",
        "actual",
        "passed",
        "why",
    ];
    let promote = [
        "promote", "churn@1", "staging", "--gate", "acc>0.5", "--json",
    ];
    let promoted: Value = serde_json::from_str(&env.ok(&promote)).unwrap();
    let gate = ["gate", "churn@1", "acc>=@production?", "--json"];
    let gated: Value = serde_json::from_str(&env.ok(&gate)).unwrap();
    let history: Value = serde_json::from_str(&env.ok(&["history", "churn", "--json"])).unwrap();
    for row in [
        &promoted["checks"][0],
        &gated["checks"][0],
        &history[0]["checks"][0],
    ] {
        let got: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(got, keys, "{row}");
    }
}

#[test]
fn run_last_skips_failed_runs_and_takes_an_experiment() {
    let env = TestEnv::with_registry();
    let trained = train(&env);
    let fraud = env.run(&["run", "--experiment", "fraud", "--", "true"]);
    assert!(fraud.status.success());
    // A crashed training run after it is no candidate.
    let crashed = env.run(&["run", "--experiment", "churn", "--", "sh", "-c", "exit 3"]);
    assert_eq!(crashed.status.code(), Some(3));
    env.fixture("tiny-v1", "out");
    env.ok(&["push", "out", "--model", "churn", "--run", "last:churn"]);
    assert_eq!(run_of(&env, "churn@1"), trained);
    let out = env.run(&["push", "out", "--model", "churn", "--run", "last:nope"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn github_env_gets_the_outer_run_and_its_own_line() {
    let env = TestEnv::with_registry();
    // A step that wrote its last line without a newline.
    let github_env = env.write("github-env", "FOO=bar").display().to_string();
    let vars = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_ENV", github_env.as_str()),
    ];
    let nested = "mreg run -q --experiment inner -- true";
    let out = env.run_with(
        &["run", "--experiment", "outer", "--", "sh", "-c", nested],
        &vars,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Value = serde_json::from_str(&env.ok(&["runs", "--json"])).unwrap();
    let outer = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["experiment"] == "outer")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&github_env).unwrap(),
        format!("FOO=bar\nMREG_RUN_ID={}\n", outer["id"].as_str().unwrap())
    );
    // The demo leaves it alone.
    let out = env.run_with(&["demo"], &vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&github_env)
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn run_last_refuses_to_guess_past_a_run_it_cannot_read() {
    let env = TestEnv::with_registry();
    train(&env);
    let newer = train(&env);
    let record = env.registry().join("runs").join(&newer).join("run.toml");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, text.replacen("format = 2", "format = 9", 1)).unwrap();
    env.fixture("tiny-v1", "out");
    let out = env.run(&["push", "out", "--model", "churn", "--run", "last"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("run {newer} cannot be read")),
        "{stderr}"
    );
    assert!(env.version_files().is_empty());
}

#[test]
fn a_bare_name_that_is_a_param_is_suggested_as_one() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    env.ok(&[
        "push", "out", "--model", "churn", "--param", "lr=0.1", "--metric", "acc=0.9",
    ]);
    let out = env.snap(&["gate", "churn@1", "lr<1"]);
    assert!(out.starts_with("exit: 2"), "{out}");
    assert!(out.contains("did you mean params.lr?"), "{out}");
    let out = env.snap(&["runs", "--columns", "lr"]);
    assert!(
        out.contains("no run has metrics.lr, so --columns cannot use it; did you mean params.lr?"),
        "{out}"
    );
}

#[test]
fn a_push_after_a_new_commit_still_warns_of_the_training_run() {
    let env = TestEnv::with_registry();
    let work = env.path("");
    env.write(".gitignore", ".mreg/\nout/\n");
    git(&work, &["init", "-q"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "first"]);
    let trained = train(&env);
    env.write("notes.txt", "a fix after training\n");
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "second"]);
    env.fixture("tiny-v1", "out");
    let err = env.ok_err(&["push", "out", "--model", "churn"]);
    assert!(err.contains(&format!("not to run {trained}")), "{err}");
    assert!(err.contains("same folder, at another commit"), "{err}");
    assert!(
        err.contains(&format!("pass --run {trained} (--run last takes only")),
        "{err}"
    );
}
