"""The pull-request report and the generated CI files, against real repositories (the GitLab note: its own module)."""

import json
from collections import Counter
from pathlib import Path

import pytest
from tools.bakery import VENV_BIN, bake_project

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

REPORT_COMMAND = "credit-risk report"


def table_row(report: str, first_cell: str) -> list[str]:
    row = next(line for line in report.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def xycharts(report: str) -> dict[str, list[list[float]]]:
    """Each Mermaid block's title and numeric series; fails unless every block is an xychart-beta."""
    charts: dict[str, list[list[float]]] = {}
    block: list[str] | None = None
    for line in report.splitlines():
        if line == "```mermaid":
            block = []
        elif line == "```" and block is not None:
            assert block[1] == "xychart-beta" and block[2].startswith("    title "), block
            title = json.loads(block[2].removeprefix("    title "))
            assert title not in charts
            lines = [item.removeprefix("    line ") for item in block if item.startswith("    line ")]
            charts[title] = [json.loads(line) for line in lines]
            block = None
        elif block is not None:
            block.append(line)
    return charts


def test_report_on_a_branch_shows_verdict_gated_checks_plots_and_changed_param(reproduced_copy):
    project = reproduced_copy
    main_f1 = json.loads((project.path / "metrics" / "evaluation.json").read_text())["f1"]
    project.git("checkout", "--quiet", "-b", "feature")
    project.set_param("train.hist_gradient_boosting.max_leaf_nodes", 5)
    project.dvc("repro", check=False)
    project.commit_all("Fewer leaves")
    report = project.command("report", "--base", "main").stdout
    new_f1 = json.loads((project.path / "metrics" / "evaluation.json").read_text())["f1"]

    lines = report.splitlines()
    assert lines[0] == "<!-- dvc-pipeline-report -->" and "Not reproduced" not in report
    assert lines[1].startswith(("## ✅ Gate passed", "## ❌ Gate failed"))
    headline = report[: report.index("<details")]
    table = [line for line in headline.splitlines() if line.startswith("|")]
    gate = json.loads((project.path / "metrics" / "gate.json").read_text())
    assert len(table) == 2 + len(gate["checks"])  # the gated table only: header, rule, one row per gate check
    check, threshold, old, new, change, _passed = table_row(report, "performance: f1")
    assert threshold == ">= 0.8" and float(old) == pytest.approx(main_f1, abs=1e-5)
    assert float(new) == pytest.approx(new_f1, abs=1e-5)
    assert change == "unchanged" if new_f1 == main_f1 else change.split()[0] in "▲▼"
    assert "spread" in table_row(report, "performance: latency_p99_ms")[4]
    assert table_row(report, "train.hist_gradient_boosting.max_leaf_nodes")[1:] == ["7", "5", "params.yaml"]
    for summary in ("Params: 1 changed", "Data validation: passed", "Drift:", "Other metrics:"):
        assert f"<details><summary>{summary}" in report
    charts = xycharts(report)
    assert list(charts) == ["ROC curve", "Precision-recall curve", "Learning curve"]
    for series in charts.values():
        assert len(series) == 2 and len(series[0]) == len(series[1]) > 1  # main's line and the branch's
    assert "| **actual 0** |" in report and len(report) < 60_000

    model = json.loads(project.command("report", "--base", "main", "--format", "json").stdout)
    assert [row["param"] for row in model["params"]] == ["train.hist_gradient_boosting.max_leaf_nodes"]
    assert {row["check"]: row["direction"] for row in model["gated"]}["performance: latency_p99_ms"] == "lower"


@pytest.mark.parametrize(
    ("task", "titles"),
    [("multiclass", ["Learning curve"]), ("regression", ["Predicted vs actual", "Residuals", "Learning curve"])],
)
def test_report_of_each_task_draws_its_plots_against_main(tmp_path, task, titles):
    project = bake_project(tmp_path, task=task)
    project.dvc("repro", check=False)  # a failed gate still writes its verdict, which the report shows
    project.commit_all("Run the pipeline")
    project.git("checkout", "--quiet", "-b", "feature")
    project.set_param("train.seed", 7)
    project.dvc("repro", check=False)
    project.commit_all("Another seed")
    report = project.command("report", "--base", "main").stdout

    assert report.splitlines()[1].startswith(("## ✅ Gate passed", "## ❌ Gate failed"))
    assert "Not reproduced" not in report
    charts = xycharts(report)
    assert list(charts) == titles
    for title, series in charts.items():
        lines = 3 if title == "Predicted vs actual" else 2  # the ideal line, main's, this change's
        assert len(series) == lines and len({len(line) for line in series}) == 1, title
    plot = project.path / "plots" / "confusion_matrix.json"
    confusion = json.loads(plot.read_text()) if task == "multiclass" else []
    counts = Counter((str(row["actual"]), str(row["predicted"])) for row in confusion)
    labels = sorted({label for pair in counts for label in pair})
    for actual in labels:  # every class, its count this change (and main's in brackets)
        cells = table_row(report, f"**actual {actual}**")[1:]
        assert [int(cell.split(" (")[0]) for cell in cells] == [counts[actual, predicted] for predicted in labels]
    assert ("| | predicted" in report) == (task == "multiclass")


def test_report_when_the_base_has_no_metrics_yet(tmp_path):
    project = bake_project(tmp_path)
    project.dvc("repro")
    report = project.command("report", "--base", "main").stdout
    assert "The base `main` has no metrics yet" in report
    row = table_row(report, "performance: f1")
    assert (row[2], row[4]) == ("–", "new")
    assert all(len(series) == 1 for series in xycharts(report).values())


def test_report_when_the_base_is_missing_still_shows_current_values(reproduced):
    report = reproduced.command("report", "--base", "origin/main").stdout
    assert "`origin/main` is not in this checkout" in report and "git fetch origin main" in report
    assert "performance: f1" in report and "## ✅ Gate passed" in report


def test_report_warns_when_the_pipeline_could_not_be_reproduced(reproduced_copy):
    """The raw data is missing from the checkout (a remote nobody pushed to), so `dvc repro` fails at preprocess."""
    project = reproduced_copy
    for path in ("data/raw/german_credit.csv", "data/processed/train.parquet", "data/processed/test.parquet"):
        (project.path / path).unlink()
    assert project.dvc("repro", check=False).returncode != 0
    report = project.command("report", "--base", "main").stdout
    warning = next(line for line in report.splitlines() if "Not reproduced" in line)
    assert report.index(warning) < report.index("## ")
    assert "`preprocess`" in warning
    assert "no DVC remote holds the data" in warning


def test_report_names_the_failed_gate_checks_first_with_their_param(reproduced_copy):
    reproduced_copy.set_param("gate.performance.accuracy_min", 0.99)
    reproduced_copy.dvc("repro", check=False)
    report = reproduced_copy.command("report").stdout
    assert "Not reproduced" not in report
    lines = report.splitlines()
    assert lines[1].startswith("## ❌ Gate failed: 1 of 8 checks")
    assert lines[3].startswith("- ❌ **performance: accuracy** is ") and "`gate.performance.accuracy_min`" in lines[3]


@pytest.mark.parametrize(
    ("ci", "files", "schema"),
    [
        ("github", [".github/workflows/pipeline.yml", ".github/workflows/release.yml"], "vendor.github-workflows"),
        ("gitlab", [".gitlab-ci.yml"], "vendor.gitlab-ci"),
    ],
)
def test_generated_ci_files_are_valid_secure_and_call_the_tested_report_command(tmp_path, ci, files, schema):
    project = bake_project(tmp_path, ci=ci)
    for name in files:
        project.run(str(VENV_BIN / "check-jsonschema"), "--builtin-schema", schema, name)
        text = (project.path / name).read_text()
        assert f'{REPORT_COMMAND} --base "origin/' in text
        assert "pull_request_target" not in text
    if ci == "github":
        project.run(str(VENV_BIN / "zizmor"), "--offline", "--min-severity", "medium", *files)
        assert all("permissions: {}" in (project.path / name).read_text() for name in files)


def test_root_workflows_run_the_readme_test_command_and_post_the_same_report():
    root = Path(__file__).resolve().parents[1]
    tests_workflow = (root / ".github" / "workflows" / "tests.yml").read_text()
    report_workflow = (root / ".github" / "workflows" / "pipeline-report.yml").read_text()
    assert "make test" in tests_workflow
    assert f'{REPORT_COMMAND} --base "origin/' in report_workflow
