"""The pull-request report's renderer on fixed inputs: golden Markdown files and a strict Mermaid check.

The golden files in tests/golden/ are the exact comments CI would post for these inputs. After an
intended change of the report, regenerate them, then review and commit the diff:

    UPDATE_GOLDEN=1 python -m pytest tests/test_report.py
"""

import copy
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from {{ cookiecutter.package_name }}.core import Task
from {{ cookiecutter.package_name }}.report import LIMIT, ReportInputs, build, render_json, render_markdown

GOLDEN = Path(__file__).parent / "golden"
PLOT_TITLES = ("ROC curve", "Precision-recall curve", "Learning curve")


def gate_check(name: str, value: float | None, threshold: float | None, passed: bool = True, detail: str = "") -> dict:
    return {"name": name, "value": value, "threshold": threshold, "passed": passed, "detail": detail, "column": None}


def gate_file(accuracy: float, latency: float, passed: bool = True) -> dict:
    checks = [
        gate_check("performance: accuracy >= 0.72", accuracy, 0.72, accuracy >= 0.72),
        gate_check("performance: f1 >= 0.8", 0.84, 0.8),
        gate_check("performance: latency_p99_ms <= 100", latency, 100),
        gate_check("comparison: f1 >= 0.98 x production", 0.84, None, detail="no baseline"),
        gate_check("data_quality: missing rate <= 0.45", 0.2, 0.45),
        gate_check("fairness: largest group gap <= 0.2", 0.1, 0.2),
        gate_check("robustness: largest drop <= 0.05", 0.02, 0.05),
    ]
    failed = sum(not check["passed"] for check in checks)
    return {"passed": failed == 0, "checks_total": len(checks), "checks_failed": failed, "checks": checks}


def curve(x: str, y: str, power: float) -> list[dict]:
    return [{x: step / 100, y: round((step / 100) ** power, 6)} for step in range(101)]


def plot_files(power: float) -> dict:
    counts = ((0, 0, 28), (0, 1, 32), (1, 0, 14), (1, 1, round(126 * power)))
    return {
        "roc": curve("fpr", "tpr", power),
        "precision_recall": [{"recall": p["fpr"], "precision": 1 - p["tpr"] / 3} for p in curve("fpr", "tpr", power)],
        "confusion": [{"actual": a, "predicted": p} for a, p, n in counts for _ in range(n)],
        "learning_curve": [{"rows": 100 * step, "score": 0.68 + 0.01 * step * power} for step in range(1, 6)],
    }


def validation_file(psi: float = 0.05) -> dict:
    checks = [
        {"name": "train: no missing values", "column": "age", "value": 0, "threshold": 0, "passed": True},
        {
            "name": "test: allowed values",
            "column": "purpose",
            "value": 3,
            "threshold": 0,
            "passed": False,
            "detail": "unseen: 'yacht'",
        },
        {"name": "drift: PSI", "column": "age", "value": psi, "threshold": 0.2, "passed": True},
        {"name": "drift: PSI", "column": "duration", "value": psi * 3, "threshold": 0.2, "passed": True},
    ]
    return {"passed": False, "checks_total": 4, "checks_failed": 1, "checks": checks}


def metrics_diff(base: dict | None, new: dict) -> dict:
    return {
        path: {name: {"old": (base or {}).get(path, {}).get(name), "new": value} for name, value in values.items()}
        for path, values in new.items()
    }


def metric_files(accuracy: float, latency: float, spread: float) -> dict:
    return {
        "metrics/evaluation.json": {"accuracy": accuracy, "f1": 0.84, "roc_auc": 0.77, "precision": 0.8},
        "metrics/latency.json": {
            "latency_p50_ms": latency / 2,
            "latency_p99_ms": latency,
            "latency_p50_ms_spread": spread,
            "latency_p99_ms_spread": spread,
        },
        "metrics/fairness.json": {"max_gap": 0.1, "by_column.sex.demographic_parity_difference": 0.01},
        "metrics/gate.json": {"passed": True, "checks_total": 7},
    }


