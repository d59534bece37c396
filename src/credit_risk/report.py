"""The pull-request report: the gate's verdict and checks first, everything else folded, plots inline.

Two halves. The edges (`collect`) run `dvc metrics diff`, `dvc params diff` and read the base's files
with `git show` or `dvc.api`. The middle is pure: `build` turns those inputs into a report *model*
(a JSON-ready dict) and `render_markdown` / `render_json` lay it out. The tests check the renderer
against golden files, so `<command> report --base main` prints exactly what CI posts.

The plots follow `data.task`: ROC, precision-recall and the 2x2 confusion matrix (binary), the confusion
matrix of every class (multiclass), mean prediction by actual value and the residuals' distribution
(regression), and for each the learning curve of the task's main metric. A headline metric of the task that
no gate check reads is marked better or worse by its own direction (`core.LOWER_IS_BETTER`).

`gitlab-note` creates, or updates in place, the one merge-request note that holds the report on
GitLab, through python-gitlab: not a dependency of the project, GitLab's merge-request job installs it
from requirements-gitlab.lock. It reads GitLab CI's predefined variables (CI_SERVER_URL,
CI_PROJECT_ID, CI_MERGE_REQUEST_IID) and a token from the masked CI/CD variable GITLAB_TOKEN (a project
access token with the `api` scope).
"""

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict, TypeGuard

from .core import (
    HEADLINE_METRICS,
    LOWER_IS_BETTER,
    MAIN_METRIC,
    PipelineError,
    Task,
    load_params,
    read_json,
    rounded,
    run_tool,
)

MARKER = "<!-- dvc-pipeline-report -->"  # lets CI find and update its own comment
GATE_STAGE = "gate"  # a failed gate leaves its stage unlocked; its verdict is current all the same
LIMIT = 60_000  # characters: under GitHub's 65,536 and GitLab's note limit, with room to spare
CUT_NOTE, CUT_ROW = 600, 80  # characters kept for the note on what was cut, and for a section's "… cut" row
CURVE_POINTS = 11  # points per Mermaid curve: enough for the shape, small in the comment
TOP_DRIFT = 10  # drifted columns listed, worst first
BASE_COLOUR, PR_COLOUR, IDEAL_COLOUR = "#9e9e9e", "#1f77b4", "#2ca02c"
OPERATORS = {">=": "higher", "<=": "lower"}  # a gate check's operator says which way is better
# The threshold param of the gate's checks that are not `<metric>_min` / `<metric>_max`.
SECTION_PARAMS = {
    "comparison": "gate.comparison.min_ratio",
    "fairness": "gate.fairness.max_gap",
    "robustness": "gate.robustness.max_drop",
}
# The plot files evaluate writes for each task (under paths.plots), by the name the report gives them.
PLOT_FILES: dict[Task, dict[str, str]] = {
    "binary": {"roc": "roc.json", "precision_recall": "precision_recall.json", "confusion": "confusion_matrix.json"},
    "multiclass": {"confusion": "confusion_matrix.json"},
    "regression": {"predicted_actual": "predicted_actual.json", "residuals": "residuals.json"},
}
# rate curves: (plot, title, (x field, x label), (y field, y label)), both axes 0 to 1
CURVES = (
    ("roc", "ROC curve", ("fpr", "False positive rate"), ("tpr", "True positive rate")),
    ("precision_recall", "Precision-recall curve", ("recall", "Recall"), ("precision", "Precision")),
)
METRIC_LABELS = {"roc_auc": "ROC AUC", "f1_macro": "macro F1", "r2": "R²"}  # the learning curve's y axis
TRAIN_ROWS = "plots/metrics/train_rows.tsv"  # DVCLive's step files, under paths.learning_curve


def learning_curve_file(task: Task) -> str:
    """DVCLive's file of the validation score the learning curve logs: the task's main metric."""
    return f"plots/metrics/validation/{MAIN_METRIC[task]}.tsv"


# ---------------------------------------------------------------- pure: inputs -> report model
Diff = dict[str, dict[str, dict[str, Any]]]  # `dvc metrics diff --json` / `dvc params diff --json`: file, name, old/new


class ReportInputs(TypedDict):
    """Everything `build` reports on, as `collect` reads it from this checkout and the base revision."""

    task: Task
    base: str
    base_note: str | None  # why the base's values are missing, if they are
    warning: str | None  # why this checkout's values may not be reproduced, if they may not
    gate: dict[str, Any]
    gate_file: str
    base_gate: dict[str, Any] | None
    metrics_diff: Diff
    params_diff: Diff
    validation: dict[str, Any]
    plots: dict[str, Any]
    base_plots: dict[str, Any]
    command: str


