"""Serving a multiclass and a regression project end to end: baked with its task's example data, reproduced and
promoted, scored in batch and by the REST service on a real uvicorn server with the figures evaluate recorded,
its answers labelled through /feedback, then judged by `monitor` against its evaluation."""

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import f1_score, mean_absolute_error
from tools.bakery import Project, bake_project
from tools.service import as_request_rows, running_service

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

TOKEN = "test-token"
TARGETS = {"multiclass": "cultivar", "regression": "progression"}


@pytest.fixture(scope="module", params=["multiclass", "regression"])
def promoted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A project of that task, reproduced, committed and promoted as v1.0.0."""
    project = bake_project(tmp_path_factory.mktemp(request.param), task=request.param)
    project.dvc("repro")
    project.commit_all("Run the pipeline")
    project.command("promote")
    yield project


def test_each_task_is_served_as_evaluate_scored_it_and_monitored_against_its_evaluation(promoted, tmp_path):
    project = promoted.copy(tmp_path / "project")
    task = yaml.safe_load((project.path / "params.yaml").read_text())["data"]["task"]
    target = TARGETS[task]
    test = pd.read_parquet(project.path / "data" / "processed" / "test.parquet")
    recorded = json.loads((project.path / "metrics" / "sample_predictions.json").read_text())
    shown = test.loc[recorded["rows"]]
    shown.to_parquet(tmp_path / "rows.parquet", index=False)
    project.command("predict", "--input", str(tmp_path / "rows.parquet"), "--output", str(tmp_path / "scored.parquet"))
    scored = pd.read_parquet(tmp_path / "scored.parquet")

    with running_service(project, log=tmp_path / "serve.log", env={"SERVE_API_TOKEN": TOKEN}) as service:
        answer = httpx.post(f"{service.url}/predict", json={"rows": as_request_rows(shown, target)}).json()
        headers = {"authorization": f"Bearer {TOKEN}"}
        for row, truth in enumerate(shown[target].tolist()):
            sent = {"request_id": answer["request_id"], "row": row, "label": truth}
            assert httpx.post(f"{service.url}/feedback", json=sent, headers=headers).status_code == 200
        metrics = httpx.get(f"{service.url}/metrics").text
    served = answer["predictions"]

    if task == "regression":
        assert [prediction["value"] for prediction in served] == recorded["predictions"]
        assert scored["prediction"].tolist() == recorded["predictions"]
        assert list(scored.columns) == [*shown.columns, "prediction", "model_version"]
        assert f'prediction_value_count{{model_version="v1.0.0"}} {float(len(shown))}' in metrics
    else:
        classes = recorded["classes"]
        assert [list(prediction["probabilities"].values()) for prediction in served] == recorded["probabilities"]
        assert [list(prediction["probabilities"]) for prediction in served] == [classes] * len(shown)
        labels = [classes[int(np.argmax(row))] for row in recorded["probabilities"]]
        assert [prediction["label"] for prediction in served] == labels == scored["prediction"].tolist()
        assert scored[[f"probability_{label}" for label in classes]].to_numpy().tolist() == recorded["probabilities"]
        assert f'prediction_probability_count{{model_version="v1.0.0"}} {float(len(shown))}' in metrics

    project.set_param("monitor.min_requests", 1)
    project.set_param("monitor.min_labelled", 1)
    project.command("monitor", check=False)
    figures = json.loads((project.path / "monitoring" / "report.json").read_text())["versions"]["v1.0.0"]
    evaluation = json.loads((project.path / "metrics" / "evaluation.json").read_text())
    truth = shown[target].tolist()
    if task == "regression":
        predicted = recorded["predictions"]
        assert figures["mae"] == pytest.approx(mean_absolute_error(truth, predicted), abs=1e-6)
        shift = abs(np.mean(predicted) - evaluation["prediction_mean"]) / evaluation["prediction_std"]
        assert figures["prediction_mean_shift"] == pytest.approx(shift, abs=1e-5)
    else:
        assert figures["f1_macro"] == pytest.approx(f1_score(truth, labels, average="macro"), abs=1e-6)
        shares = pd.Series(labels).value_counts(normalize=True)
        gap = max(abs(shares.get(label, 0.0) - share) for label, share in evaluation["predicted_share"].items())
        assert figures["class_share_gap"] == pytest.approx(gap, abs=1e-5)
    assert "drift" in figures and set(figures["drift"]["psi"]) <= set(shown.columns) - {target}
