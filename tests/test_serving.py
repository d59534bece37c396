"""Serving a baked project's model: batch scoring, the REST service on a real uvicorn server, and no skew
between them and evaluate."""

import json
import math
import signal
import sqlite3
import subprocess

import httpx
import pandas as pd
import pytest
from tools.bakery import Project, md5
from tools.service import as_request_rows, running_service

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

ROWS = 20  # evaluate records the probabilities of the first 20 test rows
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def promoted(reproduced: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The reproduced default project with its model promoted as v1.0.0. Read-only: copy to change."""
    project = reproduced.copy(tmp_path_factory.mktemp("served"))
    project.command("promote")
    return project


def first_test_rows(project: Project) -> pd.DataFrame:
    return pd.read_parquet(project.path / "data" / "processed" / "test.parquet").head(ROWS)


def recorded_probabilities(project: Project) -> list[float]:
    return json.loads((project.path / "metrics" / "sample_predictions.json").read_text())["probabilities"]


def test_batch_scoring_service_and_evaluate_give_the_same_probabilities(promoted, tmp_path):
    project = promoted.copy(tmp_path)
    rows = first_test_rows(project)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    project.set_param("serve.batch_rows", 7)  # several chunks, so chunking is part of what is compared
    project.command("predict", "--input", str(tmp_path / "rows.csv"), "--output", str(tmp_path / "scored.csv"))
    project.command("predict", "--input", str(tmp_path / "rows.parquet"), "--output", str(tmp_path / "scored.parquet"))
    from_csv = pd.read_csv(tmp_path / "scored.csv", float_precision="round_trip")
    from_parquet = pd.read_parquet(tmp_path / "scored.parquet")

    with running_service(project, log=tmp_path / "serve.log") as service:
        single = [httpx.post(f"{service.url}/predict", json={"rows": [row]}) for row in as_request_rows(rows)[:3]]
        batch = httpx.post(f"{service.url}/predict", json={"rows": as_request_rows(rows)})
        metadata = httpx.get(f"{service.url}/metadata").json()
    served = [prediction["probability"] for prediction in batch.json()["predictions"]]

    recorded = recorded_probabilities(project)
    assert len(recorded) == ROWS
    assert from_csv["probability"].tolist() == recorded
    assert from_parquet["probability"].tolist() == recorded
    assert served == recorded
    assert [answer.json()["predictions"][0]["probability"] for answer in single] == recorded[:3]
    added = ["prediction", "probability", "probability_0", "probability_1", "model_version"]  # risk's labels 0 and 1
    assert list(from_csv.columns) == [*rows.columns, *added]
    assert from_parquet["probability_1"].tolist() == recorded
    assert (from_parquet["probability_0"] + from_parquet["probability_1"]).round(12).eq(1).all()
    per_class = [prediction["probabilities"] for prediction in batch.json()["predictions"]]
    assert [answer["1"] for answer in per_class] == recorded
    assert [answer["0"] for answer in per_class] == from_parquet["probability_0"].tolist()
    assert from_csv["credit_amount"].tolist() == rows["credit_amount"].tolist()
    assert set(from_csv["model_version"]) == {"v1.0.0"} == {p["model_version"] for p in batch.json()["predictions"]}
    assert from_csv["prediction"].tolist() == [int(p >= 0.5) for p in recorded]
    assert [p["label"] for p in batch.json()["predictions"]] == from_csv["prediction"].tolist()
    baseline = json.loads((project.path / "production" / "baseline.json").read_text())
    assert metadata["md5"] == md5(project.path / "models" / "model.joblib") == baseline["model_md5"]
    assert metadata["version"] == "v1.0.0" and metadata["source_commit"] == baseline["source_commit"]
    assert "age" in metadata["features"] and "risk" not in metadata["features"]


def bad_requests(good_row: dict, max_rows: int) -> list[tuple[str, object, int, str, str]]:
    """(case, body, status, field named, rule named) for each kind of bad request."""

    def row_with(**changes):
        row = {**good_row, **changes}
        return {"rows": [{key: value for key, value in row.items() if value is not ...}]}

    return [
        ("missing column", row_with(age=...), 422, "rows.0.age", "Field required"),
        ("wrong type", row_with(credit_amount="a lot"), 422, "rows.0.credit_amount", "valid number"),
        ("below the contract's min", row_with(age=12), 422, "rows.0.age", "greater than or equal to 18"),
        ("unknown category", row_with(housing="castle"), 422, "rows.0.housing", "'free', 'own' or 'rent'"),
        ("unknown column", row_with(shoe_size=44), 422, "rows.0.shoe_size", "Extra inputs"),
        ("missing value in a non-nullable column", row_with(duration=None), 422, "rows.0.duration", "valid integer"),
        ("empty list", {"rows": []}, 422, "rows", "at least 1 item"),
        ("too many rows", {"rows": [good_row] * (max_rows + 1)}, 422, "rows", f"at most {max_rows} items"),
        (
            "NaN",
            '{"rows": [' + json.dumps({**good_row, "credit_amount": 0}).replace(": 0", ": NaN") + "]}",
            422,
            "rows.0.credit_amount",
            "finite number",
        ),
        (
            "infinity",
            '{"rows": [' + json.dumps({**good_row, "credit_amount": 0}).replace(": 0", ": Infinity") + "]}",
            422,
            "rows.0.credit_amount",
            "finite number",
        ),
        ("not JSON", "{rows: oops", 422, "", "JSON"),
        ("body over the size limit", {"rows": [good_row], "padding": "x" * 1_100_000}, 413, "body", "over the limit"),
    ]


def test_every_kind_of_bad_request_gets_a_clear_answer_and_the_server_keeps_serving(promoted, tmp_path):
    project = promoted.copy(tmp_path)
    good_row = as_request_rows(first_test_rows(project))[0]
    with running_service(project, log=tmp_path / "serve.log") as service:
        readme = httpx.post(f"{service.url}/predict", content=readme_request(project), headers=JSON)
        assert readme.status_code == 200 and readme.json()["predictions"][0]["model_version"] == "v1.0.0"
        for case, body, status, field, rule in bad_requests(good_row, max_rows=1000):
            content = body if isinstance(body, str) else json.dumps(body)
            answer = httpx.post(f"{service.url}/predict", content=content, headers={"content-type": "application/json"})
            assert answer.status_code == status, (case, answer.text)
            problems = answer.json()["detail"]
            assert any(field in problem["field"] and rule in problem["rule"] for problem in problems), (case, problems)
            assert "Traceback" not in answer.text
            after = httpx.post(f"{service.url}/predict", json={"rows": [good_row]})
            assert after.status_code == 200, (case, after.text)
        metrics = httpx.get(f"{service.url}/metrics").text
    cases = len(bad_requests(good_row, 1000))
    assert prometheus_value(metrics, "requests_total", path="/predict", status="200") == cases + 1
    refused = {"path": "/predict", "model_version": ""}  # no model answered them
    assert prometheus_value(metrics, "requests_total", status="422", **refused) == cases - 1
    assert prometheus_value(metrics, "requests_total", status="413", **refused) == 1
    assert prometheus_value(metrics, "prediction_probability_count") == cases + 1
    assert prometheus_value(metrics, "request_latency_seconds_count", path="/predict") == cases + 1
    assert prometheus_value(metrics, "request_latency_seconds_count", **refused) == cases
    assert "Traceback" not in service.output()


def readme_request(project: Project) -> str:
    """The body of the README's `curl` example, as a reader would paste it."""
    readme = (project.path / "README.md").read_text()
    return readme.split("-d '", 1)[1].split("'", 1)[0]


def prometheus_value(exposition: str, name: str, **labels: str) -> float:
    """The sum of a series' samples whose labels include `labels` (and, unless given, model_version v1.0.0)."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {"model_version": "v1.0.0", **labels}
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and wanted.items() <= sample.labels.items()
    )


def test_two_workers_log_every_prediction_merge_their_metrics_and_shut_down_gracefully(promoted, tmp_path):
    project = promoted.copy(tmp_path)
    project.set_param("serve.workers", 2)
    rows = as_request_rows(first_test_rows(project))
    with running_service(project, log=tmp_path / "serve.log") as service:
        answers = [httpx.post(f"{service.url}/predict", json={"rows": rows[:5]}).json() for _ in range(4)]
        metrics = httpx.get(f"{service.url}/metrics").text
        status = service.stop()
    assert prometheus_value(metrics, "prediction_probability_count") == 4 * 5  # both workers' counts, merged
    # one uvicorn process re-raises the signal once it has shut down; a supervisor of workers exits 0
    assert status in (0, -signal.SIGTERM), service.output()
    assert service.output().count("Application shutdown complete") == 2, service.output()
    with sqlite3.connect(project.path / "monitoring" / "predictions.sqlite") as connection:
        logged = connection.execute(
            "SELECT request_id, row, inputs, prediction, probability, model_version, latency_ms FROM predictions"
        ).fetchall()
    assert len(logged) == 4 * 5
    assert {entry[0] for entry in logged} == {answer["request_id"] for answer in answers}
    first = next(entry for entry in logged if entry[0] == answers[0]["request_id"] and entry[1] == 0)
    assert json.loads(first[2]) == {"risk": None, **rows[0]}  # the contract's columns, as the request gave them
    assert first[4] == answers[0]["predictions"][0]["probability"] and first[5] == "v1.0.0"
    assert all(entry[6] > 0 and not math.isnan(entry[6]) for entry in logged)
    assert "monitoring" not in project.git("status", "--porcelain", "--untracked-files=all").stdout  # git ignores it


def test_a_tampered_model_is_refused_by_predict_and_serve(promoted, tmp_path):
    project = promoted.copy(tmp_path)
    model = project.path / "models" / "model.joblib"
    model.chmod(0o644)
    model.write_bytes(model.read_bytes() + b"tampered")
    first_test_rows(project).to_csv(tmp_path / "rows.csv", index=False)
    for command in (
        ("predict", "--input", str(tmp_path / "rows.csv"), "--output", str(tmp_path / "out.csv")),
        ("serve", "--port", "1"),
    ):
        result = project.command(*command, check=False)
        assert result.returncode == 2, result.stderr
        assert "does not match the md5 recorded for it in dvc.lock" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_predict_names_unknown_and_missing_columns_and_contract_breaks(promoted, tmp_path):
    project = promoted.copy(tmp_path)
    rows = first_test_rows(project)
    cases = {
        "unknown column": (rows.assign(shoe_size=44), "['shoe_size'] are not in the data contract"),
        "missing column": (rows.drop(columns=["age"]), "missing columns ['age']"),
        "contract break": (rows.assign(age=[12] + [40] * (ROWS - 1)), "column 'age': "),
    }
    for case, (frame, message) in cases.items():
        for suffix in (".csv", ".parquet"):
            source, output = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
            frame.to_csv(source, index=False) if suffix == ".csv" else frame.to_parquet(source, index=False)
            result = project.command("predict", "--input", str(source), "--output", str(output), check=False)
            assert result.returncode == 2 and message in result.stderr, (case, suffix, result.stderr)
            assert case != "contract break" or "minimum (value 12.0, threshold 18.0)" in result.stderr
            assert "Traceback" not in result.stderr and not output.exists()


def test_a_promoted_version_scores_from_the_registry_and_is_checked_first(promoted, tmp_path):
    project = promoted.copy(tmp_path)
    promoted_probabilities = recorded_probabilities(project)
    first_test_rows(project).to_parquet(tmp_path / "rows.parquet", index=False)
    project.set_param("train.hist_gradient_boosting.max_leaf_nodes", 4)
    project.dvc("repro")
    assert recorded_probabilities(project) != promoted_probabilities  # the workspace now holds another model

    def score(*version: str) -> subprocess.CompletedProcess[str]:
        return project.command(
            "predict",
            "--input",
            str(tmp_path / "rows.parquet"),
            "--output",
            str(tmp_path / "out.parquet"),
            *version,
            check=False,
        )

    assert score("--model-version", "v1.0.0").returncode == 0
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert scored["probability"].tolist() == promoted_probabilities
    assert set(scored["model_version"]) == {"v1.0.0"}
    assert score().returncode == 0
    assert pd.read_parquet(tmp_path / "out.parquet")["probability"].tolist() == recorded_probabilities(project)

    unknown = score("--model-version", "v9.9.9")
    assert unknown.returncode == 2 and "no registered version v9.9.9" in unknown.stderr and "v1.0.0" in unknown.stderr

    record = json.loads(project.git("show", "credit-risk-model@v1.0.0:production/baseline.json").stdout)
    cached = project.path / ".dvc" / "cache" / "files" / "md5" / record["model_md5"][:2] / record["model_md5"][2:]
    cached.chmod(0o644)
    cached.write_bytes(cached.read_bytes() + b"tampered")
    tampered = score("--model-version", "v1.0.0")
    assert tampered.returncode == 2 and "tampered" in tampered.stderr and "Traceback" not in tampered.stderr