def split_check(name: str) -> tuple[str, str | None]:
    """'performance: f1 >= 0.8' -> ('performance: f1', '>='); a check with no operator -> (name, None)."""
    for operator in OPERATORS:
        if f" {operator} " in name:
            return name.split(f" {operator} ")[0], operator
    return name, None


def governing_param(key: str, operator: str | None) -> str:
    """The params.yaml key whose value is the check's threshold."""
    section, _, subject = key.partition(": ")
    if key in SECTION_PARAMS or section in SECTION_PARAMS:
        return SECTION_PARAMS.get(key) or SECTION_PARAMS[section]
    suffix = "_min" if operator == ">=" else "_max"
    return f"gate.{section}.{subject.replace(' ', '_').lower()}{suffix}"


def spread_of(metrics: dict[str, Any], metric: str) -> float | None:
    """A timing metric's measured run-to-run spread, written beside it as `<metric>_spread`."""
    return next((value for key, value in metrics.items() if key.rsplit("/", 1)[-1] == f"{metric}_spread"), None)


def compare(
    base: float | None, new: float | None, direction: str | None, spread: float | None = None
) -> dict[str, Any]:
    """The change from base to new, and whether it is better, worse, unchanged or within noise."""
    if not (_is_number(base) and _is_number(new)):
        return {"change": None, "verdict": "new" if base is None and new is not None else None}
    change = rounded(new - base)
    if change == 0:
        verdict = "unchanged"
    elif spread is not None and abs(change) <= spread:
        verdict = "within noise"
    elif direction is None:
        verdict = None
    else:
        verdict = "better" if (change > 0) == (direction == "higher") else "worse"
    return {"change": change, "verdict": verdict}


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def gated_rows(gate: dict, base_gate: dict | None, metrics: dict, base_metrics: dict) -> list[dict[str, Any]]:
    """One row per gate check: threshold, base and PR values, the change and its direction; failures first."""
    base_values = {split_check(check["name"])[0]: check["value"] for check in (base_gate or {}).get("checks", [])}
    rows = []
    for check in gate.get("checks", []):
        key, operator = split_check(check["name"])
        metric = key.partition(": ")[2]
        spreads = [spread_of(values, metric) for values in (metrics, base_metrics)]
        spread = max((value for value in spreads if value is not None), default=None)
        direction = None if operator is None else OPERATORS.get(operator)
        rows.append(
            {
                "check": key,
                "operator": operator,
                "threshold": check.get("threshold"),
                "base": base_values.get(key),
                "pr": check.get("value"),
                **compare(base_values.get(key), check.get("value"), direction, spread),
                "direction": direction,
                "spread": spread,
                "passed": bool(check["passed"]),
                "param": governing_param(key, operator),
                "detail": check.get("detail") or "",
            }
        )
    return sorted(rows, key=lambda row: row["passed"])


def headline_directions(task: Task) -> dict[str, str]:
    """Which way is better for each of the task's headline metrics."""
    return {metric: "lower" if metric in LOWER_IS_BETTER else "higher" for metric in HEADLINE_METRICS[task]}


