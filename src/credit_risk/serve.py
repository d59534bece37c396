"""The model service: FastAPI on uvicorn, answering from the registry's verified artifacts.

It answers with the `prod` model and, while a version holds the `canary` stage, routes
`serve.canary_share` of requests to the canary. Routing is sticky: a request's `key` (a user or
entity id) always reaches the same model, so an A/B comparison is clean; requests without a key are
routed by a seeded draw. Every answer, log record and Prometheus series names the version that
answered. Without a registry (no git, as in the container, or nothing promoted yet) the workspace
model of dvc.lock answers alone.

Requests are checked against a pydantic model generated from schema.yaml, so a bad row gets a 422 that
names the field and the rule before it reaches a model. Each answer follows `data.task` (see
`serving.Scored`): a classifier's `label`, `probability` and `probabilities` per class, a regressor's
`value`. Every request and prediction goes to the prediction log (`prediction_log`), and
`POST /feedback` adds the true label (a regressor's true value) when it arrives, for `monitor` and
`canary-decide`.

`POST /admin/reload` (or SIGHUP) loads the registry's models again after a promote or rollback and
swaps them in between requests: requests in flight finish on the models they started with. Several
workers: SIGHUP to the main process, which uvicorn passes on by restarting its workers one by one.
`/feedback` and `/admin/*` need `Authorization: Bearer $SERVE_API_TOKEN`; with no token set they are off.
"""

import asyncio
import hashlib
import hmac
import math
import os
import random
import re
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal, cast

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core import Params, PipelineError, Serve, load_params
from .prediction_log import AnsweredRequest, PredictionLog, log_url
from .promote import CANARY, STAGE, holder, in_git_repository, model_artifact
from .schema import ColumnSpec, Schema, load_schema
from .serving import Scored, ServingModel, load_serving_model
from .task import Task, is_classification

MODEL_VERSION_VARIABLE = "SERVE_MODEL_VERSION"  # how `main` tells each worker which version to load
METRICS_FOLDER_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own name: workers share counts
TOKEN_VARIABLE = "SERVE_API_TOKEN"  # the bearer token of /feedback and /admin/*
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ANSWERED_BY = "model_version"  # the ASGI scope key where /predict leaves the version for the metrics
PATHS = ("/predict", "/feedback", "/admin/reload", "/health", "/metadata", "/metrics")


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
        run(create_app())  # the models load once; one that cannot load stops here, with its message
        return
    # several workers each build their own app: check the models here first, so a bad one stops before they start
    load_release(params, load_schema(params.paths.contract), model_version)
    with tempfile.TemporaryDirectory(prefix="metrics-") as shared_metrics:
        os.environ.setdefault(METRICS_FOLDER_VARIABLE, shared_metrics)
        run(f"{__package__}.serve:create_app", factory=True, workers=settings.workers)


def create_app() -> FastAPI:
    """The service for the project in the working directory, its models loaded and verified once."""
    params = load_params()
    schema = load_schema(params.paths.contract)
    pinned = os.environ.get(MODEL_VERSION_VARIABLE)
    router = Router(lambda: load_release(params, schema, pinned), params.serve)
    return build_app(router, params.serve, PredictionLog(log_url(params.serve)), os.environ.get(TOKEN_VARIABLE))


# --- Which models answer
@dataclass(frozen=True)
class Release:
    """The models that answer: prod, and the canary while a version holds that stage."""

    prod: ServingModel
    canary: ServingModel | None

    @property
    def models(self) -> list[ServingModel]:
        return [self.prod] if self.canary is None else [self.prod, self.canary]

    def versions(self) -> dict[str, str | None]:
        return {STAGE: self.prod.version, CANARY: self.canary.version if self.canary else None}


def load_release(params: Params, schema: Schema, pinned: str | None = None) -> Release:
    """`pinned` alone if given; else the registry's prod and canary; else (no registry) the workspace model."""
    if pinned is not None:
        return Release(load_serving_model(params, schema, pinned), None)
    workspace = load_serving_model(params, schema)
    if not in_git_repository():
        return Release(workspace, None)

    def registered(version: str) -> ServingModel:  # the workspace's own file when it is that version
        return workspace if workspace.version == version else load_serving_model(params, schema, version)

    artifact = model_artifact(params.paths.model)
    prod, canary = holder(artifact, STAGE), holder(artifact, CANARY)
    prod_model = workspace if prod is None else registered(prod.version)
    if canary is None or canary.version == prod_model.version:
        return Release(prod_model, None)
    return Release(prod_model, registered(canary.version))


