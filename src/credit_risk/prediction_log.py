"""The prediction log: every prediction the service makes, for monitoring and audits.

`PredictionLog` is the interface the service writes through; `SqlitePredictionLog`, an embedded file
under monitoring/, is the default, and a shared database only needs another class with the same two
methods. Writes are queued and stored in batches by one thread, off the request's path.
"""

import json
import queue
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

COLUMNS = ("request_id", "time", "model_version", "row", "inputs", "prediction", "probability", "latency_ms")
BATCH_ROWS = 500
_CLOSE = None


class PredictionLog(Protocol):
    def write(
        self,
        request_id: str,
        model_version: str,
        rows: list[dict[str, Any]],
        labels: list[Any],
        probabilities: list[float],
        latency_ms: float,
    ) -> None:
        """Record one request's predictions; must not block the request on storage."""

    def close(self) -> None:
        """Store everything written so far, then release the store."""


class SqlitePredictionLog:
    """One row per prediction in the `predictions` table of an SQLite file (WAL mode: workers share it)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._pending: queue.Queue = queue.Queue()
        with self._connect() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS predictions (request_id TEXT NOT NULL, time TEXT NOT NULL, "
                "model_version TEXT NOT NULL, row INTEGER NOT NULL, inputs TEXT NOT NULL, prediction TEXT NOT NULL, "
                "probability REAL NOT NULL, latency_ms REAL NOT NULL)"
            )
            connection.execute("CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (time)")
        self._writer = threading.Thread(target=self._store_batches, name="prediction-log", daemon=True)
        self._writer.start()

    def write(self, request_id, model_version, rows, labels, probabilities, latency_ms) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        for index, (row, label, probability) in enumerate(zip(rows, labels, probabilities, strict=True)):
            record = (request_id, now, model_version, index, json.dumps(row, sort_keys=True), json.dumps(label))
            self._pending.put((*record, probability, latency_ms))

    def close(self) -> None:
        self._pending.put(_CLOSE)
        self._writer.join()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL keeps the file consistent; a crash loses at most a batch
        return connection

    def _store_batches(self) -> None:
        connection = self._connect()
        placeholders = ", ".join("?" * len(COLUMNS))
        closing = False
        while not closing:
            batch = [self._pending.get()]
            while len(batch) < BATCH_ROWS and not self._pending.empty():
                batch.append(self._pending.get_nowait())
            closing = _CLOSE in batch
            records = [record for record in batch if record is not _CLOSE]
            if records:
                with connection:
                    connection.executemany(f"INSERT INTO predictions VALUES ({placeholders})", records)
        connection.close()
