"""The model service: FastAPI on uvicorn, answering from the one verified artifact.

Requests are checked against a pydantic model generated from schema.yaml, so a bad row gets a 422 that
names the field and the rule before it reaches the model. /metrics exposes request counts, latency and
predictions for Prometheus.

Every prediction goes to the prediction log, for monitoring and audits. `PredictionLog` is the
interface the service writes through; `SqlitePredictionLog`, an embedded file under monitoring/, is
the default, and a shared database only needs another class with the same two methods. Writes are
queued and stored in batches by one thread, off the request's path.
"""

import json
import math
import os
import queue
import re
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, cast

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core import Serve, load_params
from .schema import ColumnSpec, Schema, load_schema
from .serving import ServingModel, load_serving_model

# --- The prediction log
COLUMNS = ("request_id", "time", "model_version", "row", "inputs", "prediction", "probability", "latency_ms")
BATCH_ROWS = 500
_CLOSE = None


@dataclass(frozen=True)
class AnsweredRequest:
    """One request's predictions, as the log records them: a row each."""

    request_id: str
    model_version: str
    rows: list[dict[str, Any]]
    labels: list[Any]
    probabilities: list[float]
    latency_ms: float


class PredictionLog(Protocol):
    def write(self, answered: AnsweredRequest) -> None:
        """Record one request's predictions; must not block the request on storage."""

    def close(self) -> None:
        """Store everything written so far, then release the store."""


class SqlitePredictionLog:
    """One row per prediction in the `predictions` table of an SQLite file (WAL mode: workers share it)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._pending: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        with self._connect() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS predictions (request_id TEXT NOT NULL, time TEXT NOT NULL, "
                "model_version TEXT NOT NULL, row INTEGER NOT NULL, inputs TEXT NOT NULL, prediction TEXT NOT NULL, "
                "probability REAL NOT NULL, latency_ms REAL NOT NULL)"
            )
            connection.execute("CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (time)")
        self._writer = threading.Thread(target=self._store_batches, name="prediction-log", daemon=True)
        self._writer.start()

    def write(self, answered: AnsweredRequest) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        rows = zip(answered.rows, answered.labels, answered.probabilities, strict=True)
        for index, (row, label, probability) in enumerate(rows):
            record = (answered.request_id, now, answered.model_version, index, json.dumps(row, sort_keys=True))
            self._pending.put((*record, json.dumps(label), probability, answered.latency_ms))

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


# --- The service
MODEL_VERSION_VARIABLE = "SERVE_MODEL_VERSION"  # how `main` tells each worker which version to load
METRICS_FOLDER_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own name: workers share counts
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def main(host: str | None = None, port: int | None = None, model_version: str | None = None) -> None:
    """Serve until SIGINT or SIGTERM; requests in flight get `serve.graceful_shutdown_seconds` to finish."""
    import uvicorn

    params = load_params()
    settings = params.serve
    if model_version is not None:
        os.environ[MODEL_VERSION_VARIABLE] = model_version
    run = partial(
        uvicorn.run,
        host=host or settings.host,
        port=port or settings.port,
        # uvicorn annotates whole seconds, but waits with asyncio.wait_for, which takes any number of them
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,  # type: ignore[arg-type]
        log_level="info",
    )
    if settings.workers == 1:
        run(create_app())  # the model loads once; one that cannot load stops here, with its message
        return
    # several workers each build their own app: check the model here first, so a bad one stops before they start
    load_serving_model(params, load_schema(params.paths.contract), model_version)
    with tempfile.TemporaryDirectory(prefix="metrics-") as shared_metrics:
        os.environ.setdefault(METRICS_FOLDER_VARIABLE, shared_metrics)
        run(f"{__package__}.serve:create_app", factory=True, workers=settings.workers)


def create_app() -> FastAPI:
    """The service for the project in the working directory, its model loaded and verified once."""
    params = load_params()
    schema = load_schema(params.paths.contract)
    model = load_serving_model(params, schema, os.environ.get(MODEL_VERSION_VARIABLE))
    log = SqlitePredictionLog(params.serve.prediction_log)
    return build_app(model, params.serve, log)


def build_app(model: ServingModel, settings: Serve, log: PredictionLog) -> FastAPI:
    one_thread = OneThreadPerPrediction()
    PredictRequest = request_model(model.schema, model.features, settings.max_rows)
    metrics = ServiceMetrics(model.version)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        log.close()  # after the last request: every logged prediction reaches the store

    app = FastAPI(title=f"{model.artifact} {model.version}", lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)  # added last, so outermost: refused bodies are counted

    @app.exception_handler(RequestValidationError)
    async def explain_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(part) for part in problem["loc"][1:]) or "body", "rule": problem["msg"]}
            for problem in error.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model_version": model.version}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return model.metadata()

    @app.get("/metrics")
    def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.post("/predict")
    def predict(body: PredictRequest, request: Request) -> dict[str, Any]:  # type: ignore[valid-type]  # built at run time
        start = time.perf_counter()
        request_id = request.headers.get("x-request-id", "")
        request_id = request_id if REQUEST_ID.match(request_id) else uuid.uuid4().hex
        rows = [row.model_dump() for row in cast(PredictBody, body).rows]
        one_thread.limit()
        labels, probabilities = model.score(pd.DataFrame.from_records(rows, columns=model.features))
        labels, probabilities = labels.tolist(), probabilities.tolist()
        latency_ms = (time.perf_counter() - start) * 1000
        log.write(AnsweredRequest(request_id, model.version, rows, labels, probabilities, latency_ms))
        metrics.observe_predictions(probabilities)
        predictions = [
            {"label": label, "probability": probability, "model_version": model.version}
            for label, probability in zip(labels, probabilities, strict=True)
        ]
        return {"predictions": predictions, "request_id": request_id}

    return app


class OneThreadPerPrediction:
    """One OpenMP (and BLAS) thread per prediction: many small requests share the cores better than one request
    spread thin. OpenMP's thread count is each thread's own, so a limit set once at start-up would not reach the
    threads the server answers requests in (they would each run histogram gradient boosting's 100 per-tree
    parallel loops on every core, waiting on each other): each of those threads sets it, on its first request.
    """

    def __init__(self):
        self._done = threading.local()

    def limit(self) -> None:
        if not getattr(self._done, "limited", False):
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1)
            self._done.limited = True


class PredictBody(BaseModel):
    """What every body of POST /predict is; `request_model` types its rows from the contract."""

    model_config = ConfigDict(extra="forbid")
    rows: list[BaseModel]


def request_model(schema: Schema, features: list[str], max_rows: int) -> type[PredictBody]:
    """The body of POST /predict: `rows`, 1 to `max_rows` of them. Each row holds the model's features and
    may hold the contract's other columns (the target, excluded ones), checked and ignored; nothing else.
    """
    fields: dict[str, Any] = {
        name: (_field_type(spec), ...) if name in features else (_field_type(spec) | None, None)
        for name, spec in schema.columns.items()
    }
    strict = ConfigDict(extra="forbid", allow_inf_nan=False)
    Row = create_model("Row", __config__=strict, **fields)
    return create_model(
        "PredictRequest",
        __base__=PredictBody,
        rows=(Annotated[list[Row], Field(min_length=1, max_length=max_rows)], ...),
    )


def _field_type(spec: ColumnSpec) -> Any:
    """The contract's per-row rules for one column as a type: kind, range, allowed values, missing or not."""
    if spec.allowed is not None:
        values = tuple(spec.allowed) if spec.is_numeric else tuple(str(value) for value in spec.allowed)
        kind: Any = Literal[values]
    elif spec.is_numeric:
        number = int if spec.type == "integer" else float
        low, high = (None if limit is None or not math.isfinite(limit) else limit for limit in (spec.min, spec.max))
        kind = Annotated[number, Field(ge=low, le=high)]
    else:
        kind = Annotated[str, Field(min_length=1)]
    return kind | None if spec.nullable else kind


