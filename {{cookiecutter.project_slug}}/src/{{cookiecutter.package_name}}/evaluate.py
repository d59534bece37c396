"""Stage 4: score the saved model on the test split: quality, latency, fairness, robustness, plots.

Everything follows `data.task` (binary, multiclass or regression); the metric names per task are listed
in `binary_metrics`, `multiclass_metrics` and `regression_metrics`. Quality measures are pure functions
of labels, predictions and a fitted model. A figure a task's data leaves undefined (ROC AUC without both
classes, MAPE with a true value of 0) is null, with the reason under "undefined": never a NaN.

Fairness of a classifier, for each sensitive column: selection rate, true and false positive rates per
group, the demographic parity difference (largest gap in selection rate) and the equalized odds
difference (the larger of the largest gaps in true and false positive rate); a multiclass model is judged
one class against the rest, for every class, and each gap is the largest over its classes. These are
fairlearn's definitions, and the project's tests check the figures against fairlearn's own functions;
they are computed here with one pandas group-by, because fairlearn's MetricFrame walks the rows in
Python. Awkward groups, and where this differs from fairlearn on purpose:
- Missing values in a sensitive column form a group of their own, named "missing" (fairlearn refuses
  them; replacing them with a label, as here, is what it asks for).
- A group with no actual positives has no true positive rate, and one with no actual negatives no
  false positive rate (0/0). fairlearn reports 0 for such a rate, which would claim that the model
  misses every positive of a group that had none, and widen the equalized odds gap with it. Here an
  undefined rate is recorded as null and left out of the gap: the gap in true positive rate is taken
  over the groups that have positives, the gap in false positive rate over those with negatives. That
  equals fairlearn's figure whenever every rate is defined. A gap needs two groups with the rate; with
  fewer it is 0. No figure is ever NaN, which JSON cannot hold.
- A group of one row is kept: its rates are exact for that row, and the gate reads the gap as it is.
Fairness of a regressor: each group's mean absolute error, and the gap between the largest and the
smallest, in the target's units.

Robustness: how much quality drops when the input is perturbed as real data drifts or breaks. Three
seeded perturbations of the test features: Gaussian noise on numeric columns (scaled to each
column's spread), values blanked to missing, and categories swapped for another seen category. The
drop is the scorer's clean value minus its perturbed value: scikit-learn's scorers are all greater-is-
better (errors are negated, `neg_mean_absolute_error`), so a positive drop is a loss for every metric.

`compute.engine: dask` scores each test partition on the workers (`scored_on_cluster`) and brings back only
the predictions, the target and the sensitive columns; every figure is then computed here by the functions
above, so it equals the local engine's on the same model and test rows. Robustness perturbs the same seeded
sample of rows, gathered from the workers; latency is timed here, on single rows, as the service runs.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.metrics import get_scorer
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .core import (
    HEADLINE_METRICS,
    MAIN_METRIC,
    Params,
    PipelineError,
    Robustness,
    load_params,
    read_parquet,
    rounded,
    sample_positions,
    write_json,
)
from .model import load_model
from .schema import Schema, check_params, load_schema, parse_rule, rule_holds
from .task import Predictions, Task, encode_target, is_classification, joined_predictions, predict

# --- Quality
CURVE_POINTS = 101
WARMUP_CALLS = 10  # untimed single-row calls before timing: first calls pay for lazy set-up


def binary_metrics(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict[str, Any]:
    """Binary (0/1 labels, the positive class's probability): accuracy, precision, recall, F1 (of the
    positive class, and macro and weighted over both), ROC AUC, average precision, log loss, the
    confusion counts and `per_class`.

    The ranking measures (ROC AUC, average precision) are undefined when the labels hold one class.
    """
    y_pred = (y_score >= threshold).astype(int)
    labels = [0, 1]
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=labels).ravel()
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0),
        **averaged_f1(y_true, y_pred, labels),
        "log_loss": skm.log_loss(y_true, y_score, labels=labels),
    }
    ranked = len(np.unique(y_true)) == 2
    if ranked:
        values["roc_auc"] = skm.roc_auc_score(y_true, y_score)
        values["average_precision"] = skm.average_precision_score(y_true, y_score)
    undefined = {} if ranked else dict.fromkeys(("roc_auc", "average_precision"), "the test labels hold one class")
    return {
        **figures(values, undefined),
        "per_class": per_class(y_true, y_pred, labels),
        "true_negatives": int(tn),
        "false_positives": int(fp),
        "false_negatives": int(fn),
        "true_positives": int(tp),
        "rows": int(len(y_true)),
    }


def multiclass_metrics(y_true: np.ndarray, predictions: Predictions) -> dict[str, Any]:
    """Multiclass (class labels as text): accuracy, F1 (macro and weighted), precision and recall (macro),
    one-vs-rest ROC AUC (macro), log loss, `per_class` and each class's share of the predictions.

    Every average runs over the model's classes, so a class the test split lacks still counts (as 0 where
    it has no rows); one-vs-rest ROC AUC is then undefined, as it is for any class without positives.
    """
    classes = list(predictions.classes)
    probabilities = np.asarray(predictions.probabilities)
    present = set(pd.unique(y_true))
    unseen = sorted(present - set(classes))
    if unseen:
        raise PipelineError(
            f"the test split holds classes {unseen} the model never saw in training: run `dvc repro` from "
            "preprocess, whose split keeps every class on both sides"
        )
    y_pred = predictions.values
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        **averaged_f1(y_true, y_pred, classes),
        "precision_macro": skm.precision_score(y_true, y_pred, labels=classes, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y_true, y_pred, labels=classes, average="macro", zero_division=0),
        "log_loss": skm.log_loss(y_true, probabilities, labels=classes),
    }
    absent = [label for label in classes if label not in present]
    undefined = {"roc_auc_ovr": f"the test labels lack classes {absent}"} if absent else {}
    if not absent:
        values["roc_auc_ovr"] = skm.roc_auc_score(
            y_true, probabilities, multi_class="ovr", average="macro", labels=classes
        )
    predicted = pd.Series(y_pred).value_counts()
    return {
        **figures(values, undefined),
        "per_class": per_class(y_true, y_pred, classes),
        "predicted_share": {str(label): rounded(predicted.get(label, 0) / len(y_pred)) for label in classes},
        "rows": int(len(y_true)),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Regression: MAE, RMSE, R², MAPE (a fraction, not a percentage), and the predictions' mean and spread.

    MAPE divides by each true value, so it is undefined when one is 0 (scikit-learn would divide by a
    tiny number instead and report an enormous error); R² needs two rows.
    """
    values = {
        "mae": skm.mean_absolute_error(y_true, y_pred),
        "rmse": skm.root_mean_squared_error(y_true, y_pred),
        "prediction_mean": np.mean(y_pred),
        "prediction_std": np.std(y_pred),
    }
    undefined = {}
    if len(y_true) < 2:
        undefined["r2"] = "fewer than two test rows"
    else:
        values["r2"] = skm.r2_score(y_true, y_pred)
    if (y_true == 0).any():
        undefined["mape"] = "a true value is 0, where the percentage error has no value"
    else:
        values["mape"] = skm.mean_absolute_percentage_error(y_true, y_pred)
    return {**figures(values, undefined), "rows": int(len(y_true))}


