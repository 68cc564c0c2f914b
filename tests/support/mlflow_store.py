"""Writes and reads MLflow tracking stores with MLflow itself, for the import tests.

    mlflow_store.py write URI        a store: two experiments, runs with step series,
                                     params, tags and git source, a failed run, a run
                                     still running, a deleted run, and a registered
                                     model with two versions, an alias and a stage
    mlflow_store.py finish URI       ends the run left running, and adds one more run
    mlflow_store.py dump URI         prints every run as JSON, as MLflow reads it back

URI is `sqlite:///PATH` or `file:PATH` (the file store; MLFLOW_ALLOW_FILE_STORE=true).
"""

import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

COMMIT = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def artifacts(folder, weights):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "weights.bin"), "wb") as f:
        f.write(weights)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write('{"layers": 2}\n')


def write(uri):
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    mlflow.set_experiment("churn")
    runs = []
    for i in range(3):
        with mlflow.start_run(run_name=f"train-{i}") as run:
            mlflow.log_params({"lr": 0.1 * (i + 1), "epochs": 20, "optimizer": "adam",
                               "api_key": "sk-not-for-the-registry"})
            mlflow.set_tags({"team": "growth", "mlflow.source.git.commit": COMMIT,
                             "mlflow.source.git.repoURL": "https://github.com/acme/churn"})
            for step in range(40):
                mlflow.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            mlflow.log_metric("acc", 0.80 + 0.05 * i)
            mlflow.log_metric("auc", float("nan"))
            artifacts("out", bytes([i]) * 1000)
            mlflow.log_artifacts("out", artifact_path="model")
            runs.append(run.info.run_id)
    with mlflow.start_run(run_name="oom") as run:
        mlflow.log_param("batch", 4096)
    client.set_terminated(run.info.run_id, status="FAILED")
    mlflow.set_experiment("vision")
    still = client.create_run(mlflow.get_experiment_by_name("vision").experiment_id,
                              run_name="long")
    client.log_metric(still.info.run_id, "loss", 0.5, step=1)
    with mlflow.start_run(run_name="mistake") as run:
        mlflow.log_param("x", 1)
    client.delete_run(run.info.run_id)
    client.create_registered_model("churn")
    for run_id in runs[1:]:
        client.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias("churn", "champion", "1")
    client.transition_model_version_stage("churn", "2", "Production")
    print(json.dumps({"runs": runs, "running": still.info.run_id}))


def finish(uri):
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    running = [r for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="attributes.status = 'RUNNING'")]
    for run in running:
        client.set_terminated(run.info.run_id, status="FINISHED")
    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="train-3"):
        mlflow.log_metric("acc", 0.9)


def dump(uri):
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    out = {}
    experiments = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiments, run_view_type=1):
        history = {
            key: sorted([m.step, m.value if m.value == m.value else "nan", m.timestamp]
                        for m in client.get_metric_history(run.info.run_id, key))
            for key in run.data.metrics
        }
        out[run.info.run_id] = {
            "name": run.info.run_name,
            "status": run.info.status,
            "start": run.info.start_time,
            "end": run.info.end_time,
            "params": run.data.params,
            "tags": {k: v for k, v in run.data.tags.items()},
            "history": history,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    {"write": write, "finish": finish, "dump": dump}[sys.argv[1]](sys.argv[2])
