"""The pull-request report: the gate's verdict and checks first, everything else folded, plots inline.

Two halves. The edges (`collect`) run `dvc metrics diff`, `dvc params diff` and read the base's files
with `git show` or `dvc.api`. The middle is pure: `build` turns those inputs into a report *model*
(a JSON-ready dict) and `render_markdown` / `render_json` lay it out. The tests check the renderer
against golden files, so `<command> report --base main` prints exactly what CI posts.

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

from .core import PipelineError, load_params, read_json, rounded, run_tool

MARKER = "<!-- dvc-pipeline-report -->"  # lets CI find and update its own comment
GATE_STAGE = "gate"  # a failed gate leaves its stage unlocked; its verdict is current all the same
LIMIT = 60_000  # characters: under GitHub's 65,536 and GitLab's note limit, with room to spare
CUT_NOTE, CUT_ROW = 600, 80  # characters kept for the note on what was cut, and for a section's "… cut" row
CURVE_POINTS = 11  # points per Mermaid curve: enough for the shape, small in the comment
TOP_DRIFT = 10  # drifted columns listed, worst first
BASE_COLOUR, PR_COLOUR = "#9e9e9e", "#1f77b4"
OPERATORS = {">=": "higher", "<=": "lower"}  # a gate check's operator says which way is better
# The threshold param of the gate's checks that are not `<metric>_min` / `<metric>_max`.
SECTION_PARAMS = {
    "comparison": "gate.comparison.min_ratio",
    "fairness": "gate.fairness.max_gap",
    "robustness": "gate.robustness.max_drop",
}
# plot: (title, (x field, x label), (y field, y label)), from the files `dvc plots` draws
CURVES = (
    ("roc", "ROC curve", ("fpr", "False positive rate"), ("tpr", "True positive rate")),
    ("precision_recall", "Precision-recall curve", ("recall", "Recall"), ("precision", "Precision")),
    ("learning_curve", "Learning curve", ("rows", "Training rows"), ("score", "Validation ROC AUC")),
)
LEARNING_CURVE = ("plots/metrics/train_rows.tsv", "plots/metrics/validation/roc_auc.tsv")


# ---------------------------------------------------------------- pure: inputs -> report model
Diff = dict[str, dict[str, dict[str, Any]]]  # `dvc metrics diff --json` / `dvc params diff --json`: file, name, old/new


class ReportInputs(TypedDict):
    """Everything `build` reports on, as `collect` reads it from this checkout and the base revision."""

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


def other_metric_rows(diff: Diff, gated: list[dict[str, Any]], skip: str = "") -> list[dict[str, Any]]:
    """Every metric the gated table does not show, with its change; direction from the gate when it has one.

    `skip` is the gate's own file, whose verdict and counts the headline already shows.
    """
    directions = {row["check"].partition(": ")[2]: row["direction"] for row in gated}
    flat = {metric: values.get("new") for values in diff.values() for metric, values in values.items()}
    rows = []
    for path, entries in sorted(diff.items()):
        for metric, values in sorted(entries.items()):
            if path == skip or metric in directions and directions[metric] is not None or metric.endswith("_spread"):
                continue
            spread = spread_of(flat, metric)
            rows.append(
                {
                    "file": path,
                    "metric": metric,
                    "base": values.get("old"),
                    "pr": values.get("new"),
                    **compare(values.get("old"), values.get("new"), directions.get(metric), spread),
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


def chart(
    title: str, x: tuple[str, Sequence[float], bool], y_label: str, base: list[float] | None, pr: list[float] | None
) -> dict[str, Any]:
    """A chart's data: x axis (label, values, whether they are category labels), y range, both series."""
    x_label, x_values, labels = x
    values = [value for line in (base, pr) if line for value in line]
    low, high = 0.0, 1.0  # rates and scores; a learning curve's range is zoomed to its values
    if labels and values:
        low, high = math.floor(min(values) * 20) / 20, min(1.0, math.ceil(max(values) * 20) / 20)
    return {
        "title": title,
        "x_label": x_label,
        "x": x_values,
        "x_labels": labels,
        "y_label": y_label,
        "y_range": [low, high],
        "base": base,
        "pr": pr,
    }


