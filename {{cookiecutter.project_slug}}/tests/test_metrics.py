import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from {{ cookiecutter.package_name }}.core import PipelineError
from {{ cookiecutter.package_name }}.evaluate import (
    CURVE_POINTS,
    WARMUP_CALLS,
    binary_metrics,
    confusion_rows,
    latency_ms,
    multiclass_metrics,
    plots,
    precision_recall_points,
    predicted_actual_rows,
    regression_metrics,
    residual_rows,
    roc_points,
    snapshot,
)
from {{ cookiecutter.package_name }}.task import Predictions

Y_TRUE = np.array([0, 0, 1, 1, 1, 0])
CLASSES = ["class_0", "class_1", "class_2"]


def test_perfect_scores_give_perfect_metrics():
    scores = binary_metrics(Y_TRUE, Y_TRUE.astype(float), threshold=0.5)
    assert scores["accuracy"] == scores["f1"] == scores["roc_auc"] == scores["f1_macro"] == 1.0
    assert (scores["true_positives"], scores["true_negatives"]) == (3, 3)


def test_threshold_decides_the_predicted_class():
    y_score = np.array([0.1, 0.4, 0.45, 0.8, 0.9, 0.2])
    low = binary_metrics(Y_TRUE, y_score, threshold=0.3)
    high = binary_metrics(Y_TRUE, y_score, threshold=0.5)
    assert (low["recall"], high["recall"]) == (1.0, pytest.approx(2 / 3, abs=1e-6))