def other_metric_rows(
    diff: Diff, gated: list[dict[str, Any]], skip: str = "", directions: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every metric the gated table does not show, with its change; direction from the gate when it has one,
    else from `directions` (the task's headline metrics).

    `skip` is the gate's own file, whose verdict and counts the headline already shows.
    """
    gate_directions = {row["check"].partition(": ")[2]: row["direction"] for row in gated}
    flat = {metric: values.get("new") for values in diff.values() for metric, values in values.items()}
    rows = []
    for path, entries in sorted(diff.items()):
        for metric, values in sorted(entries.items()):
            if path == skip or gate_directions.get(metric) is not None or metric.endswith("_spread"):
                continue
            spread = spread_of(flat, metric)
            direction = (directions or {}).get(metric)
            rows.append(
                {
                    "file": path,
                    "metric": metric,
                    "base": values.get("old"),
                    "pr": values.get("new"),
                    **compare(values.get("old"), values.get("new"), direction, spread),
                    "spread": spread,
                }
            )
    return rows


def param_rows(diff: Diff) -> list[dict[str, Any]]:
    return [
        {"file": path, "param": name, "base": values.get("old"), "pr": values.get("new")}
        for path, entries in diff.items()
        for name, values in sorted(entries.items())
    ]


def validation_summary(validation: dict) -> dict[str, Any]:
    """Validate's verdict and its checks, failed first, each with its column and rule."""
    checks = sorted(validation.get("checks", []), key=lambda check: check["passed"])
    return {
        "passed": bool(validation.get("passed")),
        "checks_total": validation.get("checks_total", len(checks)),
        "checks_failed": validation.get("checks_failed", sum(not check["passed"] for check in checks)),
        "checks": [
            {
                "rule": check["name"],
                "column": check.get("column"),
                "value": check.get("value"),
                "threshold": check.get("threshold"),
                "passed": bool(check["passed"]),
                "detail": check.get("detail") or "",
            }
            for check in checks
        ],
    }


def drift_rows(validation: dict, limit: int = TOP_DRIFT) -> list[dict[str, Any]]:
    """The most drifted columns by PSI against the production reference, worst first."""
    rows = [
        {"column": check.get("column"), "psi": check["value"], "threshold": check.get("threshold")}
        for check in validation.get("checks", [])
        if check["name"] == "drift: PSI" and check.get("value") is not None
    ]
    return sorted(rows, key=lambda row: -row["psi"])[:limit]


def interpolate(xs: list[float], ys: list[float], x: float) -> float:
    """Linear interpolation of the curve (xs ascending) at x, clamped to its ends."""
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


def sample_curve(points: list[dict] | None, x: str, y: str, grid: list[float]) -> list[float] | None:
    """A curve's y at each grid x, so that base and PR series line up point for point."""
    if not points:
        return None
    pairs = sorted((float(point[x]), float(point[y])) for point in points)
    xs, ys = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    return [round(interpolate(xs, ys, at), 4) for at in grid]


def score_range(values: Sequence[float]) -> list[float]:
    """A score's axis zoomed to its values in steps of 0.05, never above 1 (a learning curve, a histogram)."""
    return [math.floor(min(values) * 20) / 20, min(1.0, math.ceil(max(values) * 20) / 20)]


def share_range(values: Sequence[float]) -> list[float]:
    """A share of rows' axis: from 0, to its largest value in steps of 0.05."""
    return [0.0, score_range(values)[1]]


def data_range(values: Sequence[float]) -> list[float]:
    """An axis in the data's own units (a regression target), widened to round steps of its span's order."""
    low, high = min(values), max(values)
    step = 10.0 ** math.floor(math.log10(high - low)) / 10 if high > low else 1.0
    return [round(math.floor(low / step) * step, 10), round(math.ceil(high / step) * step, 10)]


def chart(
    title: str,
    x: tuple[str, Sequence[float], bool],
    y: tuple[str, Callable[[Sequence[float]], list[float]] | None],
    base: list[float] | None,
    pr: list[float] | None,
    ideal: list[float] | None = None,
) -> dict[str, Any]:
    """A chart's data: x axis (label, values, whether they are category labels), y axis (label, and how its range
    is fitted to the values: None for rates, 0 to 1), both series and, if any, the ideal line to compare them with.
    """
    x_label, x_values, labels = x
    y_label, fit = y
    values = [value for line in (base, pr, ideal) if line for value in line]
    return {
        "title": title,
        "x_label": x_label,
        "x": x_values,
        "x_labels": labels,
        "y_label": y_label,
        "y_range": fit(values) if fit and values else [0.0, 1.0],
        "base": base,
        "pr": pr,
        "ideal": ideal,
    }


def rate_charts(task: Task, plots: dict[str, Any], base_plots: dict[str, Any]) -> list[dict[str, Any]]:
    """ROC and precision-recall (binary), base against PR, sampled on a shared grid from 0 to 1."""
    grid = [round(index / (CURVE_POINTS - 1), 4) for index in range(CURVE_POINTS)]
    charts = []
    for name, title, (x, x_label), (y, y_label) in CURVES:
        if name in PLOT_FILES[task]:
            base, pr = (sample_curve(source.get(name), x, y, grid) for source in (base_plots, plots))
            charts.append(chart(title, (x_label, grid, False), (y_label, None), base, pr))
    return charts


def learning_chart(task: Task, plots: dict[str, Any], base_plots: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's main metric at each training-set size this change used; the base's line at those sizes."""
    sizes = [float(point["rows"]) for point in plots.get("learning_curve") or []]
    if not sizes:
        return []
    base, pr = (sample_curve(source.get("learning_curve"), "rows", "score", sizes) for source in (base_plots, plots))
    metric = MAIN_METRIC[task]
    y_label = f"Validation {METRIC_LABELS.get(metric, metric)}"
    axis = ("Training rows", [int(size) for size in sizes], True)  # category labels: the sizes
    return [chart("Learning curve", axis, (y_label, score_range), base, pr)]


def bins(values: Sequence[float], low: float, high: float) -> tuple[list[float], list[int]]:
    """CURVE_POINTS equal bins from low to high: their centres, and the bin of each value."""
    width = (high - low) / CURVE_POINTS or 1.0
    centres = [round(low + (index + 0.5) * width, 4) for index in range(CURVE_POINTS)]
    return centres, [min(max(int((value - low) / width), 0), CURVE_POINTS - 1) for value in values]


def binned_means(points: list[dict] | None, x: str, y: str, low: float, high: float) -> list[float] | None:
    """The mean of y in each bin of x; an empty bin takes the line between its neighbours."""
    if not points:
        return None
    centres, index = bins([float(point[x]) for point in points], low, high)
    sums, counts = [0.0] * CURVE_POINTS, [0] * CURVE_POINTS
    for at, point in zip(index, points, strict=True):
        sums[at] += float(point[y])
        counts[at] += 1
    filled = [(centre, total / count) for centre, total, count in zip(centres, sums, counts, strict=True) if count]
    xs, ys = [centre for centre, _ in filled], [mean for _, mean in filled]
    return [round(interpolate(xs, ys, centre), 4) for centre in centres]


def histogram(points: list[dict] | None, x: str, low: float, high: float) -> list[float] | None:
    """The share of rows in each bin of x."""
    if not points:
        return None
    _, index = bins([float(point[x]) for point in points], low, high)
    return [round(index.count(at) / len(points), 4) for at in range(CURVE_POINTS)]


def regression_charts(plots: dict[str, Any], base_plots: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean prediction by actual value against the ideal line, and the residuals' distribution, base against PR.

    Both sides share one set of bins, spanning the values of both, so that their lines line up point for point.
    """
    charts = []
    sources = (base_plots.get("predicted_actual"), plots.get("predicted_actual"))
    actual = [float(point["actual"]) for points in sources for point in points or []]
    if actual:
        low, high = min(actual), max(actual)
        base, pr = (binned_means(points, "actual", "predicted", low, high) for points in sources)
        centres, _ = bins([], low, high)
        axis = ("Actual (bin centre)", centres, False)
        charts.append(chart("Predicted vs actual", axis, ("Mean predicted", data_range), base, pr, ideal=centres))
    sources = (base_plots.get("residuals"), plots.get("residuals"))
    widest = max((abs(float(point["residual"])) for points in sources for point in points or []), default=None)
    if widest is not None:
        reach = widest or 1.0  # residuals all 0: any symmetric span will do
        base, pr = (histogram(points, "residual", -reach, reach) for points in sources)
        centres, _ = bins([], -reach, reach)
        axis = ("Residual: actual − predicted (bin centre)", centres, False)
        charts.append(chart("Residuals", axis, ("Share of rows", share_range), base, pr))
    return charts


def curve_charts(task: Task, plots: dict[str, Any], base_plots: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's charts, base against PR: ROC and precision-recall (binary) or predicted vs actual and residuals
    (regression), then the learning curve."""
    charts = rate_charts(task, plots, base_plots)
    if task == "regression":
        charts += regression_charts(plots, base_plots)
    return charts + learning_chart(task, plots, base_plots)


def label_order(label: str) -> tuple[int, float, str]:
    """Numeric labels by value ("2" before "10"), then text labels in text order."""
    try:
        return 0, float(label), ""
    except ValueError:
        return 1, 0.0, label


def confusion_labels(task: Task, *sources: list[dict] | None) -> list[str]:
    """Every class either side's confusion file holds (binary: always 0 and 1), in label order."""
    seen = {"0", "1"} if task == "binary" else set()
    seen |= {str(row[side]) for rows in sources for row in rows or [] for side in ("actual", "predicted")}
    return sorted(seen, key=label_order)


def confusion_matrix(rows: list[dict] | None, labels: list[str]) -> list[list[int]] | None:
    """Counts of (actual, predicted) pairs: one row per actual class, one column per predicted class."""
    if rows is None:
        return None
    position = {label: index for index, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for row in rows:
        counts[position[str(row["actual"])]][position[str(row["predicted"])]] += 1
    return counts


def confusion(task: Task, plots: dict[str, Any], base_plots: dict[str, Any]) -> dict[str, Any]:
    labels = confusion_labels(task, plots.get("confusion"), base_plots.get("confusion"))
    return {
        "labels": labels,
        "base": confusion_matrix(base_plots.get("confusion"), labels),
        "pr": confusion_matrix(plots.get("confusion"), labels),
    }


def build(inputs: ReportInputs) -> dict[str, Any]:
    """The report model from its inputs (see `collect`): every number the renderers show, and nothing else."""
    metrics_diff = inputs["metrics_diff"]
    entries = [item for values in metrics_diff.values() for item in values.items()]
    metrics = {metric: values.get("new") for metric, values in entries}
    base_metrics = {metric: values.get("old") for metric, values in entries}
    gate = inputs["gate"]
    gated = gated_rows(gate, inputs["base_gate"], metrics, base_metrics)
    changed_params = param_rows(inputs["params_diff"])
    validation = inputs["validation"]
    task, plots, base_plots = inputs["task"], inputs["plots"], inputs["base_plots"]
    return {
        "task": task,
        "base": inputs["base"],
        "base_note": inputs["base_note"],
        "warning": inputs["warning"],
        "verdict": {
            "passed": bool(gate.get("passed")),
            "checks_total": gate.get("checks_total", len(gated)),
            "checks_failed": gate.get("checks_failed", sum(not row["passed"] for row in gated)),
        },
        "gated": gated,
        "changed_params": [row["param"] for row in changed_params],
        "charts": curve_charts(task, plots, base_plots),
        "confusion": confusion(task, plots, base_plots),
        "metrics": other_metric_rows(metrics_diff, gated, inputs["gate_file"], headline_directions(task)),
        "params": changed_params,
        "validation": validation_summary(validation),
        "drift": drift_rows(validation),
        "command": inputs["command"],
    }


# ---------------------------------------------------------------- pure: report model -> text


def number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def change_cell(row: dict[str, Any]) -> str:
    """'▲ +0.012 better', '▼ −0.3 within noise (spread 0.4)', 'new' or 'unchanged'."""
    change, verdict = row.get("change"), row.get("verdict")
    if change is None:
        return verdict or "–"
    if change == 0:
        return "unchanged"
    arrow = "▲" if change > 0 else "▼"
    text = f"{arrow} {change:+.4g} {verdict}" if verdict else f"{arrow} {change:+.4g}"
    return text if row.get("spread") is None else f"{text} (run-to-run spread {number(row['spread'])})"


def headline(model: dict[str, Any]) -> list[str]:
    """The verdict, each failed check with the param that governs it, then the gated checks."""
    verdict = model["verdict"]
    failed = [row for row in model["gated"] if not row["passed"]]
    if verdict["passed"]:
        title = f"## ✅ Gate passed: all {verdict['checks_total']} checks"
    else:
        title = f"## ❌ Gate failed: {verdict['checks_failed']} of {verdict['checks_total']} checks"
    lines = [MARKER, title, ""]
    if model.get("warning"):
        lines[1:1] = [model["warning"], ""]
    changed = ", ".join(f"`{name}`" for name in model["changed_params"][:5])
    for row in failed:
        threshold = "" if row["threshold"] is None else f" {row['operator'] or 'vs'} {number(row['threshold'])}"
        fix = f"threshold `{row['param']}` in params.yaml"
        if row["param"] == "validate":  # validation's own rules: its folded section names the failed ones
            fix = "the `validate` section of params.yaml and schema.yaml (failed rules under Data validation)"
        cause = f"; this change sets {changed}" if changed else ""
        lines.append(f"- ❌ **{row['check']}** is {number(row['pr'])}, needs{threshold}. Governed by {fix}{cause}.")
    if failed:
        lines.append("")
    if model.get("base_note"):
        lines += [f"> {model['base_note']}", ""]
    lines += [
        f"| Gated check | Threshold | `{model['base']}` | This change | Change | Passed |",
        "|---|---|---|---|---|---|",
    ]
    for row in model["gated"]:
        threshold = "–" if row["threshold"] is None else f"{row['operator'] or ''} {number(row['threshold'])}".strip()
        cells = [row["check"], threshold, number(row["base"]), number(row["pr"]), change_cell(row)]
        lines.append("| " + " | ".join([*cells, "✅" if row["passed"] else "❌"]) + " |")
    return lines


def mermaid(item: dict[str, Any]) -> list[str]:
    """One `xychart-beta` block: the ideal line in green if the chart has one, the base's in grey, this change's
    in blue."""
    lines = ((IDEAL_COLOUR, item.get("ideal")), (BASE_COLOUR, item["base"]), (PR_COLOUR, item["pr"]))
    series = [values for _, values in lines if values]
    palette = ", ".join(colour for colour, values in lines if values)
    init = json.dumps({"themeVariables": {"xyChart": {"plotColorPalette": palette}}})
    if item["x_labels"]:
        labels = ", ".join(json.dumps(str(value)) for value in item["x"])
        x_axis = f'x-axis "{item["x_label"]}" [{labels}]'
    else:
        x_axis = f'x-axis "{item["x_label"]}" {item["x"][0]} --> {item["x"][-1]}'
    return [
        "```mermaid",
        "%%{init: " + init + "}%%",
        "xychart-beta",
        f'    title "{item["title"]}"',
        f"    {x_axis}",
        f'    y-axis "{item["y_label"]}" {item["y_range"][0]} --> {item["y_range"][1]}',
        *(f"    line [{', '.join(str(value) for value in line)}]" for line in series),
        "```",
    ]


def confusion_table(model: dict[str, Any]) -> list[str]:
    """Every class, actual by row and predicted by column; the base's count in brackets."""
    matrix = model["confusion"]
    base, pr, labels = matrix["base"], matrix["pr"], matrix["labels"]
    if pr is None:
        return []

    def cell(actual: int, predicted: int) -> str:
        return f"{pr[actual][predicted]} ({base[actual][predicted]})" if base else str(pr[actual][predicted])

    names = [label.replace("|", "\\|") for label in labels]  # a pipe would end the cell
    legend = f" (in brackets: `{model['base']}`)" if base else ""
    return [
        f"Confusion matrix{legend}:",
        "",
        "| | " + " | ".join(f"predicted {name}" for name in names) + " |",
        "|---" * (len(names) + 1) + "|",
        *(
            f"| **actual {name}** | " + " | ".join(cell(row, column) for column in range(len(names))) + " |"
            for row, name in enumerate(names)
        ),
    ]


def plots_section(model: dict[str, Any]) -> list[str]:
    charts = [item for item in model["charts"] if item["pr"]]
    if not charts and model["confusion"]["pr"] is None:
        return []
    legend = f"grey: `{model['base']}`, blue: this change" if any(item["base"] for item in charts) else "this change"
    if any(item.get("ideal") for item in charts):
        legend += "; green: predicted = actual"
    lines = ["<details open><summary>Plots</summary>", "", f"Lines: {legend}.", ""]
    for item in charts:
        lines += [*mermaid(item), ""]
    table = confusion_table(model)  # none for regression
    return [*lines, *table, "", "</details>"] if table else [*lines, "</details>"]


def folded(summary: str, header: list[str], rows: list[str]) -> dict[str, Any]:
    """A `<details>` section whose rows the length limit may cut."""
    return {"summary": summary, "header": header, "rows": rows}


def detail_sections(model: dict[str, Any]) -> list[dict[str, Any]]:
    base = f"`{model['base']}`"
    params = [
        f"| {row['param']} | {number(row['base'])} | {number(row['pr'])} | {row['file']} |" for row in model["params"]
    ]
    validation = model["validation"]
    checks = [
        f"| {'✅' if check['passed'] else '❌'} | {check['column'] or 'dataset'} | {check['rule']} | "
        f"{number(check['value'])} | {number(check['threshold'])} | {check['detail']} |"
        for check in validation["checks"]
    ]
    drift = [f"| {row['column']} | {number(row['psi'])} | {number(row['threshold'])} |" for row in model["drift"]]
    metrics = [
        f"| {row['metric']} | {number(row['base'])} | {number(row['pr'])} | {change_cell(row)} | {row['file']} |"
        for row in model["metrics"]
    ]
    verdict = "passed" if validation["passed"] else "FAILED"
    return [
        folded(
            f"Params: {len(params)} changed against {base}",
            [f"| Param | {base} | This change | File |", "|---|---|---|---|"],
            params or ["No param changed."],
        ),
        folded(
            f"Data validation: {verdict}, {validation['checks_failed']} of {validation['checks_total']} checks failed",
            ["| | Column | Rule | Value | Threshold | Detail |", "|---|---|---|---|---|---|"],
            checks,
        ),
        folded(
            f"Drift: the {len(drift)} most drifted columns by PSI" if drift else "Drift: no reference yet",
            ["| Column | PSI | Threshold |", "|---|---|---|"],
            drift or ["No reference to compare with: nothing has been promoted yet."],
        ),
        folded(
            f"Other metrics: {len(metrics)}",
            [f"| Metric | {base} | This change | Change | File |", "|---|---|---|---|---|"],
            metrics or ["No other metric."],
        ),
    ]


def render_section(section: dict[str, Any], rows: list[str]) -> str:
    table = section["header"] if rows and rows[0].startswith("|") else []
    return "\n".join([f"<details><summary>{section['summary']}</summary>", "", *table, *rows, "", "</details>"])


def fitted(section: dict[str, Any], room: int) -> tuple[str | None, str | None]:
    """The section with as many rows as fit in `room` characters, and what was cut (None when nothing)."""
    rows: list[str] = section["rows"]
    kept: list[str] = []
    for row in rows:
        if len(render_section(section, [*kept, row])) + CUT_ROW > room:
            break
        kept.append(row)
    if len(kept) == len(rows):
        return render_section(section, kept), None
    what = f"{len(rows) - len(kept)} of {len(rows)} rows of “{section['summary']}”"
    if not kept:
        return None, what
    return render_section(section, [*kept, f"\n… {len(rows) - len(kept)} more rows cut to fit the comment."]), what


def render_markdown(model: dict[str, Any], limit: int = LIMIT) -> str:
    """The comment: headline, plots, then folded details, cut row by row to stay under `limit` characters.

    The headline is never cut; the plots go whole or not at all; a details section keeps its first rows.
    """
    head = "\n".join(headline(model)) + "\n\n"
    footer = f"\n\n<sub>Reproduce locally: `{model['command']} --base {model['base']}`.</sub>\n"
    room = limit - len(head) - len(footer) - CUT_NOTE
    parts, cut = [], []
    plots = "\n".join(plots_section(model))
    if plots and len(plots) + 2 <= room:
        parts.append(plots)
        room -= len(plots) + 2
    elif plots:
        cut.append("the plots")
    for section in detail_sections(model):
        text, what = fitted(section, room)
        if text:
            parts.append(text)
            room -= len(text) + 2
        if what:
            cut.append(what)
    if cut:
        note = f"> ✂️ Cut to stay under {limit:,} characters: {'; '.join(cut)}."
        parts.append(note[: CUT_NOTE - 80] + " The full report: `--format json`, or the CI artifact.")
    return head + "\n\n".join(parts) + footer


def render_json(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- edges: git, dvc and files


def dvc_json(*args: str) -> Any:
    """A dvc command's JSON output; {} when it printed none (e.g. no metrics yet)."""
    return json.loads(run_tool("dvc", *args, check=False).stdout or "{}")


def base_problem(base: str, metrics_dir: str) -> tuple[bool, str | None]:
    """(whether the base revision is here, why its metrics cannot be compared or None)."""
    if run_tool("git", "rev-parse", "--verify", "--quiet", base + "^{commit}", check=False).returncode:
        return False, (
            f"The base revision `{base}` is not in this checkout (a shallow clone?): run "
            f"`git fetch origin {base.removeprefix('origin/')}` to compare. Current values only."
        )
    if not run_tool("git", "ls-tree", "-r", "--name-only", base, "--", metrics_dir, check=False).stdout.strip():
        return True, f"The base `{base}` has no metrics yet: every value below is new."
    return True, None


def reproduction_warning() -> str | None:
    """A warning when the workspace does not match dvc.lock: then the values below were not reproduced."""
    status = run_tool("dvc", "status", "--json", check=False)
    try:
        stale = sorted(set(json.loads(status.stdout or "{}")) - {GATE_STAGE})
    except ValueError:
        stale = []
    if not stale:
        return None
    return (
        f"> ⚠️ **Not reproduced**: `dvc status` lists {', '.join(f'`{name}`' for name in stale)} as changed, so "
        "the values below are the last committed ones, not this revision's. Did `dvc repro` fail? Its log says "
        "why; a missing `data/raw` file in CI means no DVC remote holds the data (`dvc remote add`, `dvc push`)."
    )


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested metrics as DVC names them: 'by_column.sex.max_gap'; lists are left out, as DVC does."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix and not isinstance(data, list) else {}
    return {key: value for name, item in data.items() for key, value in flatten(item, f"{prefix}{name}.").items()}


def current_metrics() -> Diff:
    """`dvc metrics show` in the shape of `dvc metrics diff`, with no base values."""
    shown = dvc_json("metrics", "show", "--json")
    files = (shown.get("") or {}).get("data") or {}
    return {
        path: {name.rstrip("."): {"new": value} for name, value in flatten(entry.get("data") or {}).items()}
        for path, entry in sorted(files.items())
    }


def base_file(base: str, path: str) -> str | None:
    """A file as the base revision has it: from git, or for a DVC-tracked output, through dvc.api."""
    shown = run_tool("git", "show", f"{base}:{path}", check=False)
    if shown.returncode == 0:
        return shown.stdout
    try:
        import dvc.api

        return dvc.api.read(path, rev=base)
    except Exception:  # noqa: BLE001  (not in the base, or its data not in this cache: no base series)
        return None


def learning_points(rows_tsv: str | None, score_tsv: str | None, metric: str) -> list[dict] | None:
    """DVCLive's step files joined on step: training rows and the validation score `metric` at each step."""
    if not rows_tsv or not score_tsv:
        return None
    tables = [list(csv.DictReader(io.StringIO(text), delimiter="\t")) for text in (rows_tsv, score_tsv)]
    rows = {record["step"]: record for record in tables[0]}
    return [
        {"rows": float(rows[record["step"]]["train_rows"]), "score": float(record[metric])}
        for record in tables[1]
        if record["step"] in rows
    ]


def read_plots(read: Callable[[str], str | None]) -> dict[str, Any]:
    """The task's plot files that `dvc plots` draws, through `read(path) -> text or None` (workspace or base)."""
    params = load_params()
    task, plots, learning = params.data.task, params.paths.plots, params.paths.learning_curve

    def load(path: Path) -> Any:
        text = read(path.as_posix())
        return json.loads(text) if text else None

    files = {name: load(plots / file) for name, file in PLOT_FILES[task].items()}
    rows, scores = (read((learning / name).as_posix()) for name in (TRAIN_ROWS, learning_curve_file(task)))
    return {**files, "learning_curve": learning_points(rows, scores, MAIN_METRIC[task])}


def workspace_file(path: str) -> str | None:
    return Path(path).read_text() if Path(path).is_file() else None


def collect(base: str, command: str) -> ReportInputs:
    """Every input of the report, read from this checkout and from the base revision."""
    params = load_params()
    gate_path = params.paths.gate
    present, note = base_problem(base, str(gate_path.parent))
    metrics_diff = dvc_json("metrics", "diff", base, "--all", "--json") if present else {}
    base_gate = json.loads(base_file(base, gate_path.as_posix()) or "null") if present else None
    return {
        "task": params.data.task,
        "base": base,
        "base_note": note,
        "warning": reproduction_warning(),
        "gate": read_json(gate_path),
        "gate_file": gate_path.as_posix(),
        "base_gate": base_gate,
        "metrics_diff": metrics_diff or current_metrics(),
        "params_diff": dvc_json("params", "diff", base, "--json") if present else {},
        "validation": read_json(params.paths.validation),
        "plots": read_plots(workspace_file),
        "base_plots": read_plots(lambda path: base_file(base, path)) if present else {},
        "command": command,
    }


def command_name() -> str:
    """This project's console command, as its pyproject.toml names it, for the 'reproduce locally' line."""
    from importlib.metadata import entry_points

    target = f"{__package__}.cli:run"
    names = [point.name for point in entry_points(group="console_scripts") if point.value == target]
    return f"{names[0]} report" if names else f"python -m {__package__}.cli report"


def main(base: str = "main", format: str = "markdown") -> None:  # noqa: A002  (the CLI's option name)
    model = build(collect(base, command_name()))
    print(render_json(model) if format == "json" else render_markdown(model), end="")


# --- GitLab note
REQUIRED = ("CI_SERVER_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID", "GITLAB_TOKEN")


def upsert_note(merge_request: Any, body: str) -> str:
    """Update the note that starts with the report marker, or create it; returns what was done.

    Every page of the notes is read (python-gitlab follows GitLab's `Link: rel="next"`), oldest first,
    so the first report note is found however long the discussion grew after it.
    """
    notes = merge_request.notes.list(iterator=True, per_page=100, sort="asc", order_by="created_at")
    ours = next((note for note in notes if note.body.startswith(MARKER)), None)
    if ours is None:
        merge_request.notes.create({"body": body})
        return "created"
    ours.body = body
    ours.save()
    return "updated"


def gitlab_note(file: str) -> None:
    """Post the report as the merge request's one report note (GitLab CI's merge-request job).

    python-gitlab waits out a 429 (its Retry-After, or a growing back-off) and retries transient failures
    (500, 502, 503, 504, 520-530, timeouts, dropped or refused connections), 10 retries in all per request.
    """
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        raise PipelineError(f"set {', '.join(missing)}: this command runs in a GitLab merge-request pipeline")
    try:
        body = Path(file).read_text()
    except OSError as error:
        raise PipelineError(f"cannot read the report {file}: {error.strerror}") from None
    try:  # here, not at the top: only this command needs it, and only GitLab's job installs it
        import gitlab
        import requests
    except ImportError:
        raise PipelineError(
            "gitlab-note needs python-gitlab, which the project does not depend on: install it as the GitLab job"
            " does, `pip install --no-deps -r requirements-gitlab.lock` (or `pip install python-gitlab`)"
        ) from None
    env = os.environ
    url, iid = env["CI_SERVER_URL"], env["CI_MERGE_REQUEST_IID"]
    client = gitlab.Gitlab(url, private_token=env["GITLAB_TOKEN"], retry_transient_errors=True, timeout=30)
    project = client.projects.get(env["CI_PROJECT_ID"], lazy=True)  # lazy: no request until the notes
    try:
        with client:
            done = upsert_note(project.mergerequests.get(iid, lazy=True), body)
    except gitlab.GitlabError as error:
        problem = f"GitLab API answered {error.response_code} ({error.error_message}) for merge request !{iid}"
        if error.response_code in (401, 403, 404):  # GitLab answers 404 for a project the token cannot see
            problem += ": check GITLAB_TOKEN's scope (`api`) and its access to this project"
        raise PipelineError(problem) from None
    except requests.RequestException as error:
        raise PipelineError(f"GitLab at {url} unreachable: {error}") from None
    print(f"gitlab-note: {done} the report note on merge request !{iid}")
