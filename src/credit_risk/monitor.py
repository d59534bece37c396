"""Watching production through the prediction log: `monitor` and `canary-decide`.

`monitor` reports, per model version that answered in the window: traffic (requests, error rate,
latency p50/p99), prediction drift against what its evaluation measured on the test split, input drift
against the production reference (validate's own PSI on every logged row, and Evidently's drifted
share on seeded samples) and labelled quality on the predictions whose true label arrived through
POST /feedback. Prediction drift and quality follow `data.task`:
- binary: the predicted positive rate's gap to the evaluation's; F1 (of the positive class) and accuracy;
- multiclass: the largest gap of a class's predicted share to the evaluation's `predicted_share`; macro F1
  and accuracy;
- regression: the shift of the mean prediction from the evaluation's `prediction_mean`, in units of its
  `prediction_std`; the mean absolute error (MAE).
Every breach of a `monitor:` threshold is an alert line, and the command exits 1. A version with fewer
than `monitor.min_requests` requests is reported but not judged.

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
from .task import Task, class_label, is_classification
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
    """How the target's labels compare: the task, and for binary the positive class as a key of `label_keys`."""

    task: Task
    positive: float | str | None
    numeric: bool


def labels_of(params: Params, schema: Schema) -> Labels:
    task = params.data.task
    numeric = schema.columns[params.data.target].is_numeric or not is_classification(task)
    positive = label_key(params.data.positive_class, numeric) if task == "binary" else None
    return Labels(task, positive, numeric)


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
    """What was predicted (see `predicted_figures`), and the quality on the predictions whose true label arrived:
    F1 and accuracy for a classifier, the mean absolute error for a regressor."""
    predicted = label_keys(predictions["prediction"], labels.numeric)
    labelled = predictions["label"].notna().to_numpy()
    truth = label_keys(predictions["label"][labelled], labels.numeric)
    guessed = predicted[labelled]
    figures = {
        "predictions": len(predicted),
        **predicted_figures(predicted, labels),
        "labelled_requests": int(predictions["request_id"][labelled].nunique()),
        "labelled_predictions": len(truth),
    }
    if not is_classification(labels.task):
        return {**figures, **error_figures(np.abs(guessed - truth))}
    correct = int((guessed == truth).sum())
    return {
        **figures,
        "correct": correct,
        "accuracy": rounded(correct / len(truth)) if len(truth) else None,
        **f1_figure(guessed, truth, labels),
    }


def predicted_figures(predicted: np.ndarray, labels: Labels) -> dict[str, Any]:
    """The figure prediction drift compares with the evaluation: the positive rate (binary), each class's
    share of the predictions (multiclass), the mean and standard deviation of the predictions (regression)."""
    if not len(predicted):
        keys = {"binary": ["positive_rate"], "multiclass": ["predicted_share"]}
        return dict.fromkeys(keys.get(labels.task, ["prediction_mean", "prediction_std"]))
    if labels.task == "binary":
        return {"positive_rate": rounded((predicted == labels.positive).mean())}
    if labels.task == "multiclass":
        classes, counts = np.unique(predicted, return_counts=True)
        return {
            "predicted_share": {
                class_label(label): rounded(count / len(predicted))
                for label, count in zip(classes, counts, strict=True)
            }
        }
    return {"prediction_mean": rounded(predicted.mean()), "prediction_std": rounded(predicted.std())}


def f1_figure(guessed: np.ndarray, truth: np.ndarray, labels: Labels) -> dict[str, float | None]:
    """Binary: F1 of the positive class; multiclass: the unweighted mean of each class's F1 (macro), over the
    classes predicted or labelled in the window, a class never predicted scoring 0 (scikit-learn's f1_score)."""
    if labels.task == "binary":
        true_positives = int(((guessed == labels.positive) & (truth == labels.positive)).sum())
        claimed, actual = int((guessed == labels.positive).sum()), int((truth == labels.positive).sum())
        return {"f1": rounded(2 * true_positives / (claimed + actual)) if claimed + actual else None}
    from sklearn.metrics import f1_score

    return {"f1_macro": rounded(f1_score(truth, guessed, average="macro", zero_division=0)) if len(truth) else None}