def inputs(scenario: str) -> ReportInputs:
    """The report's inputs for a named scenario, as `report.collect` gathers them in a real checkout."""
    base_metrics = metric_files(0.77, 3.0, 0.2)
    passing = ReportInputs(
        task="binary",
        base="main",
        base_note=None,
        warning=None,
        gate=gate_file(0.78, 3.1),
        gate_file="metrics/gate.json",
        base_gate=gate_file(0.77, 3.0),
        metrics_diff=metrics_diff(base_metrics, metric_files(0.78, 3.1, 0.15)),
        params_diff={"params.yaml": {"train.hist_gradient_boosting.max_leaf_nodes": {"old": 7, "new": 5}}},
        validation=validation_file(),
        plots=plot_files(0.4),
        base_plots=plot_files(0.5),
        command="my-project report",
    )
    if scenario == "passing":
        return passing
    if scenario == "failing":
        return {
            **passing,
            "gate": gate_file(0.70, 4.5),
            "plots": plot_files(0.7),
            "metrics_diff": metrics_diff(base_metrics, metric_files(0.70, 4.5, 0.1)),
        }
    if scenario == "no_base":
        return {
            **passing,
            "base_gate": None,
            "base_plots": {},
            "params_diff": {},
            "base_note": "The base `main` has no metrics yet: every value below is new.",
            "metrics_diff": metrics_diff(None, metric_files(0.78, 3.1, 0.15)),
        }
    assert scenario == "many_metrics"
    new = metric_files(0.78, 3.1, 0.15)
    new["metrics/extra.json"] = {f"segment_{index:04d}.recall": index / 3000 for index in range(3000)}
    return {**passing, "metrics_diff": metrics_diff(base_metrics, new)}


# ---------------------------------------------------------------- the other tasks: wine and diabetes
CULTIVARS = ["class_0", "class_1", "class_2"]


def multiclass_plots(seed: int, hits: float) -> dict:
    """A confusion file of 150 test rows that predicts the right cultivar `hits` of the time, and a learning curve."""
    rng = np.random.default_rng(seed)
    actual = rng.choice(CULTIVARS, size=150)
    predicted = np.where(rng.random(150) < hits, actual, rng.choice(CULTIVARS, size=150))
    return {
        "confusion": [{"actual": str(a), "predicted": str(p)} for a, p in zip(actual, predicted, strict=True)],
        "learning_curve": [{"rows": 20 * step, "score": round(hits - 0.2 / step, 4)} for step in range(1, 6)],
    }


def multiclass_metrics(f1_macro: float, log_loss: float, roc_auc_ovr: float) -> dict:
    evaluation = {"accuracy": 0.9, "f1_macro": f1_macro, "f1_weighted": f1_macro + 0.01, "rows": 36}
    evaluation |= {"roc_auc_ovr": roc_auc_ovr, "log_loss": log_loss, "per_class.class_0.recall": 0.9}
    return {"metrics/evaluation.json": evaluation, "metrics/gate.json": {"passed": True, "checks_total": 2}}


def regression_plots(seed: int, noise: float) -> dict:
    """Predictions of a diabetes-like target (25 to 346) off by `noise` (its std), and R² at growing sizes."""
    rng = np.random.default_rng(seed)
    actual = rng.uniform(25, 346, size=400).round()
    predicted = 0.8 * actual + 30 + rng.normal(0, noise, size=400)
    return {
        "predicted_actual": [{"actual": a, "predicted": p} for a, p in zip(actual, predicted, strict=True)],
        "residuals": [{"predicted": p, "residual": a - p} for a, p in zip(actual, predicted, strict=True)],
        "learning_curve": [{"rows": 70 * step, "score": round(0.45 - noise / 100 / step, 4)} for step in range(1, 6)],
    }


def regression_metrics(mae: float, rmse: float, r2: float) -> dict:
    evaluation = {"mae": mae, "rmse": rmse, "r2": r2, "mape": 0.38, "rows": 89, "prediction_mean": 150.2}
    return {"metrics/evaluation.json": evaluation, "metrics/gate.json": {"passed": True, "checks_total": 2}}