class Router:
    """Picks the model for each request, and swaps in a freshly loaded release on reload."""

    def __init__(self, load: Callable[[], Release], settings: Serve):
        self._load, self.share, self.seed = load, settings.canary_share, settings.routing_seed
        self.release = load()
        self._draws = random.Random(self.seed)
        self._draws_lock, self._reload_lock = threading.Lock(), threading.Lock()

    def route(self, key: str | None) -> ServingModel:
        release = self.release  # one read: a reload in between changes nothing for this request
        if release.canary is None:
            return release.prod
        return release.canary if self._draw(key) < self.share else release.prod

    def _draw(self, key: str | None) -> float:
        """A number in [0, 1): a hash of the key, so a key always gets the same one; else the next seeded draw."""
        if key is None:
            with self._draws_lock:
                return self._draws.random()
        digest = hashlib.blake2b(key.encode(), digest_size=8, key=str(self.seed).encode()).digest()
        return int.from_bytes(digest) / 2**64

    def reload(self, accept: Callable[[Release], None]) -> Release:
        """Load the release anew and swap it in once `accept` (which raises to refuse) has seen it."""
        with self._reload_lock:  # one load at a time; requests keep being answered by the current release
            release = self._load()
            accept(release)
            self.release = release
            return release


# --- The service
def build_app(router: Router, settings: Serve, log: PredictionLog, token: str | None) -> FastAPI:
    one_thread = OneThreadPerPrediction()
    schema = router.release.prod.schema
    features = sorted({name for model in router.release.models for name in model.features})
    PredictRequest = request_model(schema, features, settings.max_rows)
    Feedback = feedback_model(schema, router.release.prod.target)
    metrics = ServiceMetrics(router.release.prod.task)
    authorized = bearer_token(token)

    def takes_these_requests(release: Release) -> None:
        needed = sorted({name for model in release.models for name in model.features} - set(features))
        if needed:
            raise PipelineError(
                f"the new models need columns {needed} that requests may leave out: restart the service"
            )

    def reload() -> Release:
        """The registry's release now; on a refusal the current models keep answering."""
        try:
            return router.reload(takes_these_requests)
        except PipelineError as error:
            raise HTTPException(409, f"reload refused, the current models keep answering: {error}") from None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, _reload_quietly, reload))
        yield
        log.close()  # after the last request: every logged prediction reaches the store

    app = FastAPI(title=f"{router.release.prod.artifact} service", lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)  # added last, so outermost: refused bodies are counted

    @app.exception_handler(RequestValidationError)
    async def explain_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(part) for part in problem["loc"][1:]) or "body", "rule": problem["msg"]}
            for problem in error.errors()
        ]
        if request.url.path == "/predict":  # refused before reaching a model: logged without a version
            log.write(AnsweredRequest(request_id_of(request), None, None, 422, [], [], [], 0.0))
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model_version": router.release.prod.version, "stages": router.release.versions()}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        release = router.release
        return {**release.prod.metadata(), "canary": release.canary.metadata() if release.canary else None}

    @app.get("/metrics")
    def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.post("/predict")
    def predict(body: PredictRequest, request: Request) -> dict[str, Any]:  # type: ignore[valid-type]  # built at run time
        start = time.perf_counter()
        request_id, parsed = request_id_of(request), cast(PredictBody, body)
        model = router.route(parsed.key)
        request.scope[ANSWERED_BY] = model.version
        rows = [row.model_dump() for row in parsed.rows]
        one_thread.limit()
        try:
            scored = model.score(pd.DataFrame.from_records(rows, columns=model.features))
        except Exception:
            log.write(AnsweredRequest(request_id, model.version, parsed.key, 500, rows, [], [], _ms_since(start)))
            raise
        values = scored.values.tolist()
        probabilities = [None] * len(values) if scored.probability is None else scored.probability.tolist()
        latency_ms = _ms_since(start)
        log.write(AnsweredRequest(request_id, model.version, parsed.key, 200, rows, values, probabilities, latency_ms))
        metrics.observe_predictions(scored, model.version)
        predictions = [{**answer, "model_version": model.version} for answer in scored.answers()]
        return {"predictions": predictions, "request_id": request_id, "model_version": model.version}

    @app.post("/feedback", dependencies=[Depends(authorized)])
    def feedback(body: Feedback) -> dict[str, Any]:  # type: ignore[valid-type]  # built at run time
        sent = cast(FeedbackBody, body)
        if not log.record_feedback(sent.request_id, sent.row, sent.label):
            raise HTTPException(404, f"no prediction of request {sent.request_id!r}, row {sent.row}, in the log")
        return {"recorded": True, "request_id": sent.request_id, "row": sent.row}

    @app.post("/admin/reload", dependencies=[Depends(authorized)])
    def admin_reload() -> dict[str, Any]:
        return {"reloaded": True, "stages": reload().versions()}

    return app


