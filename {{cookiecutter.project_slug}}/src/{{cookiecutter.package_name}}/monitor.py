"""Watching production through the prediction log: `monitor` and `canary-decide`.

`monitor` reports, per model version that answered in the window: traffic (requests, error rate,
latency p50/p99), the predicted positive rate against the one its evaluation measured, input drift
against the production reference (validate's own PSI on every logged row, and Evidently's drifted
share on seeded samples) and, on the predictions whose true label arrived through POST /feedback, F1
and accuracy. Every breach of a `monitor:` threshold is an alert line, and the command exits 1. A
version with fewer than `monitor.min_requests` requests is reported but not judged.

`canary-decide` compares the canary with prod over the time the canary has held its stage and
decides: wait (too little traffic or feedback yet), rollback, or promote. See `decide`.

The log is read only through `prediction_log.read_log`; the figures are pure functions of its two
frames, so the same log gives the same report, byte for byte.
"""

import io
import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .core import (
    GATE_FAILED,
    Check,
    Monitor,
    Params,
    PipelineError,
    Promotion,
    load_params,
    read_baseline,
    read_parquet,
    rounded,
    run_tool,
    sample_positions,
    write_json,
)
from .schema import Schema, label_key, load_schema
from .serving import VERSION, model_input
from .validate import evidently_drift, psi

if TYPE_CHECKING:
    from .prediction_log import LoggedWindow

SERVER_ERROR = 500  # statuses from here on are the service's fault, not the caller's
PARSE_ROWS = 100_000  # logged rows parsed at a time


# --- Reading the logged rows
def logged_inputs(inputs: pd.Series, schema: Schema, columns: list[str]) -> pd.DataFrame:
    """The logged rows (JSON text each) as a frame typed as training saw them.

    Arrow's JSON reader parses them with the contract's types, in C++: a million rows take about a
    second, where `json.loads` row by row takes ten. Parsed `PARSE_ROWS` at a time into compact Arrow
    columns, so the text is never held twice whole.
    """
    import pyarrow as pa
    import pyarrow.json as arrow_json

    fields = [(name, pa.float64() if schema.columns[name].is_numeric else pa.string()) for name in columns]
    options = arrow_json.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore")
    texts = inputs.tolist()
    try:
        tables = [
            arrow_json.read_json(
                io.BytesIO("\n".join(texts[start : start + PARSE_ROWS]).encode()), parse_options=options
            )
            for start in range(0, len(texts), PARSE_ROWS)
        ]
    except pa.ArrowInvalid as error:
        raise PipelineError(
            f"the prediction log holds inputs that do not parse with schema.yaml's types ({error}): were they logged "
            "under another contract? `monitor --since` a later time leaves them out"
        ) from None
    table = pa.concat_tables(tables) if tables else pa.schema(fields).empty_table()
    return model_input(table.to_pandas(strings_to_categorical=True), schema, columns)


def label_keys(values: pd.Series, numeric: bool) -> np.ndarray:
    """Labels as comparable keys, vectorised `schema.label_key`: numbers (1 == 1.0) or text."""
    if numeric:
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return values.astype(str).to_numpy()


# --- Figures of one version
@dataclass(frozen=True)
class Labels:
    """How the target's labels compare: the positive class as a key of `label_keys`."""

    positive: float | str | None
    numeric: bool


def labels_of(params: Params, schema: Schema) -> Labels:
    numeric = schema.columns[params.data.target].is_numeric
    return Labels(label_key(params.data.positive_class, numeric), numeric)


def traffic(requests: pd.DataFrame) -> dict[str, Any]:
    """Requests a version answered, the share that were server errors, and latency percentiles."""
    count = len(requests)
    errors = int((requests["status"] >= SERVER_ERROR).sum())
    latency = requests["latency_ms"].to_numpy(dtype=float)
    return {
        "requests": count,
        "server_errors": errors,
        "error_rate": rounded(errors / count) if count else None,
        "latency_p50_ms": rounded(np.percentile(latency, 50)) if count else None,
        "latency_p99_ms": rounded(np.percentile(latency, 99)) if count else None,
    }