def quality(task: Task, y_true: np.ndarray, predictions: Predictions, threshold: float) -> dict[str, Any]:
    """The task's metrics, as metrics/evaluation.json records them."""
    if task == "binary":
        return binary_metrics(y_true, predictions.positive_probabilities, threshold)
    if task == "multiclass":
        return multiclass_metrics(y_true, predictions)
    return regression_metrics(y_true, predictions.values)


def averaged_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any]) -> dict[str, float]:
    return {
        f"f1_{average}": skm.f1_score(y_true, y_pred, labels=labels, average=average, zero_division=0)
        for average in ("macro", "weighted")
    }


def per_class(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Each class's precision, recall and rows (true members in the test split), keyed by its label as text."""
    precision, recall, _, rows = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        str(label): {"precision": rounded(p), "recall": rounded(r), "rows": int(n)}
        for label, p, r, n in zip(labels, precision, recall, rows, strict=True)
    }


def figures(values: dict[str, float], undefined: dict[str, str]) -> dict[str, Any]:
    """The measured figures, rounded; each undefined one null, with its reason under "undefined"."""
    return {
        **{name: rounded(value) for name, value in values.items()},
        **dict.fromkeys(undefined),
        **({"undefined": undefined} if undefined else {}),
    }


def roc_points(y_true: np.ndarray, y_score: np.ndarray) -> list[dict[str, float]]:
    """The ROC curve at a fixed number of false-positive rates, so the file stays small at any size."""
    fpr, tpr, _ = skm.roc_curve(y_true, y_score)
    grid = np.linspace(0, 1, CURVE_POINTS)
    return [{"fpr": rounded(x), "tpr": rounded(y)} for x, y in zip(grid, np.interp(grid, fpr, tpr), strict=True)]