def task_inputs(task: Task) -> ReportInputs:
    """A pull request on a multiclass or a regression project, as `collect` reads it from fixture files."""
    if task == "multiclass":
        accuracy = gate_check("performance: accuracy >= 0.85", 0.9, 0.85)
        checks = [gate_check("performance: f1_macro >= 0.85", 0.93, 0.85), accuracy]
        base_checks = [gate_check("performance: f1_macro >= 0.85", 0.91, 0.85), accuracy]
        diff = metrics_diff(multiclass_metrics(0.91, 0.31, 0.99), multiclass_metrics(0.93, 0.25, 0.98))
        plots, base_plots = multiclass_plots(1, 0.9), multiclass_plots(2, 0.8)
    else:
        checks = [gate_check("performance: r2 >= 0.3", 0.42, 0.3), gate_check("performance: rmse <= 60", 55.0, 60)]
        base_checks = [gate_check("performance: r2 >= 0.3", 0.4, 0.3), gate_check("performance: rmse <= 60", 54.0, 60)]
        diff = metrics_diff(regression_metrics(45.0, 54.0, 0.4), regression_metrics(44.0, 55.0, 0.42))
        plots, base_plots = regression_plots(1, 40.0), regression_plots(2, 50.0)
    return {
        **inputs("passing"),
        "task": task,
        "gate": {"passed": True, "checks_total": 2, "checks_failed": 0, "checks": checks},
        "base_gate": {"passed": True, "checks_total": 2, "checks_failed": 0, "checks": base_checks},
        "metrics_diff": diff,
        "params_diff": {},
        "plots": plots,
        "base_plots": base_plots,
    }


TASK_SCENARIOS: dict[str, Task] = {"multiclass": "multiclass", "regression": "regression"}


def scenario_inputs(scenario: str) -> ReportInputs:
    return task_inputs(TASK_SCENARIOS[scenario]) if scenario in TASK_SCENARIOS else inputs(scenario)


@pytest.mark.parametrize("scenario", ["passing", "failing", "no_base", "many_metrics", "multiclass", "regression"])
def test_markdown_matches_the_golden_file(scenario):
    text = render_markdown(build(scenario_inputs(scenario)))
    golden = GOLDEN / f"{scenario}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"regenerate with UPDATE_GOLDEN=1 and review: {golden}"


# ---------------------------------------------------------------- a strict reader of the Mermaid blocks

NUMBER = r"-?\d+(?:\.\d+)?"
AXIS_RANGE = re.compile(rf'^    (x|y)-axis "([^"]+)" ({NUMBER}) --> ({NUMBER})$')
AXIS_LABELS = re.compile(r'^    x-axis "([^"]+)" (\[.*\])$')
TITLE = re.compile(r'^    title "([^"]+)"$')
LINE = re.compile(r"^    line (\[.*\])$")
INIT = re.compile(r"^%%\{init: (.*)\}%%$")


def matched(pattern: re.Pattern[str], line: str) -> re.Match[str]:
    match = pattern.match(line)
    assert match, line
    return match


def parse_xychart(block: list[str]) -> dict:
    """One Mermaid block, line by line; anything but the grammar below is an error.

    %%{init: <JSON>}%%  /  xychart-beta  /  title "..."  /  x-axis "..." a --> b | x-axis "..." ["l", ...]
    /  y-axis "..." a --> b  /  line [n, ...] (one or more, equal lengths, inside the y range)
    """
    palette = json.loads(matched(INIT, block[0]).group(1))["themeVariables"]["xyChart"]["plotColorPalette"]
    assert block[1] == "xychart-beta"
    title = matched(TITLE, block[2]).group(1)
    x_range, x_labels = AXIS_RANGE.match(block[3]), AXIS_LABELS.match(block[3])
    assert x_range or x_labels, block[3]
    labels = json.loads(x_labels.group(2)) if x_labels else None
    assert labels is None or (labels and all(isinstance(label, str) for label in labels))
    y_axis = AXIS_RANGE.match(block[4])
    assert y_axis and y_axis.group(1) == "y", block[4]
    low, high = float(y_axis.group(3)), float(y_axis.group(4))
    series = []
    for line in block[5:]:
        values = json.loads(matched(LINE, line).group(1))
        assert values and all(isinstance(value, int | float) and not isinstance(value, bool) for value in values)
        assert all(low <= value <= high for value in values), (title, values, low, high)
        series.append(values)
    assert series and len({len(values) for values in series}) == 1, series
    assert labels is None or len(labels) == len(series[0])
    assert len(palette.split(", ")) == len(series)
    return {"title": title, "series": series}


def mermaid_blocks(text: str) -> list[dict]:
    blocks: list[dict] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line == "```mermaid":
            assert current is None
            current = []
        elif line == "```" and current is not None:
            blocks.append(parse_xychart(current))
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, "an unclosed mermaid block"
    return blocks