def quality(predictions: pd.DataFrame, labels: Labels) -> dict[str, Any]:
    """The predicted positive rate, and F1 and accuracy on the predictions whose true label arrived."""
    predicted = label_keys(predictions["prediction"], labels.numeric)
    labelled = predictions["label"].notna().to_numpy()
    truth = label_keys(predictions["label"][labelled], labels.numeric)
    guessed = predicted[labelled]
    true_positives = int(((guessed == labels.positive) & (truth == labels.positive)).sum())
    claimed, actual = int((guessed == labels.positive).sum()), int((truth == labels.positive).sum())
    correct = int((guessed == truth).sum())
    count = len(truth)
    return {
        "predictions": len(predicted),
        "positive_rate": rounded((predicted == labels.positive).mean()) if len(predicted) else None,
        "labelled_requests": int(predictions["request_id"][labelled].nunique()),
        "labelled_predictions": count,
        "correct": correct,
        "accuracy": rounded(correct / count) if count else None,
        "f1": rounded(2 * true_positives / (claimed + actual)) if claimed + actual else None,
    }


def version_figures(requests: pd.DataFrame, predictions: pd.DataFrame, version: str, labels: Labels) -> dict:
    """Traffic and quality of one version (drift aside: `monitor` adds it, `canary-decide` needs none)."""
    return {
        **traffic(requests[requests["model_version"] == version]),
        **quality(predictions[predictions["model_version"] == version], labels),
    }


def evaluation_positive_rate(metrics: dict[str, Any] | None) -> float | None:
    """The positive rate evaluate measured on the test split: predicted positives over rows."""
    if not metrics or not metrics.get("rows"):
        return None
    return rounded((metrics["true_positives"] + metrics["false_positives"]) / metrics["rows"])


def evaluation_of(version: str, baseline: Promotion | None, evaluation: Path, artifact: str) -> dict | None:
    """A version's evaluation metrics: prod's from its baseline, another's from its registry tag."""
    if baseline is not None and baseline.version == version:
        return baseline.metrics
    if not VERSION.match(version):  # e.g. an unpromoted workspace model: no tag to read it from
        return None
    shown = run_tool("git", "show", f"{artifact}@{version}:{evaluation.as_posix()}", check=False)
    return json.loads(shown.stdout) if shown.returncode == 0 else None


# --- Judging a version
def at_most(version: str, metric: str, value: float | None, key: str, limit: float, column: str | None = None) -> Check:
    passed = value is None or value <= limit
    return Check(f"{version} {metric}", passed, value, limit, column, "" if passed else f"above monitor.{key}")


def at_least(version: str, metric: str, value: float | None, key: str, limit: float) -> Check:
    passed = value is None or value >= limit
    return Check(f"{version} {metric}", passed, value, limit, None, "" if passed else f"below monitor.{key}")


def version_checks(version: str, figures: dict[str, Any], limits: Monitor) -> list[Check]:
    """Every threshold of `monitor:` a judged version is held to; labelled quality only with enough labels."""
    gap = figures.get("positive_rate_gap")
    drift = figures.get("drift", {})
    checks = [
        at_most(version, "error rate", figures["error_rate"], "error_rate_max", limits.error_rate_max),
        at_most(version, "latency p99 ms", figures["latency_p99_ms"], "latency_p99_ms_max", limits.latency_p99_ms_max),
        at_most(version, "positive rate gap to evaluation", gap, "positive_rate_max_gap", limits.positive_rate_max_gap),
        *(
            at_most(version, "input drift PSI", score, "drift_psi_max", limits.drift_psi_max, column)
            for column, score in sorted(drift.get("psi", {}).items())
        ),
        at_most(
            version,
            "drifted share (Evidently)",
            drift.get("drifted_share"),
            "drifted_share_max",
            limits.drifted_share_max,
        ),
    ]
    if figures["labelled_requests"] >= limits.min_labelled:
        checks.append(at_least(version, "F1 on labelled requests", figures["f1"], "f1_min", limits.f1_min))
        checks.append(
            at_least(version, "accuracy on labelled requests", figures["accuracy"], "accuracy_min", limits.accuracy_min)
        )
    return checks


