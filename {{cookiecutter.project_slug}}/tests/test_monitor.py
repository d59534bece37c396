"""`monitor` and `canary-decide` as pure functions of the prediction log's two frames."""

import json
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_ind
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

from {{ cookiecutter.package_name }}.core import Monitor, PipelineError, write_json
from {{ cookiecutter.package_name }}.monitor import (
    Labels,
    accuracy_drop_test,
    decide,
    evaluation_positive_rate,
    logged_inputs,
    monitor_report,
    prediction_drift,
    version_figures,
)
from {{ cookiecutter.package_name }}.schema import ColumnSpec, Schema

LIMITS = Monitor(
    min_requests=4,
    error_rate_max=0.2,
    latency_p99_ms_max=100,
    positive_rate_max_gap=0.1,
    class_share_max_gap=0.1,
    prediction_mean_max_shift=0.5,
    drift_psi_max=0.2,
    drifted_share_max=0.5,
    min_labelled=2,
    f1_min=0.75,
    accuracy_min=0.7,
    mae_max=10.0,
    significance=0.05,
)
LABELS = Labels(task="binary", positive=1.0, numeric=True)
TIME = pd.Timestamp("2026-11-27T06:00:00Z")


def logged(version: str, statuses: list[int], latencies: list[float], predicted: list, truth: list) -> tuple:
    """One single-row request per status; the answered ones (status 200) each logged a prediction."""
    ids = [f"{version}-{n}" for n in range(len(statuses))]
    requests = pd.DataFrame(
        {
            "request_id": ids,
            "time": [TIME + pd.Timedelta(seconds=n) for n in range(len(ids))],
            "model_version": version,
            "route_key": None,
            "status": statuses,
            "rows": 1,
            "latency_ms": latencies,
        }
    )
    answered = [rid for rid, status in zip(ids, statuses, strict=True) if status == 200]
    predictions = pd.DataFrame(
        {
            "request_id": answered,
            "row": 0,
            "model_version": version,
            "prediction": predicted,
            "probability": [None if isinstance(value, float) else 0.9 if value == 1 else 0.1 for value in predicted],
            "label": truth,
        }
    )
    return requests, predictions