@pytest.mark.parametrize("scenario", ["passing", "failing", "many_metrics"])
def test_one_xychart_per_plot_with_base_and_pr_series_of_equal_length(scenario):
    charts = mermaid_blocks(render_markdown(build(inputs(scenario))))
    assert [chart["title"] for chart in charts] == list(PLOT_TITLES)
    for chart in charts:
        base, pr = chart["series"]
        assert len(base) == len(pr) and base != pr


def test_with_no_base_each_chart_has_the_pr_series_only():
    charts = mermaid_blocks(render_markdown(build(inputs("no_base"))))
    assert [len(chart["series"]) for chart in charts] == [1, 1, 1]


def test_the_mermaid_reader_rejects_what_mermaid_would_not_draw():
    good = render_markdown(build(inputs("passing")))
    assert mermaid_blocks(good)
    for broken in (
        good.replace("    line [", "    line [0.1, ", 1),  # series of unequal length
        good.replace("xychart-beta", "xychart", 1),
        good.replace('x-axis "False positive rate" 0.0 --> 1.0', "x-axis 0 to 1", 1),
        good.replace("    line [", "    line [nan, ", 1),
    ):
        with pytest.raises((AssertionError, AttributeError, ValueError)):
            mermaid_blocks(broken)


# ---------------------------------------------------------------- what the reader sees first


def gated(scenario: str) -> dict[str, dict]:
    return {row["check"]: row for row in build(inputs(scenario))["gated"]}


def test_direction_comes_from_the_gate_thresholds():
    rows = gated("failing")
    assert rows["performance: accuracy"]["verdict"] == "worse"  # >= threshold: higher is better, it fell
    assert rows["performance: latency_p99_ms"]["verdict"] == "worse"  # <= threshold: lower is better, it rose
    assert gated("passing")["performance: accuracy"]["verdict"] == "better"


def test_a_timing_change_within_its_spread_is_noise():
    row = gated("passing")["performance: latency_p99_ms"]  # +0.1 ms, spreads 0.2 and 0.15
    assert (row["change"], row["verdict"], row["spread"]) == (0.1, "within noise", 0.2)


def test_a_failed_check_comes_first_with_the_param_that_governs_it():
    text = render_markdown(build(inputs("failing")))
    lines = text.splitlines()
    assert lines[1].startswith("## ❌ Gate failed: 1 of 7")
    assert lines[3].startswith("- ❌ **performance: accuracy** is 0.7, needs >= 0.72")
    assert "`gate.performance.accuracy_min`" in lines[3] and "`train.hist_gradient_boosting.max_leaf_nodes`" in lines[3]
    first_row = next(line for line in lines if line.startswith("| performance"))
    assert first_row.endswith("❌ |")


def test_every_detail_is_folded_and_failed_validation_checks_come_first():
    text = render_markdown(build(inputs("passing")))
    headline = text[: text.index("<details")]
    assert "segment" not in headline and "max_gap" not in headline
    for summary in ("Params: 1 changed", "Data validation: FAILED", "Drift: the 2 most", "Other metrics:"):
        assert f"<details><summary>{summary}" in text
    validation = text[text.index("Data validation") :]
    assert validation.index("| ❌ | purpose | test: allowed values") < validation.index("| ✅ | age")
    drift = text[text.index("Drift:") :]
    assert drift.index("| duration | 0.15") < drift.index("| age | 0.05")


def test_many_metrics_are_cut_with_a_note_under_the_limit():
    model = build(inputs("many_metrics"))
    text = render_markdown(model)
    assert len(text) <= LIMIT and "✂️ Cut to stay under 60,000 characters" in text
    assert text.startswith(render_markdown(build(inputs("passing")))[: text.index("<details")])
    small = render_markdown(model, limit=3_000)
    assert len(small) <= 3_000 and "Gate passed" in small and "✂️" in small


def test_json_holds_the_same_model():
    model = build(inputs("failing"))
    assert json.loads(render_json(model)) == json.loads(json.dumps(model))
    assert copy.deepcopy(model) == build(inputs("failing"))


# ---------------------------------------------------------------- multiclass and regression reports


def other_metrics(model: dict) -> dict[str, dict]:
    return {row["metric"]: row for row in model["metrics"]}


