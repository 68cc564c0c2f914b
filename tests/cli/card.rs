//! `mreg card`: a version's model card, read back by Hugging Face's own `ModelCard`.

use std::process::Command;

use crate::common::TestEnv;
use insta::assert_snapshot;

/// Pushes churn@1 from a run with params, data and metrics, and promotes it.
fn carded() -> TestEnv {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    env.write("data/train.csv", "a,b\n1,2\n");
    env.ok(&[
        "push",
        "out",
        "--model",
        "churn",
        "--param",
        "lr=0.001",
        "--metric",
        "acc=0.91",
        "--metric",
        "loss=0.3",
        "--metric",
        "diverged=nan",
        "--data",
        "data/train.csv",
        "--message",
        "first | run",
    ]);
    env.ok(&["promote", "churn@1", "production", "--gate", "acc>0.85"]);
    env
}

#[test]
fn a_card_tells_what_the_registry_recorded() {
    let env = carded();
    // The machine's own facts (OS, container, GPUs) vary by machine.
    let snap = env.snap(&["card", "churn@production"]);
    let kept: Vec<&str> = snap
        .lines()
        .filter(|l| {
            !["| OS |", "| Container |", "| GPUs |"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    let shown = kept.join("\n") + "\n";
    assert_snapshot!(shown, @r#"
    exit: 0
    --- stdout
    ---
    tags:
    - "mreg"
    - "churn"
    datasets:
    - "data/train.csv"
    model-index:
    - name: "churn@1"
      results:
      - task:
          type: "other"
        dataset:
          name: "hold-out"
          type: "hold-out"
        metrics:
        - type: "acc"
          name: "acc"
          value: 0.91
        - type: "loss"
          name: "loss"
          value: 0.3
    ---

    # churn@1

    | Version |  |
    |---|---|
    | Tree | 6b24fac002fe5a7cf20cc868a55191fa6ded1a9689eea94e8971041facd121e8 |
    | Files | 4 (476 B) |
    | Pushed | 2026-01-01T00:01:00Z by tester@ci |
    | Message | first \| run |
    | Stages | production |

    ## Intended use

    _Not written yet: `mreg model set churn --intended-use TEXT` records it._

    ## Limitations

    _Not written yet: `mreg model set churn --limitations TEXT` records it._

    ## Training

    |  |  |
    |---|---|
    | Run | eb16012c5aff4a1a |
    | Experiment | churn |
    | Started | 2026-01-01T00:01:00.000Z by tester@ci |

    ## Training data

    | Input | Identity |
    |---|---|
    | data/train.csv | file blake3 c42223f1fbf292f60491e1d0666e49af4b7eb75a63385041b98391acecf68562 |

    ## Hyperparameters

    | Param | Value |
    |---|---|
    | lr | 0.001 |

    ## Evaluation

    | Metric | Value |
    |---|---|
    | acc | 0.91 |
    | diverged | NaN |
    | loss | 0.3 |

    ## Environment

    |  |  |
    |---|---|

    ## Stage history

    | # | Time | Action | Stage | By | Checks |
    |---|---|---|---|---|---|
    | 1 | 2026-01-01T00:02:00Z | promote | production | tester@ci | 1 of 1 passed |
    --- stderr
    "#);
    assert_eq!(
        env.run(&["card", "churn@1", "--json"]).status.code(),
        Some(2)
    );
}

#[test]
fn hugging_face_reads_the_card_and_its_eval_results_are_the_registrys_metrics() {
    crate::common::hf::ensure();
    let env = carded();
    env.ok(&[
        "model",
        "set",
        "churn",
        "--license",
        "apache-2.0",
        "--tag",
        "tabular,churn",
        "--description",
        "Predicts which subscribers cancel.",
        "--limitations",
        "Not for accounts younger than 30 days.",
    ]);
    let card = env.write(
        "README.md",
        env.ok(&[
            "card",
            "churn@production",
            "--task",
            "tabular-classification",
        ]),
    );
    let script = r#"
import json, sys
from huggingface_hub import ModelCard
card = ModelCard.load(sys.argv[1])
print(json.dumps({
    "results": {r.metric_type: r.metric_value for r in card.data.eval_results},
    "task": card.data.eval_results[0].task_type,
    "datasets": card.data.datasets,
    "tags": card.data.tags,
    "license": card.data.license,
    "text": card.text,
}))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &card.display().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown: serde_json::Value =
        serde_json::from_str(&env.ok(&["show", "churn@1", "--json"])).unwrap();
    // Every finite metric of the version, exactly; NaN is left out of model-index.
    assert_eq!(read["results"]["acc"], shown["metrics"]["acc"]);
    assert_eq!(read["results"]["loss"], shown["metrics"]["loss"]);
    assert_eq!(read["results"].as_object().unwrap().len(), 2, "{read}");
    assert_eq!(read["task"], "tabular-classification");
    assert_eq!(read["datasets"], serde_json::json!(["data/train.csv"]));
    // The model's own tags join the card's, each once; its license is the card's.
    assert_eq!(
        read["tags"],
        serde_json::json!(["mreg", "churn", "tabular"])
    );
    assert_eq!(read["license"], "apache-2.0");
    let text = read["text"].as_str().unwrap();
    assert!(
        text.contains("\nPredicts which subscribers cancel.\n"),
        "{text}"
    );
    assert!(
        text.contains("## Limitations\n\nNot for accounts younger than 30 days.\n"),
        "{text}"
    );
}

#[test]
fn pull_card_writes_readme_beside_the_model_and_keeps_one_of_its_own() {
    let env = carded();
    env.ok(&["pull", "churn@production", "--to", "serve", "--card"]);
    let readme = std::fs::read_to_string(env.path("serve/README.md")).unwrap();
    assert_eq!(readme, env.ok(&["card", "churn@production"]));
    // The model's own files are as pushed.
    assert_eq!(
        std::fs::read(env.path("serve/config.json")).unwrap(),
        std::fs::read(env.path("out/config.json")).unwrap()
    );
    // A version with a README.md of its own keeps it.
    env.write("out/README.md", "# ours\n");
    env.ok(&["push", "out", "--model", "churn"]);
    let err = env.ok_err(&["pull", "churn@2", "--to", "serve2", "--card"]);
    assert!(err.contains("has a README.md of its own"), "{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("serve2/README.md")).unwrap(),
        "# ours\n"
    );
}
