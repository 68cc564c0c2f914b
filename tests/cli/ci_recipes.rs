//! The CI recipes of docs/ci.md, run as the CI would run them: each shell step of the
//! GitHub Actions workflow and of the GitLab pipeline, in order, with the variables and
//! files those CIs provide, against a small training script. A recipe that stops working
//! fails here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use crate::common::{self, TestEnv};

const TRAIN: &str = r#"
import os, subprocess
acc = os.environ.get("ACC", "0.91")
os.makedirs("out", exist_ok=True)
with open("out/model.bin", "w") as f:
    f.write("weights trained to " + acc + "\n")
for step, loss in enumerate([0.9, 0.5, 0.3], 1):
    subprocess.run(["mreg", "log", "-q", "--metric", f"loss={loss}", "--step", str(step)], check=True)
"#;

const EVALUATE: &str = r#"
import json, os
with open("eval.json", "w") as f:
    json.dump({"acc": float(os.environ.get("ACC", "0.91")), "latency_ms": 12.5}, f)
"#;

/// Returns the first ```yaml block after the heading `heading` of docs/ci.md, parsed.
fn recipe(heading: &str) -> Yaml {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ci.md")).unwrap();
    let section = &doc[doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"))..];
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = start + section[start..].find("\n```").expect("the block's end");
    YamlLoader::load_from_str(&section[start..end])
        .unwrap()
        .remove(0)
}

/// A checkout of the training project, with its own registry, as every job sees it.
struct Project {
    env: TestEnv,
    registry: PathBuf,
}

impl Project {
    fn new() -> Project {
        let env = TestEnv::new();
        env.write("train.py", TRAIN);
        env.write("evaluate.py", EVALUATE);
        env.write("params.yaml", "optimizer:\n  lr: 0.001\nepochs: 3\n");
        let registry = env.root().join("team-registry");
        env.ok(&["init", &registry.display().to_string()]);
        Project { env, registry }
    }

    /// Runs one shell step in the checkout as `bash -eo pipefail`, with the CI's
    /// variables; returns its exit code and output.
    fn step(&self, script: &str, vars: &BTreeMap<String, String>) -> (i32, String) {
        assert!(
            !script.contains("${{"),
            "a step needs the CI's expressions: {script}"
        );
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(self.env.path(""))
            .env_clear()
            .env("PATH", common::test_path())
            .env("HOME", self.env.root().join("home"))
            .env("TMPDIR", self.env.root())
            .env("MREG_REGISTRY", &self.registry)
            .envs(vars)
            .output()
            .unwrap();
        let text = format!(
            "$ {script}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let registry = self.registry.display().to_string();
        let mut all = vec!["--registry", registry.as_str(), "--json"];
        all.extend(args);
        serde_json::from_str(&self.env.ok(&all)).unwrap()
    }
}

/// Runs a GitHub Actions job's `run` steps, skipping the install step (the binary under
/// test is on PATH), with `GITHUB_ENV` carried from step to step as the runner does.
/// Returns the exit code of the first step that failed, with the log so far.
fn github_job(p: &Project, job: &Yaml, extra: &[(&str, &str)]) -> Result<String, (i32, String)> {
    let name = job["name"].as_str().unwrap_or("job");
    let root = p.env.root();
    let github_env = root.join(format!("github-env-{name}"));
    std::fs::write(&github_env, "").unwrap();
    let temp = root.join("runner-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let mut log = String::new();
    for step in job["steps"].as_vec().expect("steps") {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        if step["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Install"))
        {
            continue;
        }
        let mut vars: BTreeMap<String, String> = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.insert("GITHUB_ENV".into(), github_env.display().to_string());
        vars.insert(
            "GITHUB_STEP_SUMMARY".into(),
            summary(root).display().to_string(),
        );
        vars.insert("RUNNER_TEMP".into(), temp.display().to_string());
        for line in std::fs::read_to_string(&github_env).unwrap().lines() {
            let (k, v) = line.split_once('=').expect("KEY=VALUE lines");
            vars.insert(k.to_owned(), v.to_owned());
        }
        let (code, text) = p.step(script, &vars);
        log.push_str(&text);
        if code != 0 {
            return Err((code, log));
        }
    }
    Ok(log)
}

fn summary(root: &Path) -> PathBuf {
    root.join("step-summary.md")
}

/// Runs a GitLab CI job's script lines in one shell, as the runner does.
fn gitlab_job(p: &Project, job: &Yaml, extra: &[(&str, &str)]) -> Result<String, (i32, String)> {
    let lines: Vec<&str> = job["script"]
        .as_vec()
        .expect("a script")
        .iter()
        .map(|l| l.as_str().expect("a script line"))
        .collect();
    let vars: BTreeMap<String, String> = [("GITLAB_CI", "true"), ("GITLAB_USER_LOGIN", "alice")]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let (code, text) = p.step(&lines.join("\n"), &vars);
    if code == 0 {
        Ok(text)
    } else {
        Err((code, text))
    }
}

#[test]
fn the_github_actions_recipe_trains_gates_and_promotes() {
    let workflow = recipe("## GitHub Actions");
    let jobs = &workflow["jobs"];
    let p = Project::new();
    github_job(&p, &jobs["train"], &[]).unwrap_or_else(|(c, log)| panic!("exit {c}:\n{log}"));
    // The version comes from the training run: its params and loss curve, its metrics.
    let version = p.json(&["show", "churn@1"]);
    let run = p.json(&["show", version["run"].as_str().unwrap()]);
    assert_eq!(run["params"]["optimizer.lr"], 0.001, "{run}");
    assert_eq!(run["series"]["loss"]["count"], 3, "{run}");
    assert_eq!(version["metrics"]["acc"], 0.91, "{version}");
    assert_eq!(version["actor"], "octocat@github");
    github_job(&p, &jobs["promote"], &[]).unwrap_or_else(|(c, log)| panic!("exit {c}:\n{log}"));
    let ls = p.json(&["ls"]);
    assert_eq!(ls[0]["stages"]["production"], 1, "{ls}");
    assert!(p.env.root().join("runner-temp/model/model.bin").is_file());
    let text = std::fs::read_to_string(summary(p.env.root())).unwrap();
    assert!(text.contains("### churn@1 → staging: promoted"), "{text}");
    assert!(
        text.contains("### churn@1 → production: promoted"),
        "{text}"
    );

    // A worse model is stopped at the staging gate: the step fails with exit 3, and the
    // summary says why.
    let (code, log) = github_job(&p, &jobs["train"], &[("ACC", "0.8")]).unwrap_err();
    assert_eq!(code, 3, "{log}");
    let text = std::fs::read_to_string(summary(p.env.root())).unwrap();
    assert!(text.contains("### churn@2 → staging: refused"), "{text}");
    assert!(text.contains("0.8 is not &gt; 0.85"), "{text}");
    let ls = p.json(&["ls"]);
    assert_eq!(ls[0]["stages"]["staging"], 1, "{ls}");
}

#[test]
fn the_gitlab_recipe_trains_gates_and_promotes() {
    let pipeline = recipe("## GitLab CI");
    let p = Project::new();
    gitlab_job(&p, &pipeline["train"], &[]).unwrap_or_else(|(c, log)| panic!("exit {c}:\n{log}"));
    let version = p.json(&["show", "churn@1"]);
    let run = p.json(&["show", version["run"].as_str().unwrap()]);
    assert_eq!(run["series"]["loss"]["count"], 3, "{run}");
    assert_eq!(run["metrics"]["acc"], 0.91, "{run}");
    gitlab_job(&p, &pipeline["promote"], &[]).unwrap_or_else(|(c, log)| panic!("exit {c}:\n{log}"));
    let ls = p.json(&["ls"]);
    assert_eq!(ls[0]["stages"]["production"], 1, "{ls}");
    let history = p.json(&["history", "churn"]);
    assert_eq!(history[0]["actor"], "alice@gitlab", "{history}");
    let report = std::fs::read_to_string(p.env.path("gate-report.md")).unwrap();
    assert!(
        report.contains("### churn@1 → production: promoted"),
        "{report}"
    );
    assert!(p.env.path("model/model.bin").is_file());
}