def markdown_table(text: str, header_start: str) -> list[list[str]]:
    """The cells of the table whose header row starts with `header_start`: header first, then its rows."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(header_start))
    end = next(index for index in range(start, len(lines)) if not lines[index].startswith("|"))
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in [lines[start], *lines[start + 2 : end]]]


def test_multiclass_confusion_matrix_shows_every_class_as_scikit_learn_counts_them():
    given = task_inputs("multiclass")
    table = markdown_table(render_markdown(build(given)), "| | predicted")
    assert table[0][1:] == [f"predicted {label}" for label in CULTIVARS]
    assert [row[0] for row in table[1:]] == [f"**actual {label}**" for label in CULTIVARS]
    expected = {}
    for side, plots in (("plots", given["plots"]), ("base_plots", given["base_plots"])):
        pairs = [row["actual"] for row in plots["confusion"]], [row["predicted"] for row in plots["confusion"]]
        expected[side] = confusion_matrix(*pairs, labels=CULTIVARS)
    for row, cells in enumerate(table[1:]):
        for column, cell in enumerate(cells[1:]):
            assert cell == f"{expected['plots'][row][column]} ({expected['base_plots'][row][column]})"


def test_multiclass_report_marks_its_headline_metrics_by_their_own_direction():
    model = build(task_inputs("multiclass"))
    rows = other_metrics(model)
    assert rows["log_loss"]["verdict"] == "better"  # fell: lower is better
    assert rows["f1_weighted"]["verdict"] == "better"
    assert rows["roc_auc_ovr"]["verdict"] == "worse"
    assert rows["per_class.class_0.recall"]["verdict"] == "unchanged" and "f1_macro" not in rows  # gated
    charts = mermaid_blocks(render_markdown(model))
    assert [chart["title"] for chart in charts] == ["Learning curve"]
    assert model["charts"][0]["y_label"] == "Validation macro F1"


def test_regression_report_draws_binned_predictions_and_residuals_as_numpy_computes_them():
    given = task_inputs("regression")
    model = build(given)
    charts = {chart["title"]: chart for chart in model["charts"]}
    assert list(charts) == ["Predicted vs actual", "Residuals", "Learning curve"]
    sides = {"base": given["base_plots"], "pr": given["plots"]}
    every_actual = [point["actual"] for plots in sides.values() for point in plots["predicted_actual"]]
    span = (min(every_actual), max(every_actual))
    reach = max(abs(point["residual"]) for plots in sides.values() for point in plots["residuals"])
    for side, plots in sides.items():
        actual = [point["actual"] for point in plots["predicted_actual"]]
        predicted = [point["predicted"] for point in plots["predicted_actual"]]
        sums, edges = np.histogram(actual, bins=11, range=span, weights=predicted)
        rows, _ = np.histogram(actual, bins=11, range=span)
        assert charts["Predicted vs actual"][side] == pytest.approx(list(sums / rows), abs=1e-4)
        residuals = [point["residual"] for point in plots["residuals"]]
        counts, _ = np.histogram(residuals, bins=11, range=(-reach, reach))
        assert charts["Residuals"][side] == pytest.approx(list(counts / len(residuals)), abs=1e-4)
    centres = (edges[:-1] + edges[1:]) / 2
    assert charts["Predicted vs actual"]["ideal"] == pytest.approx(list(centres), abs=1e-4)
    assert charts["Learning curve"]["y_label"] == "Validation R²"
    assert model["confusion"]["pr"] is None


def test_regression_report_marks_errors_lower_is_better_and_draws_the_ideal_line():
    model = build(task_inputs("regression"))
    rows = other_metrics(model)
    assert rows["mae"]["verdict"] == "better"  # 45 -> 44
    assert rows["mape"]["verdict"] == "unchanged" and rows["prediction_mean"]["verdict"] == "unchanged"
    assert "rmse" not in rows and "r2" not in rows  # gated: the gated table shows them
    gated_rows = {row["check"]: row for row in model["gated"]}
    assert gated_rows["performance: rmse"]["verdict"] == "worse"  # 54 -> 55, `<=` threshold
    text = render_markdown(model)
    assert "green: predicted = actual" in text and "| | predicted" not in text
    charts = mermaid_blocks(text)  # strict: every value inside its axis range
    assert [len(chart["series"]) for chart in charts] == [3, 2, 2]  # the ideal line, main's, this change's
