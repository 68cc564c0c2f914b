//! No secret is recorded: secret-looking params and tags, and secrets in the command
//! line of `mreg run` (flags, headers, URL credentials, inside an `sh -c` script), are
//! masked before anything is written, with a warning naming each masked key.

use crate::cli::run::{runs_json, timed_snapshot};
use crate::common::{TestEnv, snapshot_files};
use insta::assert_snapshot;

/// Returns the text of the first record of the only run.
fn run_toml(env: &TestEnv) -> String {
    let id = runs_json(env)[0]["id"].as_str().unwrap().to_owned();
    std::fs::read_to_string(env.registry().join("runs").join(id).join("run.toml")).unwrap()
}

/// Asserts that no file of the registry holds any of `secrets`.
fn assert_nowhere(env: &TestEnv, secrets: &[&str]) {
    for (path, bytes) in snapshot_files(&env.registry()) {
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} reached {path}:\n{text}");
        }
    }
}

#[test]
fn secret_params_and_command_line_secrets_are_masked_when_recorded() {
    let env = TestEnv::with_registry();
    env.write("params.yaml", "lr: 0.1\nauth:\n  token: file_tok_9\n");
    let script = "echo https://u:p@h/x; echo \"Authorization: Bearer xyz\" >/dev/null; echo done";
    timed_snapshot!(env.snap(&[
        "run", "--param", "api_key=abc_s3cr3t", "--params-file", "params.yaml",
        "--tag", "hf_token=tag_tok_7", "--param", "tokenizer=bpe", "--", "sh", "-c", script,
    ]), @r#"
    exit: 0
    --- stdout
    https://u:p@h/x
    done
    --- stderr
    warning: param api_key looks like a secret: its value is recorded as [redacted]; if it is no secret, pass --not-secret api_key to record it as given
    warning: param auth.token looks like a secret: its value is recorded as [redacted]; if it is no secret, pass --not-secret auth.token to record it as given
    warning: tag hf_token looks like a secret: its value is recorded as [redacted]; if it is no secret, pass --not-secret hf_token to record it as given
    Started run ef454d5b92e8397d (experiment default): sh -c 'echo https://h/x; echo "Authorization: Bearer [redacted]" >/dev/null; echo done'
    Run ef454d5b92e8397d finished after [TIME] (exit code 0).
    "#);
    let record = run_toml(&env);
    for secret in ["abc_s3cr3t", "p@", "xyz", "file_tok_9", "tag_tok_7"] {
        assert!(
            !record.contains(secret),
            "{secret} is in run.toml:\n{record}"
        );
    }
    assert!(
        record.contains(
            r#"'echo https://h/x; echo "Authorization: Bearer [redacted]" >/dev/null; echo done'"#
        ),
        "the script keeps its text:\n{record}"
    );
    let run = &runs_json(&env)[0];
    assert_eq!(run["params"]["api_key"], "[redacted]");
    assert_eq!(run["params"]["auth.token"], "[redacted]");
    assert_eq!(run["params"]["tokenizer"], "bpe");
    assert_eq!(run["params"]["lr"], 0.1);
    assert_eq!(run["tags"]["hf_token"], "[redacted]");
    assert_nowhere(
        &env,
        &["abc_s3cr3t", "u:p@", "xyz", "file_tok_9", "tag_tok_7"],
    );
}

#[test]
fn log_masks_its_params_and_not_secret_keeps_one() {
    let env = TestEnv::with_registry();
    env.ok(&["run", "-q", "--", "true"]);
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    let out = env.run(&[
        "log",
        "--run",
        &id,
        "--param",
        "db.password=hunter2",
        "--param",
        "max_token_count=4096",
        "--param",
        "data=https://alice:pw_5@data.example.com/train.csv",
        "--param",
        "auth=sso",
        "--not-secret",
        "auth",
        "--not-secret",
        "lr",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&id, "[ID]");
    assert_snapshot!(stderr, @r#"
    warning: param data holds credentials (in a URL, a header or under a secret-looking key): it is recorded as "https://data.example.com/train.csv"; if it is no secret, pass --not-secret data to record it as given
    warning: param db.password looks like a secret: its value is recorded as [redacted]; if it is no secret, pass --not-secret db.password to record it as given
    warning: --not-secret lr: no param or tag lr was masked, so there is nothing to keep
    Logged 4 params to run [ID]
    "#);
    assert!(out.status.success());
    let run = &runs_json(&env)[0];
    assert_eq!(run["params"]["db.password"], "[redacted]");
    assert_eq!(run["params"]["auth"], "sso");
    assert_eq!(run["params"]["max_token_count"], 4096);
    assert_eq!(run["params"]["data"], "https://data.example.com/train.csv");
    assert_nowhere(&env, &["hunter2", "pw_5"]);
}

#[test]
fn a_script_that_logs_secrets_records_none() {
    let env = TestEnv::with_registry();
    let script = "mreg log -q --param db.password=pw_3 --tag ci_token=tk_4; \
                  HF_TOKEN=hf_6 true --hf-token hf_8";
    env.ok(&["run", "-q", "--", "sh", "-c", script]);
    let record = run_toml(&env);
    assert!(
        record.contains(
            "mreg log -q --param db.password=[redacted] --tag ci_token=[redacted]; \
             HF_TOKEN=[redacted] true --hf-token [redacted]"
        ),
        "{record}"
    );
    assert_nowhere(&env, &["pw_3", "tk_4", "hf_6", "hf_8"]);
}

#[test]
fn free_text_and_attached_user_flags_are_masked_when_recorded() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    let out = env.run(&[
        "push",
        "v1",
        "--model",
        "m",
        "--message",
        "from https://bob:msg_pw_1@data.example.com/x with HF_TOKEN=msg_tok_2",
        "--experiment",
        "exp API_KEY=exp_key_3",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_snapshot!(stderr, @r#"
    warning: --message holds credentials (in a URL, a header or under a secret-looking key): it is recorded as "from https://data.example.com/x with HF_TOKEN=[redacted]"
    warning: --experiment holds credentials (in a URL, a header or under a secret-looking key): it is recorded as "exp API_KEY=[redacted]"
    Stored 4 files (476 B, 476 B new) as m@1, from run 62a0cfda3d5c1e28.
    "#);
    env.write("v1/build.txt", "build 2\n");
    env.ok(&["push", "v1", "--model", "m"]);
    env.ok(&[
        "promote",
        "m@1",
        "production",
        "--force",
        "--reason",
        "first",
    ]);
    let out = env.run(&[
        "promote",
        "m@2",
        "production",
        "--force",
        "--reason",
        "ok'd by ops, see 'Authorization: Bearer reason_tok_4'",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.ok(&[
        "rollback",
        "m",
        "production",
        "--reason",
        "password=rb_pw_5 leaked",
    ]);
    env.write(
        "params.json",
        r#"{"hubs": [{"name": "hf", "token": "list_tok_6"}, {"name": "s3", "api_key": 77}]}"#,
    );
    env.ok(&[
        "run", "-q", "--name", "nightly https://x:name_pw_7@h/", "--experiment",
        "exp --password exp_pw_8", "--params-file", "params.json", "--", "sh", "-c",
        "curl -ubob:argv_pw_9 --user=bob:argv_pw_10 --proxy-user=p:argv_pw_11 https://h/ >/dev/null 2>&1; true",
    ]);
    let run = &runs_json(&env)[0];
    assert_eq!(run["name"], "nightly https://h/");
    assert_eq!(run["experiment"], "exp --password [redacted]");
    assert_eq!(
        run["params"]["hubs"],
        r#"[{"name":"hf","token":"[redacted]"},{"name":"s3","api_key":"[redacted]"}]"#
    );
    let record = run_toml(&env);
    assert!(
        record.contains("curl -ubob:[redacted] --user=bob:[redacted] --proxy-user=p:[redacted]"),
        "{record}"
    );
    let history = env.ok(&["history", "m", "--json"]);
    assert!(history.contains("Bearer [redacted]"), "{history}");
    assert!(history.contains("password=[redacted] leaked"), "{history}");
    assert_nowhere(
        &env,
        &[
            "msg_pw_1",
            "msg_tok_2",
            "exp_key_3",
            "reason_tok_4",
            "rb_pw_5",
            "list_tok_6",
            "\"api_key\":77",
            "name_pw_7",
            "exp_pw_8",
            "argv_pw_9",
            "argv_pw_10",
            "argv_pw_11",
        ],
    );
}
