"""The prediction log: every request the service answers, every prediction, every true label sent back.

One store behind one interface, SQLAlchemy Core: an SQLite file under monitoring/ by default, or any
database SQLAlchemy reaches (`serve.log_url`, e.g. PostgreSQL), which several replicas and `monitor`
share. The service writes through a queue that one thread stores in batches, off the request's path.

Opening a log creates what is missing and migrates what is old, with statements that do nothing the
second time, so any number of replicas may open the same database at once.

Tables:
- `requests`: one row per POST /predict: the version that answered (none when the request was refused
  before reaching a model), its routing key, HTTP status, rows and latency;
- `predictions`: one row per predicted row: its inputs as sent (JSON), the prediction (JSON: a class label,
  or a regression's value) and the probability a classifier gave it (binary: of the positive class;
  multiclass: of the predicted label; none for a regression);
- `feedback`: the true label (a regression's true value) of a predicted row, from POST /feedback; the
  latest one counts.
"""

import json
import os
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from .core import PipelineError, Serve

LOG_URL_VARIABLE = "SERVE_LOG_URL"  # overrides serve.log_url: where a deployment keeps its database's address
BATCH_ROWS = 500
SCHEMA_LOCK = 7_305_211  # any number: the PostgreSQL advisory lock replicas take to create or migrate the tables
_CLOSE = None

metadata = sa.MetaData()
requests_table = sa.Table(
    "requests",
    metadata,
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(64)),
    sa.Column("route_key", sa.String(256)),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Index("requests_by_time", "time"),
)
predictions_table = sa.Table(
    "predictions",
    metadata,
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("prediction", sa.Text, nullable=False),
    sa.Column("probability", sa.Float),  # none for a regression; NOT NULL in logs before it (`_migrate`)
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Index("predictions_by_time", "time"),
    sa.Index("predictions_by_request", "request_id", "row"),
)
feedback_table = sa.Table(
    "feedback",
    metadata,
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Index("feedback_by_request", "request_id", "row"),
)
# The first release's SQLite log wrote times as ISO text ("2026-11-20T09:15:02.123+00:00"); SQLAlchemy's
# SQLite dates are "2026-11-20 09:15:02.123000", and both must sort alike for `monitor --since`.
ISO_TIMES = (
    "UPDATE predictions SET time = replace(substr(time, 1, 23), 'T', ' ') || '000' WHERE time LIKE '____-__-__T%'"
)


# Logs before regression models stored a probability for every prediction (NOT NULL), which a regressor has
# none of. PostgreSQL drops the constraint in place (a no-op the second time); SQLite cannot, so its table
# is copied once into one without it (`_allow_missing_probability_sqlite`). Another database's old log
# needs the same statement run once by hand.
NULLABLE_PROBABILITY = "ALTER TABLE predictions ALTER COLUMN probability DROP NOT NULL"


def _allow_missing_probability_sqlite(engine: sa.Engine) -> None:
    """Rebuild an old SQLite `predictions` table whose probability is NOT NULL, its rows and indexes kept.

    BEGIN IMMEDIATE takes the write lock before the check, so of several workers opening an old log at once
    one rebuilds it and the others, once it is done, find nothing left to do.
    """
    with engine.connect() as connection:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        columns = connection.exec_driver_sql("PRAGMA table_info(predictions)").all()
        if not any(column[1] == "probability" and column[3] for column in columns):  # (cid, name, type, notnull...)
            connection.rollback()
            return
        connection.exec_driver_sql("ALTER TABLE predictions RENAME TO predictions_before_regression")
        for index in predictions_table.indexes:  # index names are the database's: free them for the new table
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
        connection.execute(CreateTable(predictions_table))
        quote = connection.dialect.identifier_preparer.quote  # "row" is a keyword in some databases
        names = ", ".join(quote(column.name) for column in predictions_table.columns)
        connection.exec_driver_sql(
            f"INSERT INTO predictions ({names}) SELECT {names} FROM predictions_before_regression"
        )
        connection.exec_driver_sql("DROP TABLE predictions_before_regression")
        for index in sorted(predictions_table.indexes, key=lambda index: str(index.name)):
            connection.execute(CreateIndex(index))
        connection.commit()


@dataclass(frozen=True)
class AnsweredRequest:
    """One POST /predict as the log records it: the request, and a prediction per row when it was answered."""

    request_id: str
    model_version: str | None
    route_key: str | None
    status: int
    rows: list[dict[str, Any]]
    labels: list[Any]  # per row: the predicted label, or a regression's value
    probabilities: list[float | None]  # per row: a classifier's probability (see `predictions`), else None
    latency_ms: float


@dataclass(frozen=True)
class LoggedWindow:
    """What the log holds since a time: `requests`, and `predictions` with the true `label` where one arrived."""

    requests: pd.DataFrame
    predictions: pd.DataFrame


def log_url(settings: Serve) -> str:
    """Where the log is: $SERVE_LOG_URL, else serve.log_url, else the SQLite file serve.prediction_log."""
    url = os.environ.get(LOG_URL_VARIABLE) or settings.log_url
    if url:
        return url
    settings.prediction_log.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.prediction_log}"