def test_binary_averages_log_loss_and_per_class_figures_are_scikit_learns():
    rng = np.random.default_rng(0)
    y_true, y_score = rng.integers(0, 2, 300), rng.random(300)
    y_pred = (y_score >= 0.4).astype(int)
    scores = binary_metrics(y_true, y_score, threshold=0.4)
    assert scores["f1_macro"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"), abs=1e-6)
    assert scores["f1_weighted"] == pytest.approx(skm.f1_score(y_true, y_pred, average="weighted"), abs=1e-6)
    assert scores["log_loss"] == pytest.approx(skm.log_loss(y_true, y_score), abs=1e-6)
    for label in (0, 1):
        figures = scores["per_class"][str(label)]
        assert figures["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, pos_label=label), abs=1e-6)
        assert figures["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, pos_label=label), abs=1e-6)
        assert figures["rows"] == int((y_true == label).sum())


def test_binary_labels_of_one_class_leave_the_ranking_measures_undefined():
    scores = binary_metrics(np.ones(4, dtype=int), np.array([0.2, 0.6, 0.7, 0.9]), threshold=0.5)
    assert scores["roc_auc"] is None and scores["undefined"]["roc_auc"] == "the test labels hold one class"
    json.dumps(scores, allow_nan=False)


def multiclass_predictions(rows: int, seed: int, classes: list[str] = CLASSES) -> tuple[np.ndarray, Predictions]:
    """Random truth and a model's random (but informative) probabilities, predicting the most likely class."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice(classes, rows)
    probabilities = rng.dirichlet(np.ones(len(classes)), rows)
    probabilities[np.arange(rows), [classes.index(label) for label in y_true]] += 0.3
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    values = np.array(classes, dtype=object)[probabilities.argmax(axis=1)]
    return y_true.astype(object), Predictions(values=values, probabilities=probabilities, classes=list(classes))


def test_multiclass_metrics_are_scikit_learns():
    y_true, predictions = multiclass_predictions(400, seed=1)
    y_pred = predictions.values
    scores = multiclass_metrics(y_true, predictions)
    expected = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "f1_macro": skm.f1_score(y_true, y_pred, average="macro"),
        "f1_weighted": skm.f1_score(y_true, y_pred, average="weighted"),
        "precision_macro": skm.precision_score(y_true, y_pred, average="macro"),
        "recall_macro": skm.recall_score(y_true, y_pred, average="macro"),
        "roc_auc_ovr": skm.roc_auc_score(y_true, predictions.probabilities, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(y_true, predictions.probabilities),
    }
    assert {name: scores[name] for name in expected} == pytest.approx(expected, abs=1e-6)
    precision = skm.precision_score(y_true, y_pred, labels=CLASSES, average=None)
    recall = skm.recall_score(y_true, y_pred, labels=CLASSES, average=None)
    for index, label in enumerate(CLASSES):
        assert scores["per_class"][label] == {
            "precision": pytest.approx(precision[index], abs=1e-6),
            "recall": pytest.approx(recall[index], abs=1e-6),
            "rows": int((y_true == label).sum()),
        }
        assert scores["predicted_share"][label] == pytest.approx((y_pred == label).mean(), abs=1e-6)
    assert scores["rows"] == 400 and "undefined" not in scores


def test_a_class_the_test_split_lacks_counts_in_the_averages_and_leaves_roc_auc_undefined():
    y_true, predictions = multiclass_predictions(200, seed=2)
    kept = y_true != "class_2"
    y_true = y_true[kept]
    predictions = Predictions(predictions.values[kept], np.asarray(predictions.probabilities)[kept], CLASSES)
    scores = multiclass_metrics(y_true, predictions)
    assert scores["roc_auc_ovr"] is None and "class_2" in scores["undefined"]["roc_auc_ovr"]
    expected_f1 = skm.f1_score(y_true, predictions.values, labels=CLASSES, average="macro", zero_division=0)
    assert scores["f1_macro"] == pytest.approx(expected_f1, abs=1e-6)
    assert scores["log_loss"] == pytest.approx(skm.log_loss(y_true, predictions.probabilities, labels=CLASSES))
    assert scores["per_class"]["class_2"]["rows"] == 0
    json.dumps(scores, allow_nan=False)


def test_a_class_the_model_never_saw_is_a_clear_error():
    y_true, predictions = multiclass_predictions(30, seed=3)
    y_true[0] = "class_9"
    with pytest.raises(PipelineError, match=r"classes \['class_9'\] the model never saw"):
        multiclass_metrics(y_true, predictions)


def test_regression_metrics_are_scikit_learns():
    rng = np.random.default_rng(4)
    y_true = rng.normal(150, 50, 300)
    y_pred = y_true + rng.normal(0, 20, 300)
    scores = regression_metrics(y_true, y_pred)
    expected = {
        "mae": skm.mean_absolute_error(y_true, y_pred),
        "rmse": skm.root_mean_squared_error(y_true, y_pred),
        "r2": skm.r2_score(y_true, y_pred),
        "mape": skm.mean_absolute_percentage_error(y_true, y_pred),
        "prediction_mean": y_pred.mean(),
        "prediction_std": y_pred.std(),
    }
    assert {name: scores[name] for name in expected} == pytest.approx(expected, abs=1e-6)
    assert scores["rows"] == 300 and "undefined" not in scores


def test_mape_is_undefined_when_a_true_value_is_zero():
    y_true, y_pred = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.5, 1.0, 2.5, 2.0])
    scores = regression_metrics(y_true, y_pred)
    assert scores["mape"] is None and "true value is 0" in scores["undefined"]["mape"]
    assert scores["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    json.dumps(scores, allow_nan=False)


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


def test_multiclass_confusion_rows_are_labels_and_show_every_class_beyond_the_cap():
    y_true = np.array(["a", "a", "a", "b", "a", "c", "a"], dtype=object)
    y_pred = np.array(["a", "a", "b", "b", "a", "a", "d"], dtype=object)
    rows = confusion_rows(y_true, y_pred, limit=2)
    assert rows == [
        {"actual": "a", "predicted": "a"},
        {"actual": "a", "predicted": "a"},
        {"actual": "a", "predicted": "b"},  # the first row predicting b
        {"actual": "b", "predicted": "b"},  # the first row that is b
        {"actual": "c", "predicted": "a"},  # the first c
        {"actual": "a", "predicted": "d"},  # the first row predicting d
    ]


def test_regression_plots_are_capped_and_residual_is_actual_minus_predicted():
    y_true, y_pred = np.array([3.0, 5.0, 7.5]), np.array([2.5, 6.0, 7.5])
    assert residual_rows(y_true, y_pred, limit=2) == [
        {"predicted": 2.5, "residual": 0.5},
        {"predicted": 6.0, "residual": -1.0},
    ]
    assert predicted_actual_rows(y_true, y_pred, limit=5) == [
        {"actual": 3.0, "predicted": 2.5},
        {"actual": 5.0, "predicted": 6.0},
        {"actual": 7.5, "predicted": 7.5},
    ]


def test_each_task_draws_its_own_plots():
    y_true, predictions = multiclass_predictions(20, seed=5)
    binary = Predictions(values=Y_TRUE, probabilities=np.eye(2)[Y_TRUE].astype(float), classes=[0, 1])
    regression = Predictions(values=np.arange(6.0), probabilities=None, classes=[])
    assert set(plots("binary", Y_TRUE, binary)) == {"roc.json", "precision_recall.json", "confusion_matrix.json"}
    assert set(plots("multiclass", y_true, predictions)) == {"confusion_matrix.json"}
    assert set(plots("regression", np.arange(6.0), regression)) == {"residuals.json", "predicted_actual.json"}


def test_the_snapshot_records_each_tasks_exact_predictions():
    y_true, multiclass = multiclass_predictions(5, seed=6)
    probabilities = np.array([[0.7, 0.3], [0.1, 0.9], [0.4, 0.6]])
    binary = Predictions(values=np.array([0, 1, 1]), probabilities=probabilities, classes=[0, 1])
    regression = Predictions(values=np.array([1.5, 2.25, 3.0]), probabilities=None, classes=[])
    assert snapshot(binary, ["r1", "r2"], "binary") == {"rows": ["r1", "r2"], "probabilities": [0.3, 0.9]}
    assert snapshot(regression, [7, 8], "regression") == {"rows": [7, 8], "predictions": [1.5, 2.25]}
    recorded = snapshot(multiclass, [0, 1], "multiclass")
    assert recorded["classes"] == CLASSES
    assert recorded["probabilities"] == np.asarray(multiclass.probabilities)[:2].tolist()  # exact, in class order


class CountingModel:
    def __init__(self):
        self.calls = 0

    def predict(self, rows):
        self.calls += 1
        return np.zeros(len(rows))


def test_latency_warms_up_then_takes_the_median_of_repeats_and_their_spread():
    model, rows = CountingModel(), pd.DataFrame({"a": range(30)})
    latency = latency_ms(model.predict, rows, repeats=4)
    assert model.calls == WARMUP_CALLS + 4 * 30
    assert (latency["latency_rows"], latency["latency_repeats"]) == (30, 4)
    assert 0 <= latency["latency_p50_ms"] <= latency["latency_p95_ms"] <= latency["latency_p99_ms"]
    assert latency["latency_p50_ms_spread"] >= 0 and latency["latency_p99_ms_spread"] >= 0
