"""Stage 5: the model validation gate. It decides whether the candidate may replace the production model.

Checks, each configured in params.yaml's `gate` section:
- performance: every `<metric>_min` / `<metric>_max` against the metrics evaluate wrote;
- comparison: the candidate keeps at least `min_ratio` of the production model's (the baseline's) quality:
  its metric is at least ratio x production's, or, for a metric where lower is better (an error, a loss,
  a latency: `core.LOWER_IS_BETTER`), at most production's / ratio;
- data_quality: no column's missing rate exceeds `missing_rate_max`;
- fairness: the largest group gap is at most `max_gap` (a rate for a classifier; for a regressor, the
  largest gap between groups' mean absolute errors, in the target's units); robustness: the largest drop
  at most `max_drop`.
Any failed check fails `dvc repro`, one line per check.
"""

from typing import Any

from .core import (
    GATE_FAILED,
    LOWER_IS_BETTER,
    PASSED,
    Check,
    CheckReport,
    Comparison,
    DataQuality,
    Params,
    PipelineError,
    Promotion,
    failure_lines,
    load_params,
    read_baseline,
    read_json,
    read_report,
    report,
    rounded,
    write_json,
)

BOUNDS = {"_min": (">=", lambda value, limit: value >= limit), "_max": ("<=", lambda value, limit: value <= limit)}


def threshold_checks(thresholds: dict[str, float], metrics: dict[str, Any], section: str) -> list[Check]:
    checks = []
    for key, limit in sorted(thresholds.items()):
        metric, suffix = key[:-4], key[-4:]
        value = known_metric(metrics, metric, f"gate.{section}.{key}")
        symbol, holds = BOUNDS[suffix]
        name = f"{section}: {metric} {symbol} {limit}"
        if value is None:
            reason = (metrics.get("undefined") or {}).get(metric, "no value")
            checks.append(Check(name, False, None, limit, detail=f"undefined: {reason}"))
        else:
            checks.append(Check(name, bool(holds(value, limit)), value, limit))
    return checks


def known_metric(metrics: dict[str, Any], metric: str, key: str) -> Any:
    """The metric's value (None when undefined for this data); a PipelineError when no stage writes it."""
    if metric not in metrics:
        known = sorted(name for name, value in metrics.items() if value is None or isinstance(value, int | float))
        raise PipelineError(f"params.yaml: '{key}' names metric '{metric}', which evaluate does not write: {known}")
    return metrics[metric]


def comparison_check(settings: Comparison, metrics: dict[str, Any], baseline: Promotion | None) -> Check:
    """The candidate against the production model; with no production model yet, it passes and says so."""
    metric, ratio = settings.metric, settings.min_ratio
    value = known_metric(metrics, metric, "gate.comparison.metric")
    lower_is_better = metric in LOWER_IS_BETTER
    if lower_is_better:
        name = f"comparison: {metric} <= production / {ratio} (lower is better)"
    else:
        name = f"comparison: {metric} >= {ratio} x production"
    production = None if baseline is None else baseline.metrics.get(metric)
    if baseline is None or production is None:
        return Check(name, True, value, None, detail="no baseline: no model has been promoted yet")
    limit = rounded(production / ratio if lower_is_better else ratio * production)
    holds = value is not None and (value <= limit if lower_is_better else value >= limit)
    return Check(name, holds, value, limit, detail=f"production {baseline.version} has {metric} {production}")


def data_quality_checks(settings: DataQuality, validation: CheckReport) -> list[Check]:
    """The worst column's missing rate in validate's report, against the gate's own ceiling.

    Validation's verdict and drift need no check here: validate fails on them, and train refuses to run
    on data that failed, so no candidate reaches the gate without them.
    """
    rates = [check.value for check in validation.checks if check.name.endswith(": missing rate")]
    return [at_most("data_quality: missing rate", max(rates, default=0.0), settings.missing_rate_max)]


def at_most(name: str, value: float, limit: float, detail: str = "") -> Check:
    return Check(f"{name} <= {limit}", value <= limit, value, limit, detail=detail)


def gate_checks(params: Params) -> list[Check]:
    paths, gate = params.paths, params.gate
    metrics = {**read_json(paths.evaluation), **read_json(paths.latency)}
    return [
        *threshold_checks(gate.performance, metrics, "performance"),
        comparison_check(gate.comparison, metrics, read_baseline(paths.baseline)),
        *data_quality_checks(gate.data_quality, read_report(paths.validation)),
        at_most("fairness: largest group gap", read_json(paths.fairness)["max_gap"], gate.fairness.max_gap),
        at_most("robustness: largest drop", read_json(paths.robustness)["max_drop"], gate.robustness.max_drop),
    ]


def main() -> int:
    params = load_params()
    checks = gate_checks(params)
    write_json(report(checks), params.paths.gate)
    failures = failure_lines(checks)
    if failures:
        print(f"gate: FAILED, {len(failures)} of {len(checks)} checks:")
        for line in failures:
            print(f"  {line}")
        return GATE_FAILED
    print(f"gate: PASSED, all {len(checks)} checks")
    return PASSED
