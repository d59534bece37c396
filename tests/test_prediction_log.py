"""The prediction log in a real PostgreSQL server on 127.0.0.1, shared by two replicas of the service; and the
embedded SQLite log of the first release, migrated in place."""

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from tools.bakery import Project
from tools.postgres import MISSING, Postgres, available, running_postgres
from tools.service import as_request_rows, running_service

from credit_risk.prediction_log import AnsweredRequest, PredictionLog, open_store, read_log

TOKEN = {"SERVE_API_TOKEN": "test-token"}
AUTHORIZED = {"authorization": "Bearer test-token"}


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if not available():
        pytest.skip(MISSING)
    with running_postgres() as server:
        yield server


@pytest.mark.slow
def test_two_replicas_share_one_postgresql_log_and_feedback_reaches_either(reproduced_copy, postgres, tmp_path):
    project: Project = reproduced_copy
    project.command("promote")
    rows = as_request_rows(pd.read_parquet(project.path / "data" / "processed" / "test.parquet").head(10))
    env = {**TOKEN, "SERVE_LOG_URL": postgres.url}
    with (
        running_service(project, log=tmp_path / "a.log", env=env) as first,
        running_service(project, log=tmp_path / "b.log", env=env) as second,
    ):
        answers = [httpx.post(f"{first.url}/predict", json={"rows": rows[:5]}).json()]
        answers.append(httpx.post(f"{second.url}/predict", json={"rows": rows[5:]}).json())
        # the label of a prediction the first replica made arrives at the second
        sent = httpx.post(
            f"{second.url}/feedback",
            json={"request_id": answers[0]["request_id"], "row": 3, "label": 0},
            headers=AUTHORIZED,
        )
        assert sent.status_code == 200, sent.text
    logged = read_log(postgres.url)
    assert sorted(logged.requests["request_id"]) == sorted(answer["request_id"] for answer in answers)
    assert len(logged.predictions) == 10 and set(logged.predictions["model_version"]) == {"v1.0.0"}
    served = [prediction["probability"] for answer in answers for prediction in answer["predictions"]]
    by_answer = logged.predictions.set_index(["request_id", "row"]).sort_index()
    assert sorted(by_answer["probability"]) == sorted(served)
    labelled = by_answer["label"].dropna()
    assert list(labelled.index) == [(answers[0]["request_id"], 3)] and labelled.iloc[0] == 0
    assert not (project.path / "monitoring" / "predictions.sqlite").exists()  # nothing went to the default store


def test_many_replicas_opening_the_log_at_once_create_its_tables_once(postgres):
    with ThreadPoolExecutor(max_workers=6) as pool:
        engines = list(pool.map(lambda _: open_store(postgres.url), range(6)))
    for engine in engines:
        engine.dispose()
    log = PredictionLog(postgres.url)
    log.write(AnsweredRequest("again", "v1.0.0", "user-1", 200, [{"age": 30}], [1], [0.75], 2.0))
    log.close()
    again = read_log(postgres.url)
    assert again.predictions.query("request_id == 'again'")["probability"].tolist() == [0.75]
    assert again.requests.query("request_id == 'again'")["route_key"].tolist() == ["user-1"]


def test_the_first_release_sqlite_log_is_migrated_once_and_keeps_every_prediction(tmp_path):
    path = tmp_path / "predictions.sqlite"
    with sqlite3.connect(path) as connection:  # the table and times as the first release wrote them
        connection.execute(
            "CREATE TABLE predictions (request_id TEXT NOT NULL, time TEXT NOT NULL, model_version TEXT NOT NULL, "
            "row INTEGER NOT NULL, inputs TEXT NOT NULL, prediction TEXT NOT NULL, probability REAL NOT NULL, "
            "latency_ms REAL NOT NULL)"
        )
        connection.execute(
            "INSERT INTO predictions VALUES ('old', '2026-11-20T09:15:02.123+00:00', 'v1.0.0', 0, '{}', '1', 0.7, 3.0)"
        )
    connection.close()
    url = f"sqlite:///{path}"
    for _ in range(2):  # the second opening finds nothing to do
        open_store(url).dispose()
    log = PredictionLog(url)
    log.write(AnsweredRequest("new", "v1.1.0", None, 200, [{}], [0], [0.25], 1.0))
    log.write(AnsweredRequest("value", "v1.2.0", None, 200, [{}], [151.5], [None], 1.0))  # a regressor's
    log.close()
    since = pd.Timestamp("2026-11-20T09:15:02.123Z").to_pydatetime()
    logged = read_log(url, since=since)
    assert logged.predictions["request_id"].tolist() == ["old", "new", "value"]  # both kinds of time sort alike
    assert logged.predictions["prediction"].tolist() == [1, 0, 151.5]
    probabilities = logged.predictions["probability"]
    assert probabilities.tolist()[:2] == [0.7, 0.25] and pd.isna(probabilities.iloc[2])
    assert logged.predictions["time"].iloc[0] == pd.Timestamp("2026-11-20T09:15:02.123Z")
    later = read_log(url, since=since + pd.Timedelta(milliseconds=1)).predictions["request_id"].tolist()
    assert later == ["new", "value"]


def test_an_old_postgresql_log_drops_the_probability_constraint_in_place_for_a_regressor_s_predictions(postgres):
    old = sa.create_engine(postgres.url)
    with old.begin() as connection:  # the table as releases before regression models created it
        connection.execute(sa.text("DROP TABLE IF EXISTS predictions"))
        connection.execute(
            sa.text(
                "CREATE TABLE predictions (request_id VARCHAR(64) NOT NULL, time TIMESTAMP WITH TIME ZONE NOT NULL, "
                'model_version VARCHAR(64) NOT NULL, "row" INTEGER NOT NULL, inputs TEXT NOT NULL, '
                "prediction TEXT NOT NULL, probability FLOAT NOT NULL, latency_ms FLOAT NOT NULL)"
            )
        )
    old.dispose()
    with ThreadPoolExecutor(max_workers=3) as pool:  # replicas opening it at once
        engines = list(pool.map(lambda _: open_store(postgres.url), range(3)))
    for engine in engines:
        engine.dispose()
    log = PredictionLog(postgres.url)
    log.write(AnsweredRequest("value", "v1.0.0", None, 200, [{"age": 30}], [151.5], [None], 2.0))
    log.close()
    stored = read_log(postgres.url).predictions
    assert stored["prediction"].tolist() == [151.5] and stored["probability"].isna().all()
