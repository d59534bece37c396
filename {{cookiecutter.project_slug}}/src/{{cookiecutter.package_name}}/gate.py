"""Stage 5: the model validation gate. It decides whether the candidate may replace the production model.

Checks, each configured in params.yaml's `gate` section:
- performance: every `<metric>_min` / `<metric>_max` against the metrics evaluate wrote;
- comparison: the candidate's metric is at least `min_ratio` of the production model's (the baseline);
- data_quality: validation passed and no column's missing rate exceeds `missing_rate_max`;
- fairness: the largest group gap is at most `max_gap`; robustness: the largest drop at most `max_drop`.
Any failed check fails `dvc repro`, one line per check.
"""

from typing import Any

from .checks import Check, failure_lines, report
from .errors import PipelineError
from .files import read_json, write_json
from .params import load_params, param, path_param

BOUNDS = {"_min": (">=", lambda value, limit: value >= limit), "_max": ("<=", lambda value, limit: value <= limit)}


def threshold_checks(thresholds: dict[str, Any], metrics: dict[str, Any], section: str) -> list[Check]:
    checks = []
    for key, limit in sorted(thresholds.items()):
        suffix = key[-4:]
        if suffix not in BOUNDS:
            raise PipelineError(f"gate.{section}.{key}: threshold keys end in _min or _max")
        metric = key[:-4]
        if metric not in metrics:
            raise PipelineError(f"gate.{section}.{key}: no metric '{metric}'; known metrics: {sorted(metrics)}")
        symbol, holds = BOUNDS[suffix]
        value = metrics[metric]
        checks.append(Check(f"{section}: {metric} {symbol} {limit}", bool(holds(value, limit)), value, limit))
    return checks


def comparison_check(settings: dict[str, Any], metrics: dict[str, Any], baseline: dict[str, Any]) -> Check:
    """The candidate against the production model; with no production model yet, it passes and says so."""
    metric, ratio = settings["metric"], settings["min_ratio"]
    name = f"comparison: {metric} >= {ratio} x production"
    production = (baseline.get("metrics") or {}).get(metric)
    if production is None:
        return Check(name, True, metrics[metric], None, detail="no baseline: no model has been promoted yet")
    floor = round(ratio * production, 6)
    return Check(
        name,
        metrics[metric] >= floor,
        metrics[metric],
        floor,
        detail=f"production {baseline.get('version', '')} has {metric} {production}",
    )


def data_quality_checks(settings: dict[str, Any], validation: dict[str, Any]) -> list[Check]:
    """Validation's verdict, the worst missing rate and the worst drift, from validate's report."""
    checks = validation.get("checks", [])
    rates = [check["value"] for check in checks if check["name"].endswith(": missing rate")]
    drifts = [check["value"] for check in checks if check["name"] == "drift: PSI"]
    worst_rate, worst_drift = max(rates, default=0.0), max(drifts, default=0.0)
    no_reference = "" if drifts else "no reference: nothing promoted yet"
    return [
        Check("data_quality: validation passed", bool(validation.get("passed")), validation.get("checks_failed"), 0),
        at_most("data_quality: missing rate", worst_rate, settings["missing_rate_max"]),
        at_most("data_quality: drift PSI", worst_drift, settings["drift_psi_max"], detail=no_reference),
    ]


def at_most(name: str, value: float, limit: float, detail: str = "") -> Check:
    return Check(f"{name} <= {limit}", value <= limit, value, limit, detail=detail)


def gate_checks(params: dict[str, Any]) -> list[Check]:
    metrics = {**read_json(path_param(params, "evaluation")), **read_json(path_param(params, "latency"))}
    fairness = read_json(path_param(params, "fairness"))
    robustness = read_json(path_param(params, "robustness"))
    return [
        *threshold_checks(param(params, "gate.performance"), metrics, "performance"),
        comparison_check(param(params, "gate.comparison"), metrics, read_json(path_param(params, "baseline"))),
        *data_quality_checks(param(params, "gate.data_quality"), read_json(path_param(params, "validation"))),
        at_most("fairness: largest group gap", fairness["max_gap"], param(params, "gate.fairness.max_gap")),
        at_most("robustness: largest drop", robustness["max_drop"], param(params, "gate.robustness.max_drop")),
    ]


def main() -> int:
    params = load_params()
    checks = gate_checks(params)
    write_json(report(checks), path_param(params, "gate"))
    failures = failure_lines(checks)
    if failures:
        print(f"gate: FAILED, {len(failures)} of {len(checks)} checks:")
        for line in failures:
            print(f"  {line}")
        return 1
    print(f"gate: PASSED, all {len(checks)} checks")
    return 0