def precision_recall_points(y_true: np.ndarray, y_score: np.ndarray) -> list[dict[str, float]]:
    """The precision-recall curve at a fixed number of recall levels (best precision at each)."""
    precision, recall, _ = skm.precision_recall_curve(y_true, y_score)
    order = np.argsort(recall, kind="stable")
    grid = np.linspace(0, 1, CURVE_POINTS)
    best = np.maximum.accumulate(precision[order][::-1])[::-1]
    return [
        {"recall": rounded(x), "precision": rounded(y)}
        for x, y in zip(grid, np.interp(grid, recall[order], best), strict=True)
    ]


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray, limit: int) -> list[dict[str, Any]]:
    """One record per test row for DVC's confusion template, labels as the metrics name them (0/1 for a
    binary model, the class for a multiclass one): the first `limit` rows (the split shuffled them), and
    beyond those the first row of any class, actual or predicted, they lack, so that every class shows.
    """
    kept = np.arange(min(limit, len(y_true)))
    for labels in (y_true, y_pred):
        kept = np.union1d(kept, np.unique(labels, return_index=True)[1])
    return [
        {"actual": actual, "predicted": predicted}
        for actual, predicted in zip(y_true[kept].tolist(), y_pred[kept].tolist(), strict=True)
    ]


def residual_rows(y_true: np.ndarray, y_pred: np.ndarray, limit: int) -> list[dict[str, float]]:
    """Residual (actual minus predicted) against the prediction, for the first `limit` test rows."""
    return [
        {"predicted": rounded(predicted), "residual": rounded(actual - predicted)}
        for actual, predicted in zip(y_true[:limit], y_pred[:limit], strict=True)
    ]


def predicted_actual_rows(y_true: np.ndarray, y_pred: np.ndarray, limit: int) -> list[dict[str, float]]:
    """Predicted against actual value, for the first `limit` test rows."""
    return [
        {"actual": rounded(actual), "predicted": rounded(predicted)}
        for actual, predicted in zip(y_true[:limit], y_pred[:limit], strict=True)
    ]


def plots(task: Task, y_true: np.ndarray, predictions: Predictions) -> dict[str, list[dict[str, Any]]]:
    """The task's plot files (name: records): binary ROC, precision-recall and confusion; multiclass
    confusion; regression residuals and predicted against actual.
    """
    if task == "regression":
        return {
            "residuals.json": residual_rows(y_true, predictions.values, PLOT_ROWS_MAX),
            "predicted_actual.json": predicted_actual_rows(y_true, predictions.values, PLOT_ROWS_MAX),
        }
    confusion = {"confusion_matrix.json": confusion_rows(y_true, predictions.values, PLOT_ROWS_MAX)}
    if task == "multiclass":
        return confusion
    y_score = predictions.positive_probabilities
    return {
        "roc.json": roc_points(y_true, y_score),
        "precision_recall.json": precision_recall_points(y_true, y_score),
        **confusion,
    }


