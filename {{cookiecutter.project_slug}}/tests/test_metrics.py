import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.evaluate import (
    CURVE_POINTS,
    WARMUP_CALLS,
    classification_metrics,
    confusion_rows,
    latency_ms,
    precision_recall_points,
    roc_points,
)

Y_TRUE = np.array([0, 0, 1, 1, 1, 0])


def test_perfect_scores_give_perfect_metrics():
    scores = classification_metrics(Y_TRUE, Y_TRUE.astype(float), threshold=0.5)
    assert scores["accuracy"] == scores["f1"] == scores["roc_auc"] == 1.0
    assert (scores["true_positives"], scores["true_negatives"]) == (3, 3)


def test_threshold_decides_the_predicted_class():
    y_score = np.array([0.1, 0.4, 0.45, 0.8, 0.9, 0.2])
    low = classification_metrics(Y_TRUE, y_score, threshold=0.3)
    high = classification_metrics(Y_TRUE, y_score, threshold=0.5)
    assert (low["recall"], high["recall"]) == (1.0, pytest.approx(2 / 3, abs=1e-6))


def test_curves_have_a_fixed_size_and_the_right_ends():
    y_score = np.array([0.1, 0.4, 0.45, 0.8, 0.9, 0.2])
    roc = roc_points(Y_TRUE, y_score)
    pr = precision_recall_points(Y_TRUE, y_score)
    assert len(roc) == len(pr) == CURVE_POINTS
    assert roc[-1] == {"fpr": 1.0, "tpr": 1.0}
    assert all(a["tpr"] <= b["tpr"] for a, b in zip(roc, roc[1:], strict=False))


def test_confusion_rows_are_capped():
    rows = confusion_rows(Y_TRUE, Y_TRUE, limit=4)
    assert rows == [
        {"actual": 0, "predicted": 0},
        {"actual": 0, "predicted": 0},
        {"actual": 1, "predicted": 1},
        {"actual": 1, "predicted": 1},
    ]


class CountingModel:
    def __init__(self):
        self.calls = 0

    def predict_proba(self, rows):
        self.calls += 1
        return np.zeros((len(rows), 2))


def test_latency_warms_up_then_takes_the_median_of_repeats_and_their_spread():
    model, rows = CountingModel(), pd.DataFrame({"a": range(30)})
    latency = latency_ms(model, rows, repeats=4)
    assert model.calls == WARMUP_CALLS + 4 * 30
    assert (latency["latency_rows"], latency["latency_repeats"]) == (30, 4)
    assert 0 <= latency["latency_p50_ms"] <= latency["latency_p95_ms"] <= latency["latency_p99_ms"]
    assert latency["latency_p50_ms_spread"] >= 0 and latency["latency_p99_ms_spread"] >= 0
