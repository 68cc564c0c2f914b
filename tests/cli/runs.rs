//! `mreg runs`: filtering with --where, sorting, limits, columns, JSON, and errors.

use crate::cli::run::{runs_json, timed_snapshot};
use crate::common::TestEnv;
use insta::assert_snapshot;

/// Returns a registry with four runs of known params and metrics.
fn four_runs() -> TestEnv {
    let env = TestEnv::with_registry();
    for (name, experiment, lr, acc, team) in [
        ("a", "churn", "0.001", "0.91", "growth"),
        ("b", "churn", "0.1", "0.95", "core"),
        ("c", "churn", "0.005", "0.78", "core"),
        ("d", "fraud", "0.001", "0.88", "growth"),
    ] {
        let script = format!(
            "mreg log -q --metric acc={acc} --metric loss=0.{}",
            acc.len()
        );
        env.ok(&[
            "run",
            "-q",
            "--experiment",
            experiment,
            "--name",
            name,
            "--param",
            &format!("lr={lr}"),
            "--tag",
            &format!("team={team}"),
            "--",
            "sh",
            "-c",
            &script,
        ]);
    }
    env
}

fn names(env: &TestEnv, args: &[&str]) -> Vec<String> {
    let mut all = vec!["runs", "--json"];
    all.extend_from_slice(args);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&env.ok(&all)).unwrap();
    runs.iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn runs_lists_newest_first_in_a_table() {
    let env = four_runs();
    timed_snapshot!(env.snap(&["runs"]), @"
    exit: 0
    --- stdout
    ID        EXPERIMENT  NAME  STATUS    START                 DURATION  acc   loss
    2584b952  fraud       d     finished  2026-01-01T00:04:00Z  [TIME]     0.88  0.4
    52ebf923  churn       c     finished  2026-01-01T00:03:00Z  [TIME]     0.78  0.4
    de8a0901  churn       b     finished  2026-01-01T00:02:00Z  [TIME]     0.95  0.4
    216dd0fe  churn       a     finished  2026-01-01T00:01:00Z  [TIME]     0.91  0.4
    --- stderr
    ");
}

#[test]
fn where_filters_with_and_or_not_and_parentheses() {
    let env = four_runs();
    assert_eq!(
        names(&env, &["--where", "metrics.acc > 0.8 and params.lr < 0.01"]),
        ["d", "a"]
    );
    assert_eq!(
        names(
            &env,
            &[
                "--where",
                "acc > 0.9 or (params.lr < 0.01 and tags.team == \"core\")"
            ]
        ),
        ["c", "b", "a"]
    );
    assert_eq!(
        names(&env, &["--where", "not tags.team == 'growth'"]),
        ["c", "b"]
    );
    assert_eq!(
        names(&env, &["--where", "attributes.experiment == \"fraud\""]),
        ["d"]
    );
    // A key no run has makes its comparison false, never an error.
    assert!(names(&env, &["--where", "metrics.f1 > 0"]).is_empty());
    assert_eq!(
        names(
            &env,
            &["--where", "not params.debug", "--experiment", "fraud"]
        ),
        ["d"]
    );
}

#[test]
fn sort_limit_and_columns() {
    let env = four_runs();
    assert_eq!(
        names(&env, &["--sort", "-metrics.acc"]),
        ["b", "a", "d", "c"]
    );
    // a and d tie on lr: ties stay newest first.
    assert_eq!(
        names(&env, &["--sort", "params.lr", "--limit", "2"]),
        ["d", "a"]
    );
    assert_eq!(names(&env, &["--sort", "name"]), ["a", "b", "c", "d"]);
    timed_snapshot!(env.snap(&["runs", "--where", "acc > 0.8", "--sort", "-acc", "--columns", "params.lr,acc,tags.team"]), @"
    exit: 0
    --- stdout
    ID        params.lr  acc   tags.team
    de8a0901  0.1        0.95  core
    216dd0fe  0.001      0.91  growth
    2584b952  0.001      0.88  growth
    --- stderr
    ");
}

#[test]
fn json_keeps_param_types() {
    let env = four_runs();
    let runs = runs_json(&env);
    assert_eq!(runs.len(), 4);
    let a = runs.iter().find(|r| r["name"] == "a").unwrap();
    assert_eq!(a["params"]["lr"], 0.001);
    assert_eq!(a["metrics"]["acc"], 0.91);
    assert_eq!(a["tags"]["team"], "growth");
    assert_eq!(a["status"], "finished");
    assert_eq!(a["exit_code"], 0);
}

#[test]
fn a_new_event_shows_at_once_despite_the_index() {
    let env = four_runs();
    assert_eq!(
        names(&env, &["--where", "acc > 0.99"]),
        Vec::<String>::new()
    );
    let id = runs_json(&env).iter().find(|r| r["name"] == "c").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok(&["log", "--run", &id, "--metric", "acc=0.999"]);
    assert_eq!(names(&env, &["--where", "acc > 0.99"]), ["c"]);
    // And again with the index rebuilt from nothing.
    std::fs::remove_file(env.registry().join("cache/runs-index.json")).unwrap();
    assert_eq!(names(&env, &["--where", "acc > 0.99"]), ["c"]);
}

#[test]
fn query_errors_show_where_and_what() {
    let env = four_runs();
    assert_snapshot!(env.snap(&["runs", "--where", "metrics.acc > and params.lr < 0.01"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: --where expression has a syntax error at column 15: expected a value after '>', found 'and'
      metrics.acc > and params.lr < 0.01
                    ^
    hint: write comparisons like metrics.acc > 0.8, join them with and/or/not, quote strings: tags.team == "growth"
    "#);
    assert_snapshot!(env.snap(&["runs", "--where", "acc = 0.9"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: --where expression has a syntax error at column 5: '=' is not an operator
      acc = 0.9
          ^
    hint: use == to test equality: tags.team == "growth"
    "#);
    assert_snapshot!(env.snap(&["runs", "--where", "attributes.stauts == \"failed\""]), @"
    exit: 2
    --- stdout
    --- stderr
    error: --where names attributes.stauts, which runs do not have
    hint: attributes are: id, experiment, name, status, start, end, duration, actor, exit_code
    ");
    assert_snapshot!(env.snap(&["runs", "--where", "(acc > 0.9"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: --where expression has a syntax error at column 11: the '(' at column 1 is never closed
      (acc > 0.9
                ^
    hint: write comparisons like metrics.acc > 0.8, join them with and/or/not, quote strings: tags.team == "growth"
    "#);
}

#[test]
fn no_runs_says_how_to_record_one() {
    let env = TestEnv::with_registry();
    assert_snapshot!(env.snap(&["runs"]), @"
    exit: 0
    --- stdout
    --- stderr
    No runs yet; `mreg run -- COMMAND` or `mreg push` records one.
    ");
    assert_eq!(env.ok(&["runs", "--json"]).trim(), "[]");
}

/// Waits until what was just written is older than the index's two seconds of doubt, so
/// that the index trusts the entries it makes next.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2_100));
}

#[test]
fn a_changed_run_record_shows_at_once_despite_the_index() {
    let env = TestEnv::with_registry();
    env.ok(&[
        "run", "-q", "--name", "first", "--param", "lr=0.1", "--", "true",
    ]);
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    let run = env.registry().join("runs").join(&id);
    settle();
    // The index now holds the run, and trusts its entry.
    assert_eq!(runs_json(&env)[0]["params"]["lr"], 0.1);
    // A sync or an edit rewrites run.toml in place, to the same size, leaving log/ alone.
    let record = run.join("run.toml");
    let text = std::fs::read_to_string(&record).unwrap();
    let edited = text
        .replace("lr = 0.1", "lr = 0.7")
        .replace("\"first\"", "\"other\"");
    assert_eq!(edited.len(), text.len());
    std::fs::write(&record, edited).unwrap();
    let shown = &runs_json(&env)[0];
    assert_eq!(shown["params"]["lr"], 0.7, "{shown}");
    assert_eq!(shown["name"], "other");
    // An event added is seen at once, as before.
    env.ok(&["log", "--run", &id, "--param", "epochs=3"]);
    assert_eq!(runs_json(&env)[0]["params"]["epochs"], 3);
}