def error_figures(errors: np.ndarray) -> dict[str, float | None]:
    """The mean absolute error, and the absolute errors' sample standard deviation, which with their count is
    all `canary-decide`'s Welch's t-test needs."""
    return {
        "mae": rounded(errors.mean()) if len(errors) else None,
        "absolute_error_std": rounded(errors.std(ddof=1)) if len(errors) > 1 else None,
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


def prediction_drift(figures: dict[str, Any], evaluation: dict[str, Any] | None, task: Task) -> dict[str, Any]:
    """What the version predicted in the window against what its evaluation predicted on the test split:
    binary, the positive rate's absolute gap; multiclass, the largest absolute gap of one class's share (a
    class missing on one side has a share of 0 there); regression, the mean prediction's shift in standard
    deviations of the evaluation's predictions. None where either side is missing."""
    if task == "binary":
        expected = evaluation_positive_rate(evaluation)
        observed = figures["positive_rate"]
        gap = None if expected is None or observed is None else rounded(abs(observed - expected))
        return {"evaluation_positive_rate": expected, "positive_rate_gap": gap}
    if task == "multiclass":
        shares = (evaluation or {}).get("predicted_share")
        observed = figures["predicted_share"]
        if shares is None or observed is None:
            return {"evaluation_predicted_share": shares, "class_share_gap": None, "class_share_gap_class": None}
        gaps = {label: abs(observed.get(label, 0.0) - shares.get(label, 0.0)) for label in sorted({*shares, *observed})}
        widest = max(gaps, key=lambda label: gaps[label])
        return {
            "evaluation_predicted_share": shares,
            "class_share_gap": rounded(gaps[widest]),
            "class_share_gap_class": widest,
        }
    mean, spread = ((evaluation or {}).get(key) for key in ("prediction_mean", "prediction_std"))
    observed = figures["prediction_mean"]
    defined = mean is not None and spread and observed is not None  # a constant evaluation has no unit to shift in
    return {
        "evaluation_prediction_mean": mean,
        "evaluation_prediction_std": spread,
        "prediction_mean_shift": rounded(abs(observed - mean) / spread) if defined else None,
    }


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
    drift = figures.get("drift", {})
    checks = [
        at_most(version, "error rate", figures["error_rate"], "error_rate_max", limits.error_rate_max),
        at_most(version, "latency p99 ms", figures["latency_p99_ms"], "latency_p99_ms_max", limits.latency_p99_ms_max),
        prediction_drift_check(version, figures, limits),
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
        checks += labelled_checks(version, figures, limits)
    return checks


def prediction_drift_check(version: str, figures: dict[str, Any], limits: Monitor) -> Check:
    if "positive_rate" in figures:  # binary
        gap = figures.get("positive_rate_gap")
        return at_most(
            version, "positive rate gap to evaluation", gap, "positive_rate_max_gap", limits.positive_rate_max_gap
        )
    if "predicted_share" in figures:  # multiclass
        widest = figures.get("class_share_gap_class")
        return at_most(
            version,
            "predicted class share gap to evaluation" + ("" if widest is None else f" (class '{widest}')"),
            figures.get("class_share_gap"),
            "class_share_max_gap",
            limits.class_share_max_gap,
        )
    return at_most(
        version,
        "mean prediction shift from evaluation (its standard deviations)",
        figures.get("prediction_mean_shift"),
        "prediction_mean_max_shift",
        limits.prediction_mean_max_shift,
    )


def labelled_checks(version: str, figures: dict[str, Any], limits: Monitor) -> list[Check]:
    """F1 and accuracy of a classifier; a regressor's MAE when monitor.mae_max is set."""
    if "mae" in figures:
        if limits.mae_max is None:
            return []
        return [at_most(version, "MAE on labelled requests", figures["mae"], "mae_max", limits.mae_max)]
    f1 = ("F1", figures["f1"]) if "f1" in figures else ("macro F1", figures["f1_macro"])
    return [
        at_least(version, f"{f1[0]} on labelled requests", f1[1], "f1_min", limits.f1_min),
        at_least(version, "accuracy on labelled requests", figures["accuracy"], "accuracy_min", limits.accuracy_min),
    ]


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
            f"({limits.min_labelled}): {'MAE' if 'mae' in figures else 'F1 and accuracy'} reported, not judged"
        )
    elif "mae" in figures and limits.mae_max is None:
        notes.append("monitor.mae_max is null: MAE reported, not judged")
    for key, what in EVALUATION_FIGURES.items():
        if key in figures and figures[key] is None:
            notes.append(f"no evaluation recorded for this version: its {what} is not compared")
    return notes


# per task, the evaluation's figure prediction drift is measured against, and what it is
EVALUATION_FIGURES = {
    "evaluation_positive_rate": "positive rate",
    "evaluation_predicted_share": "share of each class",
    "evaluation_prediction_mean": "mean prediction",
}


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
    # the inputs' drift: the target, which the reference keeps for validate, is no input
    reference = read_parquet(params.paths.reference).drop(columns=params.data.target, errors="ignore")
    # the JSON text is the bulk of the log in memory: parsed once, then let go
    inputs = logged_inputs(predictions.pop("inputs"), schema, list(reference.columns))
    baseline = read_baseline(params.paths.baseline)
    labels = labels_of(params, schema)
    versions = {}
    for version in sorted(requests["model_version"].dropna().unique()):
        figures = version_figures(requests, predictions, version, labels)
        figures.update(prediction_drift(figures, evaluation_of_version(params, baseline, version), labels.task))
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


def evaluation_of_version(params: Params, baseline: Promotion | None, version: str) -> dict | None:
    artifact = baseline.artifact if baseline is not None else _artifact(params)
    return evaluation_of(version, baseline, params.paths.evaluation, artifact)


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


ERROR_TEST = (
    "one-sided Welch's t-test (unequal variances, scipy.stats.ttest_ind_from_stats) that the canary's mean "
    "absolute error is higher than prod's"
)


@dataclass(frozen=True)
class ErrorTest:
    t: float | None  # None when neither side's errors vary: no spread to measure the difference in
    p_value: float


def error_rise_test(canary: dict[str, Any], prod: dict[str, Any]) -> ErrorTest:
    """One-sided Welch's t-test on the absolute errors. H0: the canary's mean absolute error is at most prod's;
    H1: it is higher.

    t = (mae_canary - mae_prod) / sqrt(s_canary^2 / n_canary + s_prod^2 / n_prod), with s each side's sample
    standard deviation of its absolute errors and n its labelled predictions; the p-value is Student's t upper
    tail at t, with the Welch-Satterthwaite degrees of freedom. Welch's rather than Student's test: a worse
    model's errors usually also vary more. Neither side's errors varying leaves no spread: p-value 0.5 for equal
    errors, else 0 (the canary's are higher) or 1, with t undefined.
    """
    from scipy.stats import ttest_ind_from_stats

    means, spreads = (canary["mae"], prod["mae"]), (canary["absolute_error_std"], prod["absolute_error_std"])
    if not any(spreads):
        if means[0] == means[1]:
            return ErrorTest(0.0, 0.5)
        return ErrorTest(None, 0.0 if means[0] > means[1] else 1.0)
    result = ttest_ind_from_stats(
        means[0],
        spreads[0],
        canary["labelled_predictions"],
        means[1],
        spreads[1],
        prod["labelled_predictions"],
        equal_var=False,
        alternative="greater",
    )
    return ErrorTest(rounded(result.statistic), rounded(result.pvalue))


@dataclass(frozen=True)
class Comparison:
    """The test canary-decide runs on the labelled predictions, and how its outcome reads."""

    test: ProportionTest | ErrorTest
    name: str
    worse: str  # the finding when the test rejects H0
    not_worse: str  # the finding when it does not
    statistic: str  # e.g. "z -3.05"


def compare_quality(canary: dict[str, Any], prod: dict[str, Any], task: Task) -> Comparison:
    """A classifier's accuracy (`accuracy_drop_test`), a regressor's absolute errors (`error_rise_test`)."""
    if not is_classification(task):
        errors = error_rise_test(canary, prod)
        return Comparison(
            errors,
            ERROR_TEST,
            f"canary MAE {canary['mae']} is higher than prod's {prod['mae']}",
            "no evidence the canary's errors are larger",
            f"t {errors.t}",
        )
    accuracy = accuracy_drop_test(
        canary["correct"], canary["labelled_predictions"], prod["correct"], prod["labelled_predictions"]
    )
    return Comparison(
        accuracy,
        ACCURACY_TEST,
        f"canary accuracy {canary['accuracy']} is lower than prod's {prod['accuracy']}",
        "no evidence the canary is less accurate",
        f"z {accuracy.z}",
    )


def quality_test_name(task: Task) -> str:
    return ACCURACY_TEST if is_classification(task) else ERROR_TEST


@dataclass(frozen=True)
class Decision:
    decision: str  # promote | rollback | wait
    reasons: list[str]
    test: ProportionTest | ErrorTest | None = None


def decide(canary: dict[str, Any], prod: dict[str, Any], limits: Monitor, task: Task) -> Decision:
    """wait until both sides have `min_requests` requests and `min_labelled` labelled requests (a regressor also
    two labelled predictions, for the spread of its errors); then rollback if `compare_quality`'s test finds the
    canary worse at `significance`, or if its error rate or p99 latency is above both the monitor threshold and
    prod's own figure (a canary is not blamed for what prod does too); promote otherwise."""
    waiting = [
        f"{side} has {figures[key]} {what}, needs monitor.{need} ({getattr(limits, need)})"
        for side, figures in (("canary", canary), ("prod", prod))
        for key, what, need in (
            ("requests", "requests", "min_requests"),
            ("labelled_requests", "labelled requests", "min_labelled"),
        )
        if figures[key] < getattr(limits, need)
    ]
    if not waiting and not is_classification(task):
        waiting = [
            f"{side} has {figures['labelled_predictions']} labelled prediction, needs 2 for the spread of its errors"
            for side, figures in (("canary", canary), ("prod", prod))
            if figures["labelled_predictions"] < 2
        ]
    if waiting:
        return Decision("wait", waiting)
    comparison = compare_quality(canary, prod, task)
    test = comparison.test
    reasons = []
    if test.p_value < limits.significance:
        reasons.append(
            f"{comparison.worse}: {comparison.name}, {comparison.statistic}, p-value {test.p_value} < "
            f"significance {limits.significance}"
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
            f"{comparison.not_worse} ({comparison.name}: {comparison.statistic}, p-value {test.p_value} >= "
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
    decision = decide(sides["canary"], sides["prod"], params.monitor, labels.task)
    record = {
        **asdict(decision),
        "test_name": quality_test_name(labels.task),
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