def latency_ms(predict_rows: Callable[[pd.DataFrame], object], rows: pd.DataFrame, repeats: int) -> dict[str, float]:
    """Wall time of single-row predictions (`predict_proba` for a classifier, `predict` for a regressor), as a
    service worker answering one request would.

    On one thread, as such a worker is run: for one row, an OpenMP team (histogram gradient boosting
    predicts with one) costs more than it saves, and on a busy machine its threads wait on each other
    for tens of milliseconds. A few untimed calls warm the caches first; then every row is timed
    `repeats` times over, and each percentile is the median of the repeats' percentiles. The spread
    (largest minus smallest repeat) is the run-to-run noise the report compares a change with.
    """
    repeat_percentiles = []
    with threadpool_limits(limits=1):
        for index in range(min(WARMUP_CALLS, len(rows))):
            predict_rows(rows.iloc[[index]])
        singles = [rows.iloc[[index]] for index in range(len(rows))]
        for _ in range(repeats):
            timings = []
            for row in singles:
                start = time.perf_counter()
                predict_rows(row)
                timings.append((time.perf_counter() - start) * 1000)
            repeat_percentiles.append(np.percentile(timings, [50, 95, 99]))
    percentiles = np.array(repeat_percentiles)
    p50, p95, p99 = np.median(percentiles, axis=0)
    spread = percentiles.max(axis=0) - percentiles.min(axis=0)
    return {
        "latency_p50_ms": rounded(p50),
        "latency_p95_ms": rounded(p95),
        "latency_p99_ms": rounded(p99),
        "latency_p50_ms_spread": rounded(spread[0]),
        "latency_p99_ms_spread": rounded(spread[2]),
        "latency_rows": len(rows),
        "latency_repeats": repeats,
    }


# --- Fairness
MISSING_GROUP = "missing"


RATE_GAPS = ("demographic_parity_difference", "equalized_odds_difference")  # classification's gaps
ERROR_GAP = "mae_gap"  # regression's: in the target's units


def group_names(groups: pd.Series) -> np.ndarray:
    """Each row's group as text; a missing value is a group of its own."""
    if pd.api.types.is_numeric_dtype(groups) and (groups.dropna() % 1 == 0).all():
        groups = groups.astype("Int64")  # a code such as sex 1/2 is read as float: its groups are "1" and "2"
    return groups.astype("string").fillna(MISSING_GROUP).to_numpy()


