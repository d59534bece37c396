import pytest

from {{ cookiecutter.package_name }}.core import Comparison, DataQuality, PipelineError
from {{ cookiecutter.package_name }}.gate import comparison_check, data_quality_checks, threshold_checks

METRICS = {"accuracy": 0.8, "f1": 0.85, "latency_p99_ms": 12.0}


def test_min_and_max_thresholds():
    checks = threshold_checks({"accuracy_min": 0.9, "latency_p99_ms_max": 50}, METRICS, "performance")
    assert [(check.name, check.passed) for check in checks] == [
        ("performance: accuracy >= 0.9", False),
        ("performance: latency_p99_ms <= 50", True),
    ]


def test_an_unknown_metric_is_named_with_the_known_ones():
    with pytest.raises(PipelineError, match=r"'gate.performance.auc_min' names metric 'auc'.*\['accuracy', 'f1'"):
        threshold_checks({"auc_min": 0.5}, METRICS, "performance")


def test_an_undefined_metric_fails_its_check_with_the_reason():
    metrics = {**METRICS, "roc_auc": None, "undefined": {"roc_auc": "the test labels hold one class"}}
    (check,) = threshold_checks({"roc_auc_min": 0.7}, metrics, "performance")
    assert not check.passed and check.detail == "undefined: the test labels hold one class"


@pytest.mark.parametrize(("share_of_production", "passes"), [(0.97, False), (0.99, True)])
def test_comparison_with_the_production_model(share_of_production, passes):
    baseline = {"version": "v1.0.0", "metrics": {"f1": METRICS["f1"] / share_of_production}}
    check = comparison_check(Comparison(metric="f1", min_ratio=0.98), METRICS, baseline)
    assert check.passed is passes


def test_no_baseline_passes_and_says_so():
    check = comparison_check(Comparison(metric="f1", min_ratio=0.98), METRICS, {"metrics": None})
    assert check.passed and "no baseline" in check.detail


def test_data_quality_reads_the_worst_missing_rate_from_validation():
    validation = {
        "passed": True,
        "checks_failed": 0,
        "checks": [
            {"name": "train: missing rate", "value": 0.3},
            {"name": "test: missing rate", "value": 0.5},
            {"name": "drift: PSI", "value": 0.31},
        ],
    }
    (check,) = data_quality_checks(DataQuality(missing_rate_max=0.45), validation)
    assert (check.value, check.passed) == (0.5, False)
    (check,) = data_quality_checks(DataQuality(missing_rate_max=0.45), {"passed": True, "checks": []})
    assert (check.value, check.passed) == (0.0, True)