def open_store(url: str) -> sa.Engine:
    """An engine on the log's database, its tables created or migrated: a PipelineError if it cannot be."""
    try:
        engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    except (sa.exc.ArgumentError, ImportError) as error:
        raise PipelineError(f"serve.log_url {url!r} is not a database URL SQLAlchemy can use ({error})") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _write_ahead)
    shown = repr(engine.url)  # SQLAlchemy masks any secret in it
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":  # IF NOT EXISTS alone races there: one replica at a time
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            for table in metadata.sorted_tables:
                connection.execute(CreateTable(table, if_not_exists=True))
                for index in sorted(table.indexes, key=lambda index: str(index.name)):
                    connection.execute(CreateIndex(index, if_not_exists=True))
            if engine.dialect.name == "sqlite":
                connection.execute(sa.text(ISO_TIMES))
            elif engine.dialect.name == "postgresql":
                connection.execute(sa.text(NULLABLE_PROBABILITY))
        if engine.dialect.name == "sqlite":
            _allow_missing_probability_sqlite(engine)
    except sa.exc.SQLAlchemyError as error:
        cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise PipelineError(
            f"cannot open the prediction log at {shown}: {cause} "
            f"(check serve.log_url or ${LOG_URL_VARIABLE}, that the database is up and the user may create tables)"
        ) from None
    return engine


def _write_ahead(connection: Any, _record: Any) -> None:
    """WAL: service workers and `monitor` read and write the file at once; NORMAL: a crash loses at most a batch."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class PredictionLog:
    """The service's writer: `write` queues, one thread stores batches; `close` stores the rest."""

    def __init__(self, url: str):
        self.engine = open_store(url)
        self._pending: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._store_batches, name="prediction-log", daemon=True)
        self._writer.start()

    def write(self, answered: AnsweredRequest) -> None:
        now = datetime.now(UTC)
        self._pending.put(
            (
                "requests",
                {
                    "request_id": answered.request_id,
                    "time": now,
                    "model_version": answered.model_version,
                    "route_key": answered.route_key,
                    "status": answered.status,
                    "rows": len(answered.rows),
                    "latency_ms": answered.latency_ms,
                },
            )
        )
        if answered.model_version is None:
            return
        rows = zip(answered.rows, answered.labels, answered.probabilities, strict=True)
        for index, (row, label, probability) in enumerate(rows):
            prediction = {
                "request_id": answered.request_id,
                "time": now,
                "model_version": answered.model_version,
                "row": index,
                "inputs": json.dumps(row, sort_keys=True),
                "prediction": json.dumps(label),
                "probability": probability,
                "latency_ms": answered.latency_ms,
            }
            self._pending.put(("predictions", prediction))

    def record_feedback(self, request_id: str, row: int, label: Any) -> bool:
        """Store a predicted row's true label; False, storing nothing, when the log has no such row."""
        self.flush()  # the prediction may still be queued
        predicted = sa.select(predictions_table.c.row).where(
            predictions_table.c.request_id == request_id, predictions_table.c.row == row
        )
        with self.engine.begin() as connection:
            if connection.execute(predicted.limit(1)).first() is None:
                return False
            feedback = {"request_id": request_id, "row": row, "time": datetime.now(UTC), "label": json.dumps(label)}
            connection.execute(feedback_table.insert(), [feedback])
        return True

    def flush(self) -> None:
        """Wait until everything written so far is stored."""
        self._pending.join()

    def close(self) -> None:
        self._pending.put(_CLOSE)
        self._writer.join()
        self.engine.dispose()

    def _store_batches(self) -> None:
        closing = False
        while not closing:
            batch = [self._pending.get()]
            while len(batch) < BATCH_ROWS and not self._pending.empty():
                batch.append(self._pending.get_nowait())
            closing = _CLOSE in batch
            records = [record for record in batch if record is not _CLOSE]
            try:
                if records:
                    self._store(records)
            finally:
                for _ in batch:
                    self._pending.task_done()

    def _store(self, records: list[tuple[str, dict[str, Any]]]) -> None:
        by_table: dict[str, list[dict[str, Any]]] = {}
        for table, record in records:
            by_table.setdefault(table, []).append(record)
        with self.engine.begin() as connection:
            for table in sorted(by_table):
                connection.execute(metadata.tables[table].insert(), by_table[table])


def read_log(url: str, since: datetime | None = None) -> LoggedWindow:
    """Every request and prediction logged at or after `since`; times as UTC, labels decoded."""
    engine = open_store(url)
    try:
        with engine.connect() as connection:
            requests = _read(connection, requests_table, since)
            predictions = _read(connection, predictions_table, since)
            feedback = _read(connection, feedback_table, None)
    finally:
        engine.dispose()
    predictions["prediction"] = predictions["prediction"].map(json.loads)
    latest = feedback.sort_values("time", kind="stable").drop_duplicates(["request_id", "row"], keep="last")
    labels = latest.set_index(["request_id", "row"])["label"].map(json.loads)
    predictions = predictions.join(labels, on=["request_id", "row"])
    return LoggedWindow(requests=requests, predictions=predictions)


def _read(connection: sa.Connection, table: sa.Table, since: datetime | None) -> pd.DataFrame:
    query = sa.select(table)
    if since is not None:  # SQLite stores no zone: compare in UTC, as every time is stored
        query = query.where(table.c.time >= since.astimezone(UTC))
    frame = pd.read_sql(query.order_by(table.c.time), connection)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)  # SQLite keeps no zone: every time stored is UTC
    return frame
