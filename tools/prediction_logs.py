"""Prediction logs written for a baked project, as its service would have written them: for the monitoring
tests and the monitor benchmark.

Requests and predictions go through the project's own `PredictionLog` (the default rendering's package,
which this environment has installed); feedback labels are stored in bulk through its feedback table,
since `record_feedback` is one transaction per label, made for a service, not for a million rows.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from credit_risk.prediction_log import AnsweredRequest, PredictionLog, feedback_table


def sqlite_url(project: Path) -> str:
    """The log `monitor` reads by default in that project: serve.prediction_log (monitoring/predictions.sqlite)."""
    path = project / "monitoring" / "predictions.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Traffic:
    """Scored rows one version answered: `rows` as sent (no target), its `predictions` (labels, or a regressor's
    values) and `probabilities` (None each for a regressor), and `truth`, the true label of each row (None
    where no feedback arrives)."""

    version: str
    rows: pd.DataFrame
    predictions: list[Any]
    probabilities: list[float | None]
    truth: list[Any]
    rows_per_request: int = 1
    latency_ms: float = 5.0
    server_errors: int = 0  # requests that version answered with a 500 on top of the scored ones
    first_row: int = 0  # of all the rows written for this version: request ids stay unique across calls


def write_log(url: str, traffic: list[Traffic]) -> int:
    """Log every version's traffic, then its feedback; the number of predictions logged."""
    log = PredictionLog(url)
    feedback = []
    try:
        for part in traffic:
            feedback += _write_traffic(log, part)
        log.flush()
        with log.engine.begin() as connection:
            for start in range(0, len(feedback), 100_000):
                connection.execute(sa.insert(feedback_table), feedback[start : start + 100_000])
    finally:
        log.close()
    return sum(len(part.rows) for part in traffic)


def _write_traffic(log: PredictionLog, part: Traffic) -> list[dict[str, Any]]:
    sent = part.rows.astype(object).replace({np.nan: None})  # a missing value is sent as null
    records = [{str(name): value for name, value in row.items()} for row in sent.to_dict("records")]
    now, feedback = datetime.now(UTC), []
    for start in range(0, len(records), part.rows_per_request):
        request_id = f"{part.version}-{part.first_row + start}"
        stop = start + part.rows_per_request
        log.write(
            AnsweredRequest(
                request_id,
                part.version,
                None,
                200,
                records[start:stop],
                part.predictions[start:stop],
                part.probabilities[start:stop],
                part.latency_ms,
            )
        )
        feedback += [
            {"request_id": request_id, "row": row, "time": now, "label": json.dumps(label)}
            for row, label in enumerate(part.truth[start:stop])
            if label is not None
        ]
    for error in range(part.server_errors):
        log.write(AnsweredRequest(f"{part.version}-error-{error}", part.version, None, 500, [], [], [], 1.0))
    return feedback