def _reload_quietly(reload: Callable[[], Release]) -> None:
    """SIGHUP's reload: nobody waits for an answer, so a refusal is printed and the current models stay."""
    try:
        print(f"reload: now serving {reload().versions()}", flush=True)
    except HTTPException as refusal:
        print(refusal.detail, flush=True)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def request_id_of(request: Request) -> str:
    """The caller's X-Request-ID when it is a sane one (it becomes a log key), else a new one."""
    given = request.headers.get("x-request-id", "")
    return given if REQUEST_ID.match(given) else uuid.uuid4().hex


def bearer_token(token: str | None) -> Callable[[Request], None]:
    """The check /feedback and /admin/* depend on: off (403) without a token, 401 without the right one."""

    def authorized(request: Request) -> None:
        if not token:
            raise HTTPException(403, f"this endpoint is off: start the service with {TOKEN_VARIABLE} set to enable it")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return authorized


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
    """What every body of POST /predict is; `request_model` types its rows from the contract. Requests with
    the same `key` (a user or entity id) always reach the same model."""

    model_config = ConfigDict(extra="forbid")
    rows: list[BaseModel]
    key: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class FeedbackBody(BaseModel):
    """POST /feedback: the true label of row `row` of an answered request (a regression's true value);
    `feedback_model` types the label as the contract types the target."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    request_id: Annotated[str, Field(pattern=REQUEST_ID.pattern)]
    row: Annotated[int, Field(ge=0)] = 0
    label: Any


def feedback_model(schema: Schema, target: str) -> type[FeedbackBody]:
    """The body of POST /feedback, its label one the contract allows in the target column."""
    label = _field_type(schema.columns[target].model_copy(update={"nullable": False}))
    return create_model("Feedback", __base__=FeedbackBody, label=(label, ...))


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
            answered_by = scope.get(ANSWERED_BY, "")  # /predict leaves its model's version in the scope
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - start, answered_by)


class ServiceMetrics:
    """Prometheus series labelled by the model version that answered (blank for requests no model answered);
    shared across workers through prometheus-client's multiprocess folder when there are several.

    Predictions per task: a classifier's probability as a histogram over [0, 1] (`prediction_probability`:
    binary, of the positive class; multiclass, of the predicted label); a regressor's value as a summary
    (`prediction_value`, its count and sum): the target's scale is the project's, so no fixed buckets fit it,
    and rate(sum) / rate(count) is the mean prediction, the figure `monitor` compares with the evaluation's.
    """

    def __init__(self, task: Task) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, Summary

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
        self.predictions: Histogram | Summary
        if not is_classification(task):
            self.predictions = Summary("prediction_value", "Predicted value", ["model_version"], registry=self.registry)
            return
        self.predictions = Histogram(
            "prediction_probability",
            "Predicted probability of the positive class" if task == "binary" else "Probability of the predicted label",
            ["model_version"],
            buckets=tuple(step / 10 for step in range(1, 11)),
            registry=self.registry,
        )

    def observe_request(self, path: str, status: int, seconds: float, version: str) -> None:
        path = path if path in PATHS else "other"  # bounded labels
        self.requests.labels(path, str(status), version).inc()
        self.latency.labels(path, version).observe(seconds)

    def observe_predictions(self, scored: Scored, version: str) -> None:
        series = self.predictions.labels(version)
        for figure in (scored.values if scored.probability is None else scored.probability).tolist():
            series.observe(figure)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

        registry = self.registry
        if os.environ.get(METRICS_FOLDER_VARIABLE):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