def both(*logs: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    requests, predictions = zip(*logs, strict=True)
    return pd.concat(requests, ignore_index=True), pd.concat(predictions, ignore_index=True)


def test_a_version_s_traffic_and_labelled_quality_are_counted_by_hand():
    requests, predictions = logged(
        "v1.0.0", [200, 200, 200, 200, 500], [10, 20, 30, 40, 1000], [1, 1, 0, 1], [1, 0, 0, None]
    )
    figures = version_figures(requests, predictions, "v1.0.0", LABELS)
    assert figures["requests"] == 5 and figures["server_errors"] == 1 and figures["error_rate"] == 0.2
    assert figures["latency_p50_ms"] == 30
    assert figures["positive_rate"] == 0.75
    # labelled: (1, 1) right, (1, 0) wrong, (0, 0) right: accuracy 2/3; one true positive, F1 = 2 / (2 + 1)
    assert figures["labelled_requests"] == 3 and figures["correct"] == 2
    assert figures["accuracy"] == pytest.approx(2 / 3, abs=1e-6) and figures["f1"] == pytest.approx(2 / 3, abs=1e-6)


def test_labels_compare_as_the_contract_types_them():
    requests, predictions = logged("v1", [200, 200], [1, 1], ["1", 1.0], [1, "1"])
    figures = version_figures(requests, predictions, "v1", LABELS)
    assert figures["accuracy"] == 1.0 and figures["positive_rate"] == 1.0


def test_the_evaluation_s_positive_rate_is_predicted_positives_over_rows():
    assert evaluation_positive_rate({"true_positives": 126, "false_positives": 32, "rows": 200}) == 0.79
    assert evaluation_positive_rate(None) is None


def report_of(*logs: tuple, expected: float = 0.75) -> dict:
    requests, predictions = both(*logs)
    versions = {}
    for version in sorted(requests["model_version"].unique()):
        figures = version_figures(requests, predictions, version, LABELS)
        figures["evaluation_positive_rate"] = expected
        figures["positive_rate_gap"] = round(abs(figures["positive_rate"] - expected), 6)
        versions[version] = figures
    window = {"since": None, "until": requests["time"].max().isoformat()}
    return monitor_report(window, versions, LIMITS, refused=0)


def test_each_breach_is_one_alert_line_naming_version_metric_value_and_threshold():
    slow = logged("v1.1.0", [200, 200, 200, 200, 500, 500], [10, 20, 30, 400, 5, 5], [1, 1, 1, 1], [0, 0, 1, 1])
    report = report_of(slow)
    assert report["alerted"] is True
    assert report["alerts"] == [
        "v1.1.0 error rate (value 0.333333, threshold 0.2) - above monitor.error_rate_max",
        "v1.1.0 latency p99 ms (value 381.5, threshold 100.0) - above monitor.latency_p99_ms_max",
        "v1.1.0 positive rate gap to evaluation (value 0.25, threshold 0.1) - above monitor.positive_rate_max_gap",
        "v1.1.0 F1 on labelled requests (value 0.666667, threshold 0.75) - below monitor.f1_min",
        "v1.1.0 accuracy on labelled requests (value 0.5, threshold 0.7) - below monitor.accuracy_min",
    ]


def test_a_version_with_too_few_requests_is_reported_but_not_judged():
    few = logged("v2.0.0", [500, 500, 200], [900, 900, 900], [0], [1])
    healthy = logged("v1.0.0", [200] * 4, [5, 5, 5, 5], [1, 1, 1, 0], [1, 1, 1, 0])
    report = report_of(few, healthy)
    assert report["alerts"] == [] and report["alerted"] is False
    assert report["versions"]["v2.0.0"]["judged"] is False
    assert "fewer than monitor.min_requests (4): reported, not judged" in report["versions"]["v2.0.0"]["notes"][0]
    assert report["versions"]["v1.0.0"]["judged"] is True and report["versions"]["v1.0.0"]["error_rate"] == 0.0


def test_the_same_log_gives_the_same_report_bytes(tmp_path):
    log = logged("v1.0.0", [200] * 5, [3.3, 1.1, 2.2, 5.5, 4.4], [1, 0, 1, 1, 0], [1, None, 0, 1, 0])
    for name in ("first.json", "second.json"):
        write_json(report_of(log), tmp_path / name)
    assert (tmp_path / "first.json").read_bytes() == (tmp_path / "second.json").read_bytes()
    assert list(json.loads((tmp_path / "first.json").read_text())) == sorted(
        ["alerted", "alerts", "window", "refused_before_a_model", "versions"]
    )


def test_logged_rows_are_parsed_and_typed_as_training_saw_them():
    schema = Schema(columns={"age": ColumnSpec(type="integer"), "housing": ColumnSpec(type="categorical")})
    rows = pd.Series(['{"age": 30, "housing": "own"}', '{"age": 41.5, "x": 1}', '{"age": null, "housing": " rent"}'])
    frame = logged_inputs(rows, schema, ["age", "housing"])
    assert frame["age"].dtype == "float64" and isinstance(frame["housing"].dtype, pd.CategoricalDtype)
    assert frame["age"].tolist()[:2] == [30.0, 41.5] and pd.isna(frame["age"].iloc[2])
    assert frame["housing"].tolist()[0] == "own" and pd.isna(frame["housing"].iloc[1])
    assert frame["housing"].iloc[2] == "rent"
    assert logged_inputs(pd.Series([], dtype=object), schema, ["age", "housing"]).empty


def test_the_accuracy_test_is_a_one_sided_pooled_two_proportion_z_test():
    # canary 80/100 right, prod 900/1000: pooled p = 980/1100
    test = accuracy_drop_test(80, 100, 900, 1000)
    pooled = 980 / 1100
    z = (0.8 - 0.9) / (pooled * (1 - pooled) * (1 / 100 + 1 / 1000)) ** 0.5
    assert test.z == pytest.approx(z, abs=1e-6) and test.z == pytest.approx(-3.0584, abs=1e-4)
    assert test.p_value == pytest.approx(NormalDist().cdf(z), abs=1e-6)
    assert test.p_value == pytest.approx(0.00111, abs=1e-5)
    assert accuracy_drop_test(95, 100, 900, 1000).p_value > 0.5  # more accurate: no evidence it is lower
    assert accuracy_drop_test(10, 10, 20, 20).p_value == 0.5  # both always right: no spread, z = 0


def side(requests: int = 10, labelled: int = 10, correct: int = 9, error_rate: float = 0.0, p99: float = 50) -> dict:
    return {
        "requests": requests,
        "labelled_requests": labelled,
        "labelled_predictions": labelled,
        "correct": correct,
        "accuracy": round(correct / labelled, 6) if labelled else None,
        "error_rate": error_rate,
        "latency_p99_ms": p99,
    }


@pytest.mark.parametrize(
    ("canary", "prod", "expected", "reason"),
    [
        (side(requests=3), side(), "wait", "canary has 3 requests, needs monitor.min_requests (4)"),
        (side(), side(labelled=1, correct=1), "wait", "prod has 1 labelled requests, needs monitor.min_labelled (2)"),
        (side(), side(), "promote", "no evidence the canary is less accurate"),
        (side(labelled=100, correct=70), side(labelled=100, correct=90), "rollback", "canary accuracy 0.7 is lower"),
        (side(error_rate=0.3), side(), "rollback", "canary error rate 0.3 is above 0.2"),
        (side(p99=150), side(p99=200), "promote", "no evidence"),  # prod is slower still: not the canary's fault
        (side(p99=250), side(p99=200), "rollback", "canary latency p99 ms 250 is above 200"),
    ],
)
def test_the_decision_table(canary, prod, expected, reason):
    decision = decide(canary, prod, LIMITS, "binary")
    assert decision.decision == expected
    assert any(line.startswith(reason) for line in decision.reasons), decision.reasons


def test_inputs_the_contract_cannot_type_are_a_user_error_not_a_crash():
    schema = Schema(columns={"age": ColumnSpec(type="integer"), "housing": ColumnSpec(type="categorical")})
    with pytest.raises(PipelineError, match="do not parse with schema.yaml's types"):
        logged_inputs(pd.Series(['{"age": 30, "housing": 2}', '{"age": "old"}']), schema, ["age", "housing"])


# --- Multiclass and regression
MULTICLASS = Labels(task="multiclass", positive=None, numeric=False)
REGRESSION = Labels(task="regression", positive=None, numeric=True)


def test_multiclass_figures_are_class_shares_accuracy_and_macro_f1_as_scikit_learn_counts_them():
    predicted = ["a", "b", "b", "c", "a", "b"]
    truth = ["a", "b", "c", "c", None, "a"]
    requests, predictions = logged("v1", [200] * 6, [1] * 6, predicted, truth)
    figures = version_figures(requests, predictions, "v1", MULTICLASS)
    assert figures["predicted_share"] == {"a": round(2 / 6, 6), "b": 0.5, "c": round(1 / 6, 6)}
    labelled_truth, labelled_guess = ["a", "b", "c", "c", "a"], ["a", "b", "b", "c", "b"]
    assert figures["accuracy"] == pytest.approx(accuracy_score(labelled_truth, labelled_guess), abs=1e-6)
    assert figures["f1_macro"] == pytest.approx(f1_score(labelled_truth, labelled_guess, average="macro"), abs=1e-6)
    assert "positive_rate" not in figures and "f1" not in figures


def test_multiclass_prediction_drift_is_the_largest_class_share_gap_and_alerts_naming_the_class():
    figures = {"predicted_share": {"a": 0.5, "b": 0.5}}
    drift = prediction_drift(figures, {"predicted_share": {"a": 0.4, "b": 0.3, "c": 0.3}}, "multiclass")
    assert drift["class_share_gap"] == 0.3 and drift["class_share_gap_class"] == "c"  # never predicted now: 0.3 - 0
    requests, predictions = logged("v1", [200] * 4, [1] * 4, ["a", "a", "a", "b"], [None] * 4)
    versions = {"v1": version_figures(requests, predictions, "v1", MULTICLASS)}
    versions["v1"].update(prediction_drift(versions["v1"], {"predicted_share": {"a": 0.5, "b": 0.5}}, "multiclass"))
    report = monitor_report({"since": None, "until": None}, versions, LIMITS, refused=0)
    assert report["alerts"] == [
        "v1 predicted class share gap to evaluation (class 'a') (value 0.25, threshold 0.1) - above "
        "monitor.class_share_max_gap"
    ]


def test_regression_figures_are_the_mean_prediction_and_the_mae_as_scikit_learn_counts_it():
    predicted = [100.0, 150.0, 200.0, 120.0, 90.0]
    truth = [110, 150.5, None, 100, 95]
    requests, predictions = logged("v1", [200] * 5, [1] * 5, predicted, truth)
    figures = version_figures(requests, predictions, "v1", REGRESSION)
    assert figures["prediction_mean"] == pytest.approx(np.mean(predicted), abs=1e-6)
    assert figures["prediction_std"] == pytest.approx(np.std(predicted), abs=1e-6)
    kept = [0, 1, 3, 4]
    expected_mae = mean_absolute_error([truth[i] for i in kept], [predicted[i] for i in kept])
    assert figures["mae"] == pytest.approx(expected_mae, abs=1e-6) and figures["labelled_predictions"] == 4
    assert "accuracy" not in figures and "correct" not in figures
    drift = prediction_drift(figures, {"prediction_mean": 110.0, "prediction_std": 40.0}, "regression")
    assert drift["prediction_mean_shift"] == pytest.approx(abs(np.mean(predicted) - 110.0) / 40.0, abs=1e-6)
    constant = prediction_drift(figures, {"prediction_mean": 1.0, "prediction_std": 0.0}, "regression")
    assert constant["prediction_mean_shift"] is None  # a constant evaluation gives no unit to measure the shift in


def regression_report(limits: Monitor, evaluation: dict | None) -> dict:
    requests, predictions = logged("v1", [200] * 4, [1] * 4, [10.0, 20.0, 30.0, 40.0], [0.0, 50.0, 30.0, 20.0])
    figures = version_figures(requests, predictions, "v1", REGRESSION)
    figures.update(prediction_drift(figures, evaluation, "regression"))
    return monitor_report({"since": None, "until": None}, {"v1": figures}, limits, refused=0)


def test_regression_alerts_on_a_shifted_mean_prediction_and_an_mae_above_its_maximum_only_when_one_is_set():
    report = regression_report(LIMITS, {"prediction_mean": 15.0, "prediction_std": 10.0})
    assert report["alerts"] == [
        "v1 mean prediction shift from evaluation (its standard deviations) (value 1.0, threshold 0.5) - above "
        "monitor.prediction_mean_max_shift",
        "v1 MAE on labelled requests (value 15.0, threshold 10.0) - above monitor.mae_max",
    ]
    unjudged = regression_report(LIMITS.model_copy(update={"mae_max": None}), None)
    assert unjudged["alerts"] == []
    assert unjudged["versions"]["v1"]["notes"] == [
        "monitor.mae_max is null: MAE reported, not judged",
        "no evaluation recorded for this version: its mean prediction is not compared",
    ]


def regression_side(version: str, errors: np.ndarray) -> dict:
    truth = np.full(len(errors), 100.0)
    requests, predictions = logged(
        version, [200] * len(errors), [1] * len(errors), (truth + errors).tolist(), truth.tolist()
    )
    return version_figures(requests, predictions, version, REGRESSION)


def test_canary_decide_on_a_regressor_runs_welch_s_one_sided_t_test_on_the_absolute_errors():
    generator = np.random.default_rng(0)
    prod_errors = generator.normal(0, 5, 60)
    worse_errors = generator.normal(0, 9, 40)
    prod, canary = regression_side("v1", prod_errors), regression_side("v2", worse_errors)
    decision = decide(canary, prod, LIMITS, "regression")
    expected = ttest_ind(np.abs(worse_errors), np.abs(prod_errors), equal_var=False, alternative="greater")
    assert decision.test is not None and decision.test.p_value == pytest.approx(expected.pvalue, abs=1e-5)
    assert decision.decision == "rollback" and decision.reasons[0].startswith("canary MAE")
    same = regression_side("v3", generator.normal(0, 5, 40))
    assert decide(same, prod, LIMITS, "regression").decision == "promote"
    better = decide(prod, canary, LIMITS, "regression")  # prod's errors against the worse model's: no rollback
    assert better.decision == "promote" and better.reasons[0].startswith("no evidence the canary's errors are larger")


def test_canary_decide_on_a_regressor_waits_for_two_labelled_predictions_and_handles_errors_that_never_vary():
    limits = LIMITS.model_copy(update={"min_requests": 1, "min_labelled": 1})
    one, many = regression_side("v1", np.array([1.0])), regression_side("v2", np.array([1.0, 2.0, 3.0]))
    assert decide(one, many, limits, "regression").decision == "wait"
    constant, off = regression_side("v3", np.array([2.0, -2.0, 2.0])), regression_side("v4", np.array([1.0] * 3))
    assert decide(constant, off, limits, "regression").decision == "rollback"  # always 2 off against always 1 off
    assert decide(off, off, limits, "regression").decision == "promote"