def curve_charts(plots: dict[str, Any], base_plots: dict[str, Any]) -> list[dict[str, Any]]:
    """ROC, precision-recall and the learning curve, base against PR, sampled on a shared grid."""
    grid = [round(index / (CURVE_POINTS - 1), 4) for index in range(CURVE_POINTS)]
    charts = []
    for name, title, (x, x_label), (y, y_label) in CURVES:
        points = plots.get(name)
        axis: tuple[str, Sequence[float], bool]
        if name == "learning_curve":  # category labels: the training-set sizes this change used
            sizes = [float(point[x]) for point in points or []]
            axis = (x_label, [int(size) for size in sizes], True)
        else:
            sizes, axis = grid, (x_label, grid, False)
        if sizes:
            base, pr = (sample_curve(source.get(name), x, y, sizes) for source in (base_plots, plots))
            charts.append(chart(title, axis, y_label, base, pr))
    return charts


def confusion_counts(rows: list[dict] | None) -> dict[str, int] | None:
    if rows is None:
        return None
    counts = {"tn": 0, "fp": 0, "fn": 0, "tp": 0}
    names = {(0, 0): "tn", (0, 1): "fp", (1, 0): "fn", (1, 1): "tp"}
    for row in rows:
        counts[names[int(row["actual"]), int(row["predicted"])]] += 1
    return counts


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
    plots, base_plots = inputs["plots"], inputs["base_plots"]
    return {
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
        "charts": curve_charts(plots, base_plots),
        "confusion": {
            "base": confusion_counts(base_plots.get("confusion")),
            "pr": confusion_counts(plots.get("confusion")),
        },
        "metrics": other_metric_rows(metrics_diff, gated, inputs["gate_file"]),
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
    """One `xychart-beta` block: the base's line in grey, this change's in blue."""
    series = [values for values in (item["base"], item["pr"]) if values]
    palette = ", ".join(colour for colour, values in ((BASE_COLOUR, item["base"]), (PR_COLOUR, item["pr"])) if values)
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
    base, pr = model["confusion"]["base"], model["confusion"]["pr"]
    if pr is None:
        return []

    def cell(name: str) -> str:
        return f"{pr[name]} ({base[name]})" if base else str(pr[name])

    legend = f" (in brackets: `{model['base']}`)" if base else ""
    return [
        f"Confusion matrix{legend}:",
        "",
        "| | predicted 0 | predicted 1 |",
        "|---|---|---|",
        f"| **actual 0** | {cell('tn')} | {cell('fp')} |",
        f"| **actual 1** | {cell('fn')} | {cell('tp')} |",
    ]


def plots_section(model: dict[str, Any]) -> list[str]:
    charts = [item for item in model["charts"] if item["pr"]]
    if not charts and model["confusion"]["pr"] is None:
        return []
    legend = f"grey: `{model['base']}`, blue: this change" if any(item["base"] for item in charts) else "this change"
    lines = ["<details open><summary>Plots</summary>", "", f"Lines: {legend}.", ""]
    for item in charts:
        lines += [*mermaid(item), ""]
    return [*lines, *confusion_table(model), "", "</details>"]


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


def learning_points(rows_tsv: str | None, score_tsv: str | None) -> list[dict] | None:
    """DVCLive's step files joined on step: training rows and validation score at each step."""
    if not rows_tsv or not score_tsv:
        return None
    tables = [list(csv.DictReader(io.StringIO(text), delimiter="\t")) for text in (rows_tsv, score_tsv)]
    rows = {record["step"]: record for record in tables[0]}
    return [
        {"rows": float(rows[record["step"]]["train_rows"]), "score": float(record["roc_auc"])}
        for record in tables[1]
        if record["step"] in rows
    ]


def read_plots(read: Callable[[str], str | None]) -> dict[str, Any]:
    """The plot files `dvc plots` draws, through `read(path) -> text or None` (workspace or base)."""
    params = load_params()
    plots, learning = params.paths.plots, params.paths.learning_curve

    def load(path: Path) -> Any:
        text = read(path.as_posix())
        return json.loads(text) if text else None

    return {
        "roc": load(plots / "roc.json"),
        "precision_recall": load(plots / "precision_recall.json"),
        "confusion": load(plots / "confusion_matrix.json"),
        "learning_curve": learning_points(*(read((learning / name).as_posix()) for name in LEARNING_CURVE)),
    }


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