def group_rates(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> pd.DataFrame:
    """Rows, selection rate, true and false positive rate of each group (NaN where a group has no such rows)."""
    frame = pd.DataFrame(
        {
            "group": group_names(groups),
            "predicted": np.asarray(y_pred, dtype=float),
            "actual": np.asarray(y_true, dtype=int),
        }
    )
    by_group = frame.groupby("group", sort=True)
    rates = pd.DataFrame({"rows": by_group.size(), "selection_rate": by_group["predicted"].mean()})
    for name, actual in (("true_positive_rate", 1), ("false_positive_rate", 0)):
        rates[name] = frame[frame["actual"] == actual].groupby("group")["predicted"].mean()
    return rates


def group_fairness(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict:
    """Per-group rates and the two gap measures for one sensitive column and 0/1 labels; undefined rates are null."""
    rates = group_rates(y_true, y_pred, groups)
    gap = (rates.max() - rates.min()).fillna(0.0)  # over the groups where each rate is defined
    return {
        "groups": {
            str(group): {"rows": int(row["rows"]), **{name: _rounded(row[name]) for name in rates.columns[1:]}}
            for group, row in rates.iterrows()
        },
        "demographic_parity_difference": _rounded(gap["selection_rate"]),
        "equalized_odds_difference": _rounded(max(gap["true_positive_rate"], gap["false_positive_rate"])),
    }


def class_fairness(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series, classes: Sequence[Any]) -> dict:
    """Multiclass: `group_fairness` of each class against the rest, and each gap's largest value over the classes."""
    by_class = {
        str(label): group_fairness((y_true == label).astype(int), (y_pred == label).astype(int), groups)
        for label in classes
    }
    return {"by_class": by_class, **{gap: max(report[gap] for report in by_class.values()) for gap in RATE_GAPS}}


def error_fairness(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict:
    """Regression: each group's rows and mean absolute error, and the largest gap between two groups' MAE."""
    errors = pd.Series(np.abs(np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)))
    by_group = errors.groupby(group_names(groups), sort=True).agg(["size", "mean"])
    return {
        "groups": {
            str(group): {"rows": int(row["size"]), "mae": rounded(row["mean"])} for group, row in by_group.iterrows()
        },
        ERROR_GAP: rounded(by_group["mean"].max() - by_group["mean"].min()),
    }


def fairness_report(
    task: Task,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    frame: pd.DataFrame,
    sensitive: list[str],
    classes: Sequence[Any],
) -> dict:
    """Fairness per sensitive column, as the task measures it, and the largest gap of any kind over all of them."""

    def column_fairness(groups: pd.Series) -> dict:
        if task == "regression":
            return error_fairness(y_true, y_pred, groups)
        if task == "multiclass":
            return class_fairness(y_true, y_pred, groups, classes)
        return group_fairness(y_true, y_pred, groups)

    per_column = {column: column_fairness(frame[column]) for column in sensitive}
    gaps = [report[gap] for report in per_column.values() for gap in (*RATE_GAPS, ERROR_GAP) if gap in report]
    return {"by_column": per_column, "max_gap": max(gaps, default=0.0)}


def _rounded(value: float) -> float | None:
    return None if pd.isna(value) else rounded(value)


# --- Robustness
def add_numeric_noise(frame: pd.DataFrame, scale: float, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
    """Gaussian noise scaled to each column's spread, kept in the column's range, whole numbers kept whole."""
    noisy = frame.copy()
    for column in frame.select_dtypes("number").columns:
        spec = schema.columns[column]
        spread = float(frame[column].std()) or 1.0
        values = (frame[column] + rng.normal(0.0, scale * spread, size=len(frame))).clip(spec.min, spec.max)
        noisy[column] = values.round() if spec.type == "integer" else values
    return noisy


def inject_missing(frame: pd.DataFrame, rate: float, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
    """Values blanked at `rate`, in the columns the contract lets be missing (`nullable`)."""
    blanked = frame.copy()
    for column in frame.columns:
        if schema.columns[column].nullable:
            blanked[column] = frame[column].mask(rng.random(len(frame)) < rate)
    return blanked


def swap_categories(frame: pd.DataFrame, rate: float, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
    """Labels swapped at `rate` for another label of the column seen in the data."""
    swapped = frame.copy()
    for column in frame.select_dtypes("category").columns:
        categories = frame[column].cat.categories
        if len(categories) < 2:
            continue
        chosen = rng.random(len(frame)) < rate
        replacement = pd.Categorical(rng.choice(categories, size=int(chosen.sum())), categories=categories)
        values = swapped[column].copy()
        values[chosen] = replacement
        swapped[column] = values
    return swapped


def within_rules(perturbed: pd.DataFrame, clean: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The perturbed rows, except that a row breaking a business rule keeps its clean values.

    Rules that read a column the features lack (the target) are left to validate: no perturbation touches it.
    """
    broken = np.zeros(len(clean), dtype=bool)
    for name, expression in schema.rules.items():
        if parse_rule(name, expression, set(schema.columns)) <= set(clean.columns):
            broken |= ~rule_holds(perturbed, name, expression).to_numpy()
    return perturbed.mask(pd.Series(broken, index=clean.index), clean) if broken.any() else perturbed


def robustness_report(
    score: Callable[[pd.DataFrame, np.ndarray], float],
    features: pd.DataFrame,
    labels: np.ndarray,
    settings: Robustness,
    seed: int,
    schema: Schema,
    stratified: bool,
) -> dict:
    """The metric on clean and perturbed features, each drop from clean, and the largest drop.

    The perturbed data stays inside the data contract, as drifting data that validate and the service
    accept would: missing values only where a column may be missing, numbers in their range, and the
    business rules kept. Data outside the contract never reaches the model, so a drop measured on it
    would count failures no user can see (and grows with the model's skill on the columns it blanks).

    On a seeded sample of at most `max_rows` rows: four scorings of the whole test set would cost more
    than the rest of evaluate at 10M rows, and the drop is a difference of two scores on the same rows.
    `stratified` (classification) keeps each class's share of the rows in that sample.
    """
    kept = robustness_positions(labels, settings.max_rows, seed, stratified)
    features, labels = features.iloc[kept], labels[kept]
    perturbations = {
        "numeric_noise": (add_numeric_noise, settings.noise_scale),
        "missing_values": (inject_missing, settings.missing_rate),
        "category_swap": (swap_categories, settings.swap_rate),
    }
    clean = score(features, labels)
    perturbed = {
        name: score(
            within_rules(perturb(features, rate, np.random.default_rng(seed), schema), features, schema), labels
        )
        for name, (perturb, rate) in perturbations.items()
    }
    drops = {name: rounded(clean - value) for name, value in perturbed.items()}
    return {
        "clean": rounded(clean),
        "perturbed": {name: rounded(value) for name, value in perturbed.items()},
        "drop": drops,
        "max_drop": max(drops.values()),
    }


def robustness_positions(labels: np.ndarray, rows: int, seed: int, stratified: bool) -> np.ndarray:
    """The positions of robustness's seeded sample of `rows` test rows: the same rows whichever engine draws it."""
    strata = np.unique(labels, return_inverse=True)[1] if stratified else None
    return sample_positions(len(labels), rows, seed, strata)


def robustness_scorer(metric: str, task: Task) -> Callable[[Pipeline, pd.DataFrame, np.ndarray], float]:
    """scikit-learn's scorer named `metric`; an unknown name, or a scorer that fails on the model (such as
    roc_auc of a regressor, or r2 of class labels), is a PipelineError that names it.
    """
    fix = f"use a scorer that suits a {task} model, e.g. {MAIN_METRIC[task]}"
    try:
        scorer = get_scorer(metric)
    except ValueError:
        raise PipelineError(
            f"params.yaml: 'evaluate.robustness.metric' is {metric!r}, not a scikit-learn scorer name "
            f"(sklearn.metrics.get_scorer_names()): {fix}"
        ) from None

    def score(model: Pipeline, features: pd.DataFrame, labels: np.ndarray) -> float:
        try:
            return float(scorer(model, features, labels))
        except (ValueError, TypeError, AttributeError) as error:
            raise PipelineError(
                f"params.yaml: 'evaluate.robustness.metric' {metric!r} cannot score this {task} model ({error}): {fix}"
            ) from None

    return score


# --- The stage
PLOT_ROWS_MAX = 20_000  # test rows a per-row plot holds: keeps the file small; the exact figures are in the metrics
SNAPSHOT_ROWS = 20  # test rows whose predictions are recorded for the snapshot test


def snapshot(predictions: Predictions, rows: list[Any], task: Task) -> dict[str, Any]:
    """The first test rows' predictions, exactly as float64 (serving must match them to the bit).

    metrics/sample_predictions.json:
    - `rows`: the test split's index labels of those rows;
    - binary: `probabilities`, the positive class's probability, one float per row;
    - multiclass: `classes`, the model's classes as text labels, and `probabilities`, one list per row
      holding each class's probability in the order of `classes`;
    - regression: `predictions`, the predicted value, one float per row.
    """
    shown = len(rows)
    if task == "regression":
        return {"rows": rows, "predictions": predictions.values[:shown].tolist()}
    if task == "multiclass":
        return {
            "rows": rows,
            "classes": [str(label) for label in predictions.classes],
            "probabilities": np.asarray(predictions.probabilities)[:shown].tolist(),
        }
    return {"rows": rows, "probabilities": predictions.positive_probabilities[:shown].tolist()}


@dataclass(frozen=True)
class Scored:
    """What evaluate measures, from either engine: every test row's true label and prediction, the columns
    fairness groups by, the first test rows (latency, snapshot) and the rows robustness perturbs."""

    y_true: np.ndarray
    predictions: Predictions
    groups: pd.DataFrame  # the sensitive columns, row for row
    head: pd.DataFrame  # the first test rows' features, indexed by position
    robust_features: pd.DataFrame  # all the test features (local), or robustness's sample of them (dask)
    robust_labels: np.ndarray


def scored_here(model: Pipeline, params: Params) -> Scored:
    test = read_parquet(params.paths.test)
    y_true = encode_target(test[params.data.target], params.data)
    features = test.drop(columns=[params.data.target])
    predictions = predict(model, features, params.data.task, params.evaluate.decision_threshold)
    head = features.head(max(params.evaluate.latency_rows, SNAPSHOT_ROWS))
    return Scored(y_true, predictions, test[params.evaluate.fairness.sensitive], head, features, y_true)


def scored_on_cluster(model: Pipeline, params: Params) -> Scored:
    """Each test partition scored on the workers by the one local model (sent to each once); the predictions,
    the target and the sensitive columns come back, a few bytes a row, for the local engine's own measures.
    Robustness's seeded sample and the first rows are gathered from the partitions that hold them."""
    from dask import delayed

    from .compute import dask_client, read_partitions, rows_at_positions

    settings, target, task = params.evaluate, params.data.target, params.data.task
    kept_columns = [target, *settings.fairness.sensitive]
    with dask_client(params.compute) as client:
        frame = read_partitions(params.paths.test)
        shared = client.scatter(model, broadcast=True)
        scoring = [
            delayed(scored_partition)(part, shared, task, settings.decision_threshold, target, kept_columns)
            for part in frame.to_delayed()
        ]
        parts = client.gather(client.compute(scoring))
        columns = pd.concat([kept for _, kept in parts], ignore_index=True)
        y_true = encode_target(columns[target], params.data)
        lengths = [len(kept) for _, kept in parts]
        sample = robustness_positions(
            y_true, settings.robustness.max_rows, settings.robustness.seed, is_classification(task)
        )
        robust = rows_at_positions(frame, lengths, sample).drop(columns=[target])
        head_rows = min(max(settings.latency_rows, SNAPSHOT_ROWS), len(y_true))
        head = rows_at_positions(frame, lengths, np.arange(head_rows)).drop(columns=[target])
    predictions = joined_predictions([predictions for predictions, _ in parts])
    return Scored(y_true, predictions, columns[settings.fairness.sensitive], head, robust, y_true[sample])


def scored_partition(
    partition: pd.DataFrame, model: Pipeline, task: Task, threshold: float, target: str, kept: list[str]
) -> tuple[Predictions, pd.DataFrame]:
    """One test partition's predictions, and its columns in `kept` (runs on a worker)."""
    return predict(model, partition.drop(columns=[target]), task, threshold), partition[kept].reset_index(drop=True)


def main() -> None:
    params = load_params()
    paths, settings, task = params.paths, params.evaluate, params.data.task
    schema = load_schema(paths.contract)
    check_params(params, schema)
    score = robustness_scorer(settings.robustness.metric, task)
    model = load_model(paths.model)
    scored = scored_on_cluster(model, params) if params.compute.engine == "dask" else scored_here(model, params)
    y_true, predictions = scored.y_true, scored.predictions
    classification = is_classification(task)

    scores = quality(task, y_true, predictions, settings.decision_threshold)
    robustness = settings.robustness
    outputs = {  # every result first, then every write: a failure part-way leaves the last good files
        paths.evaluation: scores,
        paths.latency: latency_ms(
            model.predict_proba if classification else model.predict,
            scored.head.head(settings.latency_rows),
            settings.latency_repeats,
        ),
        paths.fairness: fairness_report(
            task, y_true, predictions.values, scored.groups, settings.fairness.sensitive, predictions.classes
        ),
        paths.robustness: robustness_report(
            lambda frame, labels: score(model, frame, labels),
            scored.robust_features,
            scored.robust_labels,
            robustness,
            robustness.seed,
            schema,
            stratified=classification,
        ),
        paths.predictions: snapshot(predictions, scored.head.head(SNAPSHOT_ROWS).index.tolist(), task),
        **{paths.plots / name: records for name, records in plots(task, y_true, predictions).items()},
    }
    for path, data in outputs.items():
        write_json(data, path)
    print("evaluate: " + ", ".join(f"{name} {scores[name]}" for name in HEADLINE_METRICS[task]))
