"""Serving per task: a multiclass and a regression model, built here on tiny synthetic data, answered through
the one scoring path (batch scoring, the service, its log and metrics) and compared with scikit-learn's own
predictions."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression, Ridge

from {{ cookiecutter.package_name }}.core import load_params
from {{ cookiecutter.package_name }}.model import build_pipeline
from {{ cookiecutter.package_name }}.prediction_log import PredictionLog, open_store, read_log
from {{ cookiecutter.package_name }}.schema import ColumnSpec, Schema
from {{ cookiecutter.package_name }}.serve import Release, Router, build_app
from {{ cookiecutter.package_name }}.serving import ServingModel, _scored, _write
from {{ cookiecutter.package_name }}.task import Task

CLASSES = ["class_0", "class_1", "class_2"]
TOKEN = "secret"


def rows(count: int = 90) -> pd.DataFrame:
    generator = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "amount": generator.normal(size=count),
            "colour": pd.Categorical(generator.choice(["red", "blue"], size=count)),
        }
    )


def served_model(task: Task) -> ServingModel:
    """A model trained here through the project's own pipeline: three classes, or a numeric target."""
    features = rows()
    if task == "multiclass":
        target = np.array(CLASSES, dtype=object)[np.digitize(features["amount"], [-0.4, 0.4])]
        estimator, spec = LogisticRegression(), ColumnSpec(type="categorical", allowed=tuple(CLASSES))
    else:
        target = 3 * features["amount"].to_numpy() + (features["colour"] == "red") + 10
        estimator, spec = Ridge(), ColumnSpec(type="numeric", min=0, max=20)
    pipeline = build_pipeline(["amount"], ["colour"], estimator).fit(features, target)
    schema = Schema(
        columns={
            "amount": ColumnSpec(type="numeric"),
            "colour": ColumnSpec(type="categorical", allowed=("red", "blue")),
            "outcome": spec,
        }
    )
    return ServingModel(
        pipeline=pipeline,
        schema=schema,
        artifact="model",
        version="v1.0.0",
        target="outcome",
        md5="0" * 32,
        source_commit=None,
        threshold=0.5,
        task=task,
        positive_label=None,
        negative_label=None,
    )


def test_a_multiclass_model_answers_the_most_probable_class_its_probability_and_every_class_s():
    model = served_model("multiclass")
    given = rows(12)
    scored = model.score(given)
    expected = model.pipeline.predict_proba(model.typed(given))
    assert scored.values.tolist() == model.pipeline.predict(model.typed(given)).tolist()
    assert scored.classes == CLASSES and scored.probability is not None
    assert np.array_equal(scored.probability, expected.max(axis=1))
    for answer, probabilities in zip(scored.answers(), expected, strict=True):
        assert answer["probabilities"] == dict(zip(CLASSES, probabilities.tolist(), strict=True))
        assert answer["probability"] == answer["probabilities"][answer["label"]]


def test_a_regression_model_answers_its_value_and_nothing_of_probabilities():
    model = served_model("regression")
    given = rows(12)
    scored = model.score(given)
    assert np.array_equal(scored.values, model.pipeline.predict(model.typed(given)))
    assert scored.probability is None and scored.classes == []
    assert scored.answers() == [{"value": value} for value in scored.values.tolist()]


