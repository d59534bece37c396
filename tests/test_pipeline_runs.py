"""The baked project's pipeline, run for real with DVC: what runs, what is skipped, what is reproducible."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from fairlearn import metrics as fairlearn
from tools.bakery import VENV_BIN, bake_project

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

ALL_STAGES = ["preprocess", "validate", "train", "evaluate", "gate"]
# Run in the project: the model's decisions on the test split, loaded as evaluate loads it (md5 checked), with
# the truth and each sensitive column, as JSON.
DECISIONS_ON_THE_TEST_SPLIT = """
import json, yaml, pandas as pd
from pathlib import Path
from credit_risk.model import load_model
params = yaml.safe_load(Path("params.yaml").read_text())
target, paths = params["data"]["target"], params["paths"]
test = pd.read_parquet(paths["test"])
scores = load_model(Path(paths["model"])).predict_proba(test.drop(columns=[target]))[:, 1]
print(json.dumps({
    "y_true": (test[target] == params["data"]["positive_class"]).astype(int).tolist(),
    "y_pred": (scores >= params["evaluate"]["decision_threshold"]).astype(int).tolist(),
    "sensitive": {
        column: test[column].astype("string").fillna("missing").tolist()
        for column in params["evaluate"]["fairness"]["sensitive"]
    },
}))
"""
FAIRLEARN_RATES = {
    "rows": fairlearn.count,
    "selection_rate": fairlearn.selection_rate,
    "true_positive_rate": fairlearn.true_positive_rate,
    "false_positive_rate": fairlearn.false_positive_rate,
}


def locked_hashes(project_path: Path) -> dict[str, str]:
    lock = yaml.safe_load((project_path / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def deterministic_outputs(project_path: Path) -> list[str]:
    """Every output dvc.lock records whose bytes must not depend on the run: all but the latency file and the
    gate's, which hold timings of the machine (the gate's file is compared without them, below).
    """
    paths = yaml.safe_load((project_path / "params.yaml").read_text())["paths"]
    return sorted(set(locked_hashes(project_path)) - {paths["latency"], paths["gate"]})


def test_repro_runs_all_five_stages_and_the_gate_passes(reproduced):
    gate = json.loads((reproduced.path / "metrics" / "gate.json").read_text())
    assert gate["passed"] is True and gate["checks_failed"] == 0
    evaluation = json.loads((reproduced.path / "metrics" / "evaluation.json").read_text())
    assert {"accuracy", "precision", "recall", "f1", "roc_auc"} <= set(evaluation)
    latency = json.loads((reproduced.path / "metrics" / "latency.json").read_text())
    assert latency["latency_p99_ms"] > 0
    paths = yaml.safe_load((reproduced.path / "params.yaml").read_text())["paths"]
    every_kind = [paths[name] for name in ("train", "test", "model", "learning_curve", "validation", "drift_report")]
    every_kind += [paths[name] for name in ("evaluation", "fairness", "robustness", "predictions")]
    every_kind += [f"{paths['plots']}/{name}.json" for name in ("roc", "precision_recall", "confusion_matrix")]
    assert set(deterministic_outputs(reproduced.path)) >= set(every_kind)
    assert reproduced.git("status", "--porcelain").stdout == ""


def test_second_repro_runs_nothing_and_status_is_clean(reproduced):
    again = reproduced.dvc("repro")
    assert reproduced.stages_run(again.stdout) == []
    assert json.loads(reproduced.dvc("status", "--json").stdout) == {}


def test_metrics_and_plots_are_declared_for_dvc(reproduced):
    shown = json.loads(reproduced.dvc("metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    assert {"metrics/evaluation.json", "metrics/gate.json", "metrics/validation.json"} <= set(files)
    plots = json.loads(reproduced.dvc("plots", "show", "--json").stdout)
    assert {"plots/roc.json", "plots/precision_recall.json", "plots/confusion_matrix.json"} <= set(plots["data"])
    curve = "dvclive/plots/metrics/validation/roc_auc.tsv"
    assert curve in plots["data"]
    assert len((reproduced.path / curve).read_text().splitlines()) == 1 + 5  # header + one row per size


def test_train_param_change_reruns_train_evaluate_gate_only(reproduced_copy):
    reproduced_copy.set_param("train.hist_gradient_boosting.max_leaf_nodes", 6)
    result = reproduced_copy.dvc("repro")
    assert reproduced_copy.stages_run(result.stdout) == ["train", "evaluate", "gate"]


def test_raw_data_change_reruns_every_stage(reproduced_copy):
    raw = reproduced_copy.path / "data" / "raw" / "german_credit.csv"
    lines = raw.read_text().splitlines(keepends=True)
    raw.write_text("".join(lines[:-5]))  # drop five applicants
    result = reproduced_copy.dvc("repro", check=False)  # the verdict on the new data is not the point
    assert reproduced_copy.stages_run(result.stdout) == ALL_STAGES


def gate_without_timings(project_path: Path) -> list[dict]:
    checks = json.loads((project_path / "metrics" / "gate.json").read_text())["checks"]
    return [{**check, "value": None} if "latency" in check["name"] else check for check in checks]


def test_two_clean_runs_give_identical_hashes(reproduced, tmp_path):
    second = bake_project(tmp_path)
    second.dvc("repro")
    outputs = deterministic_outputs(reproduced.path)
    assert deterministic_outputs(second.path) == outputs
    first_hashes, second_hashes = locked_hashes(reproduced.path), locked_hashes(second.path)
    assert {path: first_hashes[path] for path in outputs} == {path: second_hashes[path] for path in outputs}
    assert gate_without_timings(reproduced.path) == gate_without_timings(second.path)


def test_fairness_metrics_are_fairlearns_figures_for_the_models_own_decisions(reproduced):
    decisions = json.loads(reproduced.run(str(VENV_BIN / "python"), "-c", DECISIONS_ON_THE_TEST_SPLIT).stdout)
    y_true, y_pred = np.array(decisions["y_true"]), np.array(decisions["y_pred"])
    assert set(y_true) == set(y_pred) == {0, 1}
    recorded = json.loads((reproduced.path / "metrics" / "fairness.json").read_text())
    assert set(recorded["by_column"]) == set(decisions["sensitive"]) and recorded["by_column"]
    gaps = []
    for column, groups in decisions["sensitive"].items():
        by_group = fairlearn.MetricFrame(
            metrics=FAIRLEARN_RATES, y_true=y_true, y_pred=y_pred, sensitive_features=groups
        ).by_group
        assert len(by_group) >= 2
        ours = recorded["by_column"][column]
        assert set(ours["groups"]) == set(by_group.index)
        for group, rates in by_group.to_dict("index").items():
            assert ours["groups"][group] == pytest.approx(rates, abs=1e-6), (column, group)
        gaps += [
            fairlearn.demographic_parity_difference(y_true, y_pred, sensitive_features=groups),
            fairlearn.equalized_odds_difference(y_true, y_pred, sensitive_features=groups),
        ]
        assert [ours["demographic_parity_difference"], ours["equalized_odds_difference"]] == pytest.approx(
            gaps[-2:], abs=1e-6
        )
    assert recorded["max_gap"] == pytest.approx(max(gaps), abs=1e-6)


def test_failed_gate_fails_repro_and_names_the_check(reproduced_copy):
    reproduced_copy.set_param("gate.performance.accuracy_min", 0.99)
    result = reproduced_copy.dvc("repro", check=False)
    assert result.returncode != 0
    assert "accuracy >= 0.99" in result.stdout + result.stderr
    assert json.loads((reproduced_copy.path / "metrics" / "gate.json").read_text())["passed"] is False


def test_bad_param_is_a_clear_error_without_traceback(reproduced_copy):
    reproduced_copy.set_param("train.estimator", "svm")
    model_before = (reproduced_copy.path / "models" / "model.joblib").read_bytes()
    result = reproduced_copy.command("train", check=False)
    assert result.returncode == 2
    assert "'train.estimator' is 'svm': Input should be 'hist_gradient_boosting'" in result.stderr
    assert "Traceback" not in result.stderr
    assert (reproduced_copy.path / "models" / "model.joblib").read_bytes() == model_before


def test_console_command_lists_every_stage(reproduced):
    help_text = reproduced.command("--help").stdout
    for stage in ALL_STAGES:
        assert stage in help_text
    assert (VENV_BIN / "dvc").exists()
