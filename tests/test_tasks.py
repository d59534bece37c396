"""The multiclass and regression tasks end to end: their example data, a baked project's pipeline through the
gate, a change of a training param (what re-runs, the metrics diff, the pull-request report).

The binary task is the default answer: every other pipeline test runs it.
"""

import json

import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes, load_wine
from tools.bakery import Project, Task, bake_project
from tools.example_data import EXPORTS, RAW_DATA, csv_bytes, dvc_file_text

TASKS: list[Task] = ["multiclass", "regression"]
# a hyper-parameter of each task's shipped estimator, and another value that changes the model
TRAIN_CHANGE: dict[Task, tuple[str, float]] = {
    "multiclass": ("train.logistic_regression.C", 0.5),
    "regression": ("train.ridge.alpha", 10.0),
}
# Run in the project: the task's main metric recomputed with scikit-learn from the model's answers on the test
# split, the model loaded as evaluate loads it (md5 checked).
MAIN_METRIC_BY_SCIKIT_LEARN = """
import importlib, json, sys, yaml, pandas as pd
from pathlib import Path
from sklearn.metrics import f1_score, r2_score
package = sys.argv[1]
load_model = importlib.import_module(f"{package}.model").load_model
params = yaml.safe_load(Path("params.yaml").read_text())
target, paths = params["data"]["target"], params["paths"]
test = pd.read_parquet(paths["test"])
predicted = load_model(Path(paths["model"])).predict(test.drop(columns=[target]))
if params["data"]["task"] == "regression":
    print(json.dumps(r2_score(test[target].astype(float), predicted)))
else:
    print(json.dumps(f1_score(test[target].astype(str), predicted.astype(str), average="macro")))
"""


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_the_shipped_example_data_is_scikit_learns_bundled_data(name):
    """The CSV is the deterministic export of the installed scikit-learn's data; its .dvc file, DVC's record of it."""
    shipped = (RAW_DATA / name).read_bytes()
    assert shipped == csv_bytes(EXPORTS[name]())
    assert (RAW_DATA / f"{name}.dvc").read_text() == dvc_file_text(shipped, name)


def test_the_exported_numbers_and_labels_are_scikit_learns_unrounded():
    """Read back, each file holds scikit-learn's own values: writing whole numbers as integers lost nothing."""
    wine, diabetes = load_wine(as_frame=True), load_diabetes(as_frame=True, scaled=False)
    shipped_wine = pd.read_csv(RAW_DATA / "wine.csv")
    pd.testing.assert_frame_equal(shipped_wine.drop(columns="cultivar"), wine.data, check_dtype=False)
    assert shipped_wine["cultivar"].tolist() == [wine.target_names[label] for label in wine.target]
    shipped_diabetes = pd.read_csv(RAW_DATA / "diabetes.csv")
    pd.testing.assert_frame_equal(shipped_diabetes.drop(columns="progression"), diabetes.data, check_dtype=False)
    assert shipped_diabetes["progression"].tolist() == diabetes.target.tolist()


@pytest.fixture(scope="module", params=TASKS)
def reproduced_task(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project baked with the task's answer, `dvc repro` run and committed. Read-only: copy to change."""
    project = bake_project(tmp_path_factory.mktemp(request.param), task=request.param)
    project.dvc("repro")
    project.commit_all("Run the pipeline")
    return project


def params_of(project: Project) -> dict:
    return yaml.safe_load((project.path / "params.yaml").read_text())


def metrics_of(project: Project) -> dict:
    """evaluate's metrics and latency figures together: the values the gate's thresholds name."""
    folder = project.path / "metrics"
    return {**json.loads((folder / "evaluation.json").read_text()), **json.loads((folder / "latency.json").read_text())}


@pytest.mark.slow
def test_the_pipeline_passes_the_gate_on_the_tasks_own_metrics_and_plots(reproduced_task):
    project, params = reproduced_task, params_of(reproduced_task)
    gate = json.loads((project.path / "metrics" / "gate.json").read_text())
    assert gate["passed"] is True and gate["checks_failed"] == 0, gate
    metrics, thresholds = metrics_of(project), params["gate"]["performance"]
    assert {key.rsplit("_", 1)[0] for key in thresholds} <= set(metrics)
    checked = [check["name"] for check in gate["checks"]]
    for metric in {key.rsplit("_", 1)[0] for key in thresholds}:
        assert [name for name in checked if name.startswith(f"performance: {metric} ")], (metric, checked)

    main_metric = params["evaluate"]["robustness"]["metric"]  # the task's main metric, as shipped
    recomputed = project.run("python", "-c", MAIN_METRIC_BY_SCIKIT_LEARN, project.slug.replace("-", "_")).stdout
    assert metrics[main_metric] == pytest.approx(json.loads(recomputed), abs=1e-6)

    evaluate_plots = [
        next(iter(out)) if isinstance(out, dict) else out
        for out in yaml.safe_load((project.path / "dvc.yaml").read_text())["stages"]["evaluate"]["outs"]
    ]
    plot_files = [out.replace("${paths.plots}", params["paths"]["plots"]) for out in evaluate_plots if "plots" in out]
    shown = json.loads(project.dvc("plots", "show", "--json").stdout)["data"]
    curve = f"dvclive/plots/metrics/validation/{main_metric}.tsv"  # the learning curve scores the main metric
    assert set(plot_files) | {curve} <= set(shown)
    assert all(json.loads((project.path / name).read_text()) for name in plot_files)


@pytest.mark.slow
def test_a_train_param_change_reruns_train_evaluate_gate_and_is_diffed_and_reported(reproduced_task, tmp_path):
    project = reproduced_task.copy(tmp_path)
    task = params_of(project)["data"]["task"]
    key, value = TRAIN_CHANGE[task]
    before = metrics_of(project)
    project.git("checkout", "--quiet", "-b", "feature")
    project.set_param(key, value)
    assert set(json.loads(project.dvc("status", "--json").stdout)) == {"train"}  # the only stage reading it
    assert project.stages_run(project.dvc("repro").stdout) == ["train", "evaluate", "gate"]
    project.commit_all(f"{key} = {value}")

    main_metric = params_of(project)["evaluate"]["robustness"]["metric"]
    diff = json.loads(project.dvc("metrics", "diff", "main", "--all", "--json").stdout)
    change = diff["metrics/evaluation.json"][main_metric]
    assert (change["old"], change["new"]) == (before[main_metric], metrics_of(project)[main_metric])

    report = project.command("report", "--base", "main").stdout
    assert report.splitlines()[1].startswith(("## ✅ Gate passed", "## ❌ Gate failed")), report[:500]
    assert "Not reproduced" not in report
    for threshold in params_of(project)["gate"]["performance"]:
        assert f"| performance: {threshold.rsplit('_', 1)[0]} |" in report
    assert f"| {key} |" in report