@pytest.mark.parametrize(
    ("task", "added"),
    [
        ("multiclass", ["prediction", "probability", *(f"probability_{label}" for label in CLASSES)]),
        ("regression", ["prediction"]),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batch_scoring_adds_the_task_s_columns(tmp_path, task, added, suffix):
    model = served_model(task)
    given = rows(7)
    chunks = iter([given.iloc[:4], given.iloc[4:]])  # two chunks: the same columns and types in each
    destination = tmp_path / f"scored{suffix}"
    assert _write(_scored(chunks, model, Path("rows.csv")), destination, model.schema) == 7
    written = pd.read_csv(destination) if suffix == ".csv" else pd.read_parquet(destination)
    assert list(written.columns) == ["amount", "colour", *added, "model_version"]
    scored = model.score(given)
    if task == "regression":
        assert np.allclose(written["prediction"], scored.values, rtol=0, atol=1e-12)
        return
    assert written["prediction"].tolist() == scored.values.tolist() and scored.probabilities is not None
    assert np.allclose(written["probability_class_1"], scored.probabilities[:, 1], rtol=0, atol=1e-12)


def service(task: Task, log_file: Path) -> TestClient:
    model = served_model(task)
    settings = load_params().serve
    router = Router(lambda: Release(model, None), settings)
    return TestClient(build_app(router, settings, PredictionLog(f"sqlite:///{log_file}"), TOKEN))


def test_the_service_answers_logs_and_counts_a_regressor_s_values(tmp_path):
    log_file = tmp_path / "log.sqlite"
    with service("regression", log_file) as client:
        answer = client.post(
            "/predict", json={"rows": [{"amount": 0.5, "colour": "red"}, {"amount": -1.0, "colour": "blue"}]}
        )
        assert answer.status_code == 200
        predictions = answer.json()["predictions"]
        assert [set(prediction) for prediction in predictions] == [{"value", "model_version"}] * 2
        request_id = answer.json()["request_id"]
        sent = {"request_id": request_id, "row": 1, "label": 7.25}
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/feedback", json=sent, headers=headers).status_code == 200
        too_big = client.post("/feedback", json={**sent, "label": 21}, headers=headers)
        assert too_big.status_code == 422  # the contract's range for the target
        assert client.post("/feedback", json={**sent, "label": "high"}, headers=headers).status_code == 422
        metrics = client.get("/metrics").text
        assert 'prediction_value_count{model_version="v1.0.0"} 2.0' in metrics
        assert "prediction_probability" not in metrics
    logged = read_log(f"sqlite:///{log_file}").predictions
    assert logged["prediction"].tolist() == [prediction["value"] for prediction in predictions]
    assert logged["probability"].isna().all() and logged["label"].tolist()[1] == 7.25


def test_the_service_answers_a_multiclass_label_with_every_class_s_probability(tmp_path):
    log_file = tmp_path / "log.sqlite"
    with service("multiclass", log_file) as client:
        answer = client.post("/predict", json={"rows": [{"amount": 2.0, "colour": "red"}]})
        prediction = answer.json()["predictions"][0]
        assert set(prediction["probabilities"]) == set(CLASSES)
        assert prediction["probability"] == max(prediction["probabilities"].values())
        headers = {"Authorization": f"Bearer {TOKEN}"}
        sent = {"request_id": answer.json()["request_id"], "row": 0, "label": "class_2"}
        assert client.post("/feedback", json=sent, headers=headers).status_code == 200
        assert client.post("/feedback", json={**sent, "label": "class_9"}, headers=headers).status_code == 422
        assert 'prediction_probability_count{model_version="v1.0.0"} 1.0' in client.get("/metrics").text
    logged = read_log(f"sqlite:///{log_file}").predictions
    assert logged["prediction"].tolist() == [prediction["label"]]
    assert logged["probability"].tolist() == [prediction["probability"]] and logged["label"].tolist() == ["class_2"]


OLD_PREDICTIONS = """CREATE TABLE predictions (request_id VARCHAR(64) NOT NULL, time DATETIME NOT NULL,
model_version VARCHAR(64) NOT NULL, "row" INTEGER NOT NULL, inputs TEXT NOT NULL, prediction TEXT NOT NULL,
probability FLOAT NOT NULL, latency_ms FLOAT NOT NULL)"""


def test_an_old_sqlite_log_is_migrated_in_place_so_it_can_hold_a_regressor_s_predictions(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # a log as the releases before regression models wrote it
        connection.exec_driver_sql(OLD_PREDICTIONS)
        connection.exec_driver_sql("CREATE INDEX predictions_by_time ON predictions (time)")
        connection.exec_driver_sql(
            "INSERT INTO predictions VALUES ('r1', '2026-11-20 09:15:02.123000', 'v1.0.0', 0, '{}', '1', 0.8, 3.0)"
        )
    engine.dispose()
    for _ in range(2):  # the second opening finds nothing left to do
        open_store(url).dispose()
    inspector = sa.inspect(sa.create_engine(url))
    probability = next(column for column in inspector.get_columns("predictions") if column["name"] == "probability")
    assert probability["nullable"] is True
    assert {index["name"] for index in inspector.get_indexes("predictions")} == {
        "predictions_by_time",
        "predictions_by_request",
    }
    PredictionLog(url).close()  # the service opens it as well
    kept = read_log(url).predictions
    assert kept["request_id"].tolist() == ["r1"] and kept["probability"].tolist() == [0.8]
    assert json.dumps(kept["prediction"].tolist()) == "[1]"