def judged_notes(figures: dict[str, Any], limits: Monitor) -> list[str]:
    """What was not judged, and why."""
    notes = []
    if figures["requests"] < limits.min_requests:
        notes.append(
            f"{figures['requests']} requests, fewer than monitor.min_requests ({limits.min_requests}): "
            "reported, not judged"
        )
    elif figures["labelled_requests"] < limits.min_labelled:
        notes.append(
            f"{figures['labelled_requests']} labelled requests, fewer than monitor.min_labelled "
            f"({limits.min_labelled}): F1 and accuracy reported, not judged"
        )
    if figures.get("evaluation_positive_rate") is None:
        notes.append("no evaluation recorded for this version: its positive rate is not compared")
    return notes


def monitor_report(window: dict[str, str | None], versions: dict[str, dict], limits: Monitor, refused: int) -> dict:
    """report.json: the alert lines first (the retraining trigger reads them), then every figure."""
    alerts = []
    reported = {}
    for version, figures in sorted(versions.items()):
        judged = figures["requests"] >= limits.min_requests
        reported[version] = {**figures, "judged": judged, "notes": judged_notes(figures, limits)}
        if judged:
            alerts += [check.line() for check in version_checks(version, figures, limits) if not check.passed]
    return {
        "alerted": bool(alerts),
        "alerts": alerts,
        "window": window,
        "refused_before_a_model": refused,
        "versions": reported,
    }


# --- Drift of the logged inputs
def input_drift(reference: pd.DataFrame, current: pd.DataFrame, params: Params, html: Path | None) -> dict:
    """PSI per column on every logged row; with `html`, Evidently's drifted share on seeded samples too."""
    settings = params.validation
    drift: dict[str, Any] = {
        "psi": {
            column: rounded(psi(reference[column], current[column], settings.psi_bins)) for column in reference.columns
        }
    }
    if html is not None:
        samples = [
            frame.iloc[sample_positions(len(frame), settings.sample_rows, settings.seed)]
            for frame in (reference, current)
        ]
        drift["drifted_share"] = evidently_drift(samples[0], samples[1], html, settings.seed)
        drift["report"] = html.as_posix()
    return drift


def window_of(requests: pd.DataFrame, since: datetime | None) -> dict[str, str | None]:
    """The window the report covers: from `--since` (or the first logged request) to the last one logged."""
    times = requests["time"]
    start = since if since is not None else (times.min() if len(times) else None)
    until = times.max() if len(times) else None
    return {
        "since": None if start is None else start.isoformat(),
        "until": None if until is None else until.isoformat(),
    }


# --- The commands
def parsed_since(since: str | None) -> datetime | None:
    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise PipelineError(f"--since {since!r} is not an ISO time: write e.g. 2026-11-27T06:00:00+00:00") from None
    return moment if moment.tzinfo is not None else moment.astimezone()  # a bare time is local time


def read_window(params: Params, since: datetime | None) -> "LoggedWindow":
    from .prediction_log import log_url, read_log  # SQLAlchemy: only once the command reads the log

    return read_log(log_url(params.serve), since=since)


