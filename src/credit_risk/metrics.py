"""Model quality measures: pure functions of labels, scores and a fitted model."""

import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from threadpoolctl import threadpool_limits

from .files import rounded

CURVE_POINTS = 101
WARMUP_CALLS = 10  # untimed single-row calls before timing: first calls pay for lazy set-up


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC and the confusion counts for 0/1 labels.

    The ranking measures (ROC AUC, average precision) are undefined when the labels hold one class:
    they are then null, with the reason under "undefined", never a NaN that JSON cannot hold.
    """
    y_pred = (y_score >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0),
    }
    ranked = len(np.unique(y_true)) == 2
    if ranked:
        values["roc_auc"] = skm.roc_auc_score(y_true, y_score)
        values["average_precision"] = skm.average_precision_score(y_true, y_score)
    undefined = {} if ranked else dict.fromkeys(("roc_auc", "average_precision"), "the test labels hold one class")
    figures = {name: rounded(value) for name, value in values.items()}
    return {
        **figures,
        **dict.fromkeys(undefined),
        **({"undefined": undefined} if undefined else {}),
        "true_negatives": int(tn),
        "false_positives": int(fp),
        "false_negatives": int(fn),
        "true_positives": int(tp),
        "rows": int(len(y_true)),
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


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray, limit: int) -> list[dict[str, int]]:
    """One record per test row for DVC's confusion template; the first `limit` rows at most."""
    return [{"actual": int(a), "predicted": int(p)} for a, p in zip(y_true[:limit], y_pred[:limit], strict=True)]


def latency_ms(model, rows: pd.DataFrame, repeats: int) -> dict[str, float]:
    """Wall time of single-row `predict_proba` calls, as a service worker answering one request would.

    On one thread, as such a worker is run: for one row, an OpenMP team (histogram gradient boosting
    predicts with one) costs more than it saves, and on a busy machine its threads wait on each other
    for tens of milliseconds. A few untimed calls warm the caches first; then every row is timed
    `repeats` times over, and each percentile is the median of the repeats' percentiles. The spread
    (largest minus smallest repeat) is the run-to-run noise the report compares a change with.
    """
    repeat_percentiles = []
    with threadpool_limits(limits=1):
        for index in range(min(WARMUP_CALLS, len(rows))):
            model.predict_proba(rows.iloc[[index]])
        singles = [rows.iloc[[index]] for index in range(len(rows))]
        for _ in range(repeats):
            timings = []
            for row in singles:
                start = time.perf_counter()
                model.predict_proba(row)
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