class BodySizeLimit:
    """413 for a body over `max_bytes`, counted as it arrives: a client cannot make the server buffer more."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = [{"field": "body", "rule": f"the request body is over the limit of {self.max_bytes} bytes"}]
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class RequestMetrics:
    """Counts and times every HTTP request for /metrics. Plain ASGI: Starlette's `@app.middleware("http")`
    costs a task and two memory streams per request, which profiling showed as a visible share of a
    single-row request's time.
    """

    def __init__(self, app: ASGIApp, metrics: "ServiceMetrics"):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500  # an exception that escapes the app is answered with a 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - start)


class ServiceMetrics:
    """Prometheus series labelled by model version; shared across workers through prometheus-client's
    multiprocess folder when there are several.
    """

    def __init__(self, version: str):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.version = version
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "requests", "HTTP requests by path and status", ["path", "status", "model_version"], registry=self.registry
        )
        self.latency = Histogram(
            "request_latency_seconds",
            "Time to answer a request",
            ["path", "model_version"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.predictions = Histogram(
            "prediction_probability",
            "Predicted probability of the positive class",
            ["model_version"],
            buckets=tuple(step / 10 for step in range(1, 11)),
            registry=self.registry,
        )

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        path = path if path in ("/predict", "/health", "/metadata", "/metrics") else "other"  # bounded labels
        self.requests.labels(path, str(status), self.version).inc()
        self.latency.labels(path, self.version).observe(seconds)

    def observe_predictions(self, probabilities: list[float]) -> None:
        series = self.predictions.labels(self.version)
        for probability in probabilities:
            series.observe(probability)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

        registry = self.registry
        if os.environ.get(METRICS_FOLDER_VARIABLE):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
