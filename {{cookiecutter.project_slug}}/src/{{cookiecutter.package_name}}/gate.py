"""Stage 5: the model validation gate. Every `<metric>_min` / `<metric>_max` in params' `gate`
section is checked against the metrics evaluate wrote; any failure fails `dvc repro`."""

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


def main() -> int:
    params = load_params()
    metrics = {**read_json(path_param(params, "evaluation")), **read_json(path_param(params, "latency"))}
    checks = threshold_checks(param(params, "gate.performance"), metrics, "performance")
    write_json(report(checks), path_param(params, "gate"))
    failures = failure_lines(checks)
    if failures:
        print(f"gate: FAILED, {len(failures)} of {len(checks)} checks:")
        for line in failures:
            print(f"  {line}")
        return 1
    print(f"gate: PASSED, all {len(checks)} checks")
    return 0