def main(since: str | None = None) -> int:
    params = load_params()
    schema = load_schema(params.paths.contract)
    start = parsed_since(since)
    logged = read_window(params, start)
    requests, predictions = logged.requests, logged.predictions
    reference = read_parquet(params.paths.reference)
    # the JSON text is the bulk of the log in memory: parsed once, then let go
    inputs = logged_inputs(predictions.pop("inputs"), schema, list(reference.columns))
    baseline = read_baseline(params.paths.baseline)
    labels = labels_of(params, schema)
    versions = {}
    for version in sorted(requests["model_version"].dropna().unique()):
        figures = version_figures(requests, predictions, version, labels)
        figures.update(expected_positive_rate(params, baseline, version, figures["positive_rate"]))
        current = inputs[(predictions["model_version"] == version).to_numpy()]
        if not reference.empty and not current.empty:  # no reference before a promotion; no rows if all failed
            html = params.paths.monitoring.with_name(f"report-{version}.html")
            judged = figures["requests"] >= params.monitor.min_requests
            figures["drift"] = input_drift(reference, current, params, html if judged else None)
        versions[str(version)] = figures
    refused = int(requests["model_version"].isna().sum())
    report = monitor_report(window_of(requests, start), versions, params.monitor, refused)
    write_json(report, params.paths.monitoring)
    return print_monitor(report, params.paths.monitoring, reference.empty)


def expected_positive_rate(params: Params, baseline: Promotion | None, version: str, observed: float | None) -> dict:
    artifact = baseline.artifact if baseline is not None else _artifact(params)
    expected = evaluation_positive_rate(evaluation_of(version, baseline, params.paths.evaluation, artifact))
    gap = None if expected is None or observed is None else rounded(abs(observed - expected))
    return {"evaluation_positive_rate": expected, "positive_rate_gap": gap}


def _artifact(params: Params) -> str:
    from .promote import model_artifact

    return model_artifact(params.paths.model)


def print_monitor(report: dict, path: Path, no_reference: bool) -> int:
    for version, figures in report["versions"].items():
        print(
            f"monitor: {version}: {figures['requests']} requests, error rate {figures['error_rate']}, "
            f"p99 {figures['latency_p99_ms']} ms, {figures['labelled_requests']} labelled"
            + "".join(f"; {note}" for note in figures["notes"])
        )
    if not report["versions"]:
        print("monitor: no request was logged in the window")
    if no_reference:
        print("monitor: no production reference yet (no model promoted): input drift not measured")
    for line in report["alerts"]:
        print(f"ALERT {line}")
    print(f"monitor: {len(report['alerts'])} alerts (report: {path})")
    return GATE_FAILED if report["alerted"] else 0


# --- Canary decision
ACCURACY_TEST = "one-sided two-proportion z-test (pooled) that the canary's accuracy is lower than prod's"


@dataclass(frozen=True)
class ProportionTest:
    z: float
    p_value: float


def accuracy_drop_test(canary_correct: int, canary_total: int, prod_correct: int, prod_total: int) -> ProportionTest:
    """One-sided two-proportion z-test. H0: the canary is at least as accurate as prod; H1: it is less.

    z = (p_canary - p_prod) / sqrt(p (1 - p) (1/n_canary + 1/n_prod)), with p the pooled accuracy, and the
    p-value is the standard normal's lower tail at z. Equal accuracies of 0 or 1 leave no spread: z = 0.
    """
    pooled = (canary_correct + prod_correct) / (canary_total + prod_total)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / canary_total + 1 / prod_total))
    z = (canary_correct / canary_total - prod_correct / prod_total) / spread if spread else 0.0
    return ProportionTest(rounded(z), rounded(0.5 * math.erfc(-z / math.sqrt(2))))


@dataclass(frozen=True)
class Decision:
    decision: str  # promote | rollback | wait
    reasons: list[str]
    test: ProportionTest | None = None


