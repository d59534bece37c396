"""`monitor` and `canary-decide` as pure functions of the prediction log's two frames."""

import json
from statistics import NormalDist

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core import Monitor, PipelineError, write_json
from {{ cookiecutter.package_name }}.monitor import (
    Labels,
    accuracy_drop_test,
    decide,
    evaluation_positive_rate,
    logged_inputs,
    monitor_report,
    version_figures,
)
from {{ cookiecutter.package_name }}.schema import ColumnSpec, Schema

LIMITS = Monitor(
    min_requests=4,
    error_rate_max=0.2,
    latency_p99_ms_max=100,
    positive_rate_max_gap=0.1,
    drift_psi_max=0.2,
    drifted_share_max=0.5,
    min_labelled=2,
    f1_min=0.75,
    accuracy_min=0.7,
    significance=0.05,
)
LABELS = Labels(positive=1.0, numeric=True)
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
            "probability": [0.9 if value == 1 else 0.1 for value in predicted],
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
    decision = decide(canary, prod, LIMITS)
    assert decision.decision == expected
    assert any(line.startswith(reason) for line in decision.reasons), decision.reasons


def test_inputs_the_contract_cannot_type_are_a_user_error_not_a_crash():
    schema = Schema(columns={"age": ColumnSpec(type="integer"), "housing": ColumnSpec(type="categorical")})
    with pytest.raises(PipelineError, match="do not parse with schema.yaml's types"):
        logged_inputs(pd.Series(['{"age": 30, "housing": 2}', '{"age": "old"}']), schema, ["age", "housing"])
