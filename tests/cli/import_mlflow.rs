//! `mreg import mlflow`: stores written by real MLflow 3 (its SQLite database and its
//! file store), read back by MLflow and compared with what mreg imported.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::{TestEnv, mlflow};

const COMMIT: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Returns the time of a run record (RFC 3339 with milliseconds) in milliseconds.
fn ms(time: &str) -> i64 {
    let t = humantime::parse_rfc3339(time).unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Checks each run MLflow reads back from the store at `uri` (the running one aside)
/// against the run mreg imported; returns how many were checked.
fn runs_match_mlflow(env: &TestEnv, uri: &str) -> usize {
    let mlflow_runs = parse(&mlflow::store(&env.path(""), &["dump", uri]));
    let mut checked = 0;
    for (id, run) in mlflow_runs.as_object().unwrap() {
        // MLflow lists active runs: the deleted one is not among them.
        if run["status"] == "RUNNING" {
            continue;
        }
        let mreg_id = mreg::ops::import::mlflow::run_id_of(id).to_string();
        let ours = parse(&env.ok(&["show", &mreg_id, "--json"]));
        assert_eq!(ours["name"], run["name"]);
        assert_eq!(
            ms(ours["start"].as_str().unwrap()),
            run["start"].as_i64().unwrap()
        );
        assert_eq!(
            ms(ours["end"]["time"].as_str().unwrap()),
            run["end"].as_i64().unwrap()
        );
        let status = run["status"].as_str().unwrap().to_ascii_lowercase();
        assert_eq!(ours["status"], status.as_str());
        assert_eq!(ours["tags"]["mlflow.run_id"], id.as_str());
        for (key, value) in run["params"].as_object().unwrap() {
            let mine = &ours["params"][key];
            if key == "api_key" {
                assert_eq!(mine, "[redacted]", "a secret-looking param is masked");
            } else {
                assert_eq!(
                    mine.to_string().trim_matches('"'),
                    value.as_str().unwrap(),
                    "{key}"
                );
            }
        }
        for (key, history) in run["history"].as_object().unwrap() {
            let series = parse(&env.ok(&["show", &mreg_id, "--series", key, "--json"]));
            let points: Vec<Value> = series["series"][key]["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let value = if p["value"].is_number() {
                        p["value"].clone()
                    } else {
                        json!("nan")
                    };
                    json!([p["step"], value, ms(p["time"].as_str().unwrap())])
                })
                .collect();
            let mut theirs: Vec<Value> = history.as_array().unwrap().clone();
            theirs.sort_by_key(|p| (p[0].as_i64(), p[2].as_i64()));
            assert_eq!(points, theirs, "every point of {key} of run {id}");
        }
        checked += 1;
    }
    checked
}

