import pytest

from {{ cookiecutter.package_name }}.core import (
    LOWER_IS_BETTER,
    Check,
    CheckReport,
    Comparison,
    DataQuality,
    PipelineError,
    Promotion,
)
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


def production(metrics: dict[str, float]) -> Promotion:
    return Promotion(artifact="model", version="v1.0.0", model_md5="0" * 32, source_commit="0" * 40, metrics=metrics)


@pytest.mark.parametrize(("share_of_production", "passes"), [(0.97, False), (0.99, True)])
def test_comparison_with_the_production_model(share_of_production: float, passes: bool) -> None:
    baseline = production({"f1": METRICS["f1"] / share_of_production})
    check = comparison_check(Comparison(metric="f1", min_ratio=0.98), METRICS, baseline)
    assert check.passed is passes
    assert check.name == "comparison: f1 >= 0.98 x production"
    assert check.threshold == pytest.approx(0.98 * baseline.metrics["f1"], abs=1e-6)


@pytest.mark.parametrize(("production_mae", "passes"), [(40.0, True), (39.1, True), (38.9, False)])
def test_comparison_on_a_lower_is_better_metric_keeps_the_error_within_production_over_the_ratio(
    production_mae: float, passes: bool
) -> None:
    """The candidate's MAE of 39.8 passes below production's (40), and above it up to production's / 0.98:
    39.1 / 0.98 = 39.90 lets it pass, 38.9 / 0.98 = 39.69 does not (where `>= 0.98 x production` would pass it).
    """
    metrics = {"mae": 39.8, "r2": 0.5}
    check = comparison_check(Comparison(metric="mae", min_ratio=0.98), metrics, production({"mae": production_mae}))
    assert check.passed is passes
    assert check.name == "comparison: mae <= production / 0.98 (lower is better)"
    assert check.threshold == pytest.approx(production_mae / 0.98, abs=1e-6)
    assert "production v1.0.0 has mae" in check.detail


def test_every_error_and_loss_evaluate_writes_is_lower_is_better():
    assert {"mae", "rmse", "mape", "log_loss", "latency_p99_ms"} <= LOWER_IS_BETTER
    assert not {"r2", "f1", "f1_macro", "roc_auc", "roc_auc_ovr", "accuracy"} & LOWER_IS_BETTER


def test_no_baseline_passes_and_says_so():
    check = comparison_check(Comparison(metric="f1", min_ratio=0.98), METRICS, None)
    assert check.passed and "no baseline" in check.detail


def test_data_quality_reads_the_worst_missing_rate_from_validation():
    checks = [
        Check("train: missing rate", True, 0.3),
        Check("test: missing rate", True, 0.5),
        Check("drift: PSI", True, 0.31),
    ]
    validation = CheckReport(passed=True, checks_total=3, checks_failed=0, checks=checks)
    (check,) = data_quality_checks(DataQuality(missing_rate_max=0.45), validation)
    assert (check.value, check.passed) == (0.5, False)
    nothing = CheckReport(passed=True, checks_total=0, checks_failed=0, checks=[])
    (check,) = data_quality_checks(DataQuality(missing_rate_max=0.45), nothing)
    assert (check.value, check.passed) == (0.0, True)