def decide(canary: dict[str, Any], prod: dict[str, Any], limits: Monitor) -> Decision:
    """wait until both sides have `min_requests` requests and `min_labelled` labelled requests; then
    rollback if the z-test finds the canary less accurate at `significance`, or if its error rate or p99
    latency is above both the monitor threshold and prod's own figure (a canary is not blamed for what prod
    does too); promote otherwise."""
    waiting = [
        f"{side} has {figures[key]} {what}, needs monitor.{need} ({getattr(limits, need)})"
        for side, figures in (("canary", canary), ("prod", prod))
        for key, what, need in (
            ("requests", "requests", "min_requests"),
            ("labelled_requests", "labelled requests", "min_labelled"),
        )
        if figures[key] < getattr(limits, need)
    ]
    if waiting:
        return Decision("wait", waiting)
    test = accuracy_drop_test(
        canary["correct"], canary["labelled_predictions"], prod["correct"], prod["labelled_predictions"]
    )
    reasons = []
    if test.p_value < limits.significance:
        reasons.append(
            f"canary accuracy {canary['accuracy']} is lower than prod's {prod['accuracy']}: {ACCURACY_TEST}, "
            f"z {test.z}, p-value {test.p_value} < significance {limits.significance}"
        )
    for metric, key, limit in (
        ("error rate", "error_rate", limits.error_rate_max),
        ("latency p99 ms", "latency_p99_ms", limits.latency_p99_ms_max),
    ):
        allowed = max(limit, prod[key])
        if canary[key] > allowed:
            reasons.append(
                f"canary {metric} {canary[key]} is above {allowed} "
                f"(the monitor threshold {limit}, or prod's {prod[key]} if higher)"
            )
    if reasons:
        return Decision("rollback", reasons, test)
    return Decision(
        "promote",
        [
            f"no evidence the canary is less accurate ({ACCURACY_TEST}: z {test.z}, p-value {test.p_value} >= "
            f"significance {limits.significance}); error rate and p99 latency within limits"
        ],
        test,
    )


def canary_decide(apply: bool = False) -> int:
    """Compare canary and prod over the canary's time in its stage; print and record the decision; with
    `apply`, carry it out (promote: the canary's version becomes prod; rollback: the canary stage is unassigned)."""
    from .promote import CANARY, STAGE, holder, model_artifact

    params = load_params()
    artifact = model_artifact(params.paths.model)
    canary, prod = holder(artifact, CANARY), holder(artifact, STAGE)
    if canary is None:
        raise PipelineError(f"no version of {artifact} holds the {CANARY} stage: `promote --canary` one first")
    if prod is None:
        raise PipelineError(f"no version of {artifact} holds {STAGE}: there is nothing to compare the canary with")
    labels = labels_of(params, load_schema(params.paths.contract))
    logged = read_window(params, canary.activated_at)
    sides = {
        side: version_figures(logged.requests, logged.predictions, held.version, labels)
        for side, held in (("canary", canary), ("prod", prod))
    }
    decision = decide(sides["canary"], sides["prod"], params.monitor)
    record = {
        **asdict(decision),
        "test_name": ACCURACY_TEST,
        "significance": params.monitor.significance,
        "window": window_of(logged.requests, canary.activated_at),
        "canary": {"version": canary.version, **sides["canary"]},
        "prod": {"version": prod.version, **sides["prod"]},
        "applied": False,
    }
    write_json(record, params.paths.canary_decision)  # recorded even if carrying it out fails
    print(f"canary-decide: {decision.decision} {artifact} {canary.version} (canary) against {prod.version} (prod)")
    for reason in decision.reasons:
        print(f"  {reason}")
    if apply and decision.decision != "wait":
        carry_out(decision.decision, artifact, canary.version)
        write_json({**record, "applied": True}, params.paths.canary_decision)
    return 0


def carry_out(decision: str, artifact: str, version: str) -> None:
    from . import promote

    if decision == "promote":
        if promote.version_at_head(artifact) != version:
            raise PipelineError(
                f"the canary {artifact} {version} is not the commit checked out: `git checkout {artifact}@{version}` "
                "(or the branch whose HEAD it is), then run canary-decide --apply again"
            )
        promote.main()
    elif decision == "rollback":
        promote.retire_canary(artifact, version, f"{artifact} {version} rolled back from {promote.CANARY}")
        print(f"canary-decide: {artifact} {version} no longer holds {promote.CANARY}; prod is unchanged")