/// Imports the store at `path` (written with URI `uri`) and checks every run MLflow
/// reads back against the run mreg holds.
fn imports_as_mlflow_reads_it(env: &TestEnv, uri: &str, path: &str, extra: &[&str]) {
    let written = parse(&mlflow::store(&env.path(""), &["write", uri]));
    let mut argv = vec![
        "import",
        "mlflow",
        path,
        "--alias",
        "champion=staging",
        "--json",
    ];
    argv.extend_from_slice(extra);
    let done = parse(&env.ok(&argv));
    assert_eq!(done["runs_found"], 6, "{done}");
    assert_eq!(done["runs_imported"], 4, "{done}");
    assert_eq!(
        done["runs_left_out"],
        json!({"deleted": 1, "still running": 1}),
        "{done}"
    );
    assert_eq!(runs_match_mlflow(env, uri), 4);
    // Git source, as MLflow recorded it.
    let train = written["runs"][2].as_str().unwrap();
    let train_id = mreg::ops::import::mlflow::run_id_of(train).to_string();
    let record = parse(&env.ok(&["show", &train_id, "--json"]));
    assert_eq!(record["source"]["commit"], COMMIT);
    assert_eq!(record["source"]["remote"], "https://github.com/acme/churn");
    assert_eq!(record["params"]["epochs"], 20, "typed as --param types it");

    // Versions, linked to their runs; the stage and the alias moved mreg's stages.
    let versions: BTreeMap<u64, String> = done["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["ref"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(versions[&1], "churn@1");
    assert_eq!(versions[&2], "churn@2");
    let v2 = parse(&env.ok(&["show", "churn@2", "--json"]));
    assert_eq!(v2["run"], train_id.as_str());
    let listed = parse(&env.ok(&["ls", "churn", "--json"]));
    let text = listed.to_string();
    assert!(text.contains("\"production\""), "{text}");
    let stages: BTreeMap<String, String> = done["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_owned(),
                s["ref"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(stages["production"], "churn@2");
    assert_eq!(stages["staging"], "churn@1");
    env.ok(&["pull", "churn@production", "--to", "served"]);
    assert_eq!(
        std::fs::read(env.path("served/weights.bin")).unwrap(),
        vec![2u8; 1000]
    );

    // Again: nothing new. Then the running run ends and one more is logged.
    let mut argv = vec!["import", "mlflow", path, "--json"];
    argv.extend_from_slice(extra);
    let again = parse(&env.ok(&argv));
    assert_eq!(again["runs_imported"], 0, "{again}");
    assert_eq!(again["runs_already"], 4, "{again}");
    assert!(
        again["versions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["new"] == false)
    );
    mlflow::store(&env.path(""), &["finish", uri]);
    let later = parse(&env.ok(&argv));
    assert_eq!(later["runs_imported"], 2, "{later}");
    assert_eq!(parse(&env.ok(&["ls", "--json"]))[0]["versions"], 2);
}

#[test]
fn an_mlflow_database_imports_with_every_point_its_versions_and_stages() {
    let env = TestEnv::with_registry();
    std::fs::create_dir_all(env.path("db")).unwrap();
    // MLflow puts the artifacts in ./mlruns, beside the db/ folder: outside the store's
    // folder, so they are read only when --artifacts allows that folder.
    mlflow::store(&env.path(""), &["write", "sqlite:///db/mlflow.db"]);
    let refused = parse(&env.ok(&["import", "mlflow", "db/mlflow.db", "--json"]));
    let skipped = refused["versions"][0]["skipped"].as_str().unwrap();
    assert!(skipped.contains("outside the store's folder"), "{skipped}");
    let env = TestEnv::with_registry();
    std::fs::create_dir_all(env.path("db")).unwrap();
    imports_as_mlflow_reads_it(
        &env,
        "sqlite:///db/mlflow.db",
        "db/mlflow.db",
        &["--artifacts", "mlruns"],
    );
}

#[test]
fn an_mlflow_file_store_imports_the_same_way() {
    let env = TestEnv::with_registry();
    imports_as_mlflow_reads_it(&env, "file:mlruns", "mlruns", &[]);
}

#[test]
fn what_is_no_mlflow_store_is_said() {
    let env = TestEnv::with_registry();
    env.write("empty/readme.txt", "x");
    let run = env.run(&["import", "mlflow", "empty"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("is no MLflow tracking store"));
    env.write("not.db", "SQLite format 3\0 but not really");
    let run = env.run(&["import", "mlflow", "not.db"]);
    assert_ne!(run.status.code(), Some(0));
    let run = env.run(&["import", "mlflow", "empty", "--alias", "champion"]);
    assert_eq!(run.status.code(), Some(2));
    let run = env.run(&["import", "mlflow", "nowhere"]);
    assert_eq!(run.status.code(), Some(1));
}

#[test]
fn a_store_cannot_lead_the_import_out_of_itself_or_blow_it_up() {
    let env = TestEnv::with_registry();
    mlflow::store(&env.path(""), &["write", "file:mlruns"]);
    // A run's params folder made a link to a folder of secrets.
    env.write("secrets/api_token", "hunter2");
    let params = walkdir::WalkDir::new(env.path("mlruns"))
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name() == "params")
        .unwrap()
        .into_path();
    std::fs::remove_dir_all(&params).unwrap();
    std::os::unix::fs::symlink(env.path("secrets"), &params).unwrap();
    let run = env.run(&["import", "mlflow", "mlruns"]);
    assert_eq!(run.status.code(), Some(1));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains("is a link; an MLflow store holds none"),
        "{said}"
    );
    assert_eq!(env.ok(&["runs", "--json"]).trim(), "[]", "nothing imported");
    std::fs::remove_file(&params).unwrap();
    std::fs::create_dir(&params).unwrap();

    // A meta.yaml of nested aliases, which would expand to gigabytes.
    let meta = params.with_file_name("meta.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    let laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
    std::fs::write(&meta, format!("{laughs}{text}")).unwrap();
    let run = env.run(&["import", "mlflow", "mlruns"]);
    assert_eq!(run.status.code(), Some(1));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(said.contains("uses YAML aliases"), "{said}");
}

#[test]
fn an_alias_wins_over_a_legacy_stage_and_says_so() {
    let env = TestEnv::with_registry();
    mlflow::store(&env.path(""), &["write", "file:mlruns"]);
    let done = parse(&env.ok(&[
        "import",
        "mlflow",
        "mlruns",
        "--alias",
        "champion=production",
        "--json",
    ]));
    let stages = done["stages"].as_array().unwrap();
    let legacy = stages
        .iter()
        .find(|s| s["from"] == "stage Production")
        .unwrap();
    assert_eq!(legacy["moved"], false);
    assert!(
        legacy["refused"]
            .as_str()
            .unwrap()
            .contains("an alias wins over a legacy stage"),
        "{legacy}"
    );
    let alias = stages
        .iter()
        .find(|s| s["from"] == "alias champion")
        .unwrap();
    assert_eq!(
        (alias["ref"].as_str(), alias["moved"].as_bool()),
        (Some("churn@1"), Some(true))
    );
}

#[test]
fn a_database_row_past_the_bound_is_refused_not_read() {
    let env = TestEnv::with_registry();
    mlflow::store(&env.path(""), &["write", "sqlite:///mlflow.db"]);
    let planted = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3; c = sqlite3.connect('mlflow.db'); \
             r = c.execute('select run_uuid from runs').fetchone()[0]; \
             c.execute('insert into params (key, value, run_uuid) values (?, ?, ?)', \
             ('huge', 'x' * (20 << 20), r)); c.commit()",
        ])
        .current_dir(env.path(""))
        .status()
        .unwrap();
    assert!(planted.success());
    let run = env.run(&["import", "mlflow", "mlflow.db"]);
    assert_eq!(run.status.code(), Some(1));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(said.contains("no row may pass 16 MiB"), "{said}");
    assert_eq!(env.ok(&["runs", "--json"]).trim(), "[]", "nothing imported");
}
