"""The gate against the production model, promotion to production, and safe loading, in baked projects."""

import json
import subprocess

from tools.bakery import VENV_BIN

ARTIFACT = "credit-risk-model"


def write_baseline_f1(project, f1: float) -> None:
    (project.path / "production" / "baseline.json").write_text(json.dumps({"version": "v9.9.9", "metrics": {"f1": f1}}))


def candidate_f1(project) -> float:
    return json.loads((project.path / "metrics" / "evaluation.json").read_text())["f1"]


def test_weak_candidate_fails_the_gate_naming_each_failed_check(reproduced_copy):
    reproduced_copy.set_param("train.hist_gradient_boosting", {"max_iter": 1, "max_leaf_nodes": 2})
    result = reproduced_copy.dvc("repro", check=False)
    assert result.returncode != 0
    gate = json.loads((reproduced_copy.path / "metrics" / "gate.json").read_text())
    failed = [check["name"] for check in gate["checks"] if not check["passed"]]
    assert failed and gate["passed"] is False
    for name in failed:
        assert name in result.stdout
    assert "performance: roc_auc >= 0.7" in failed


def test_candidate_at_97_percent_of_production_fails_and_at_99_passes(reproduced_copy):
    f1 = candidate_f1(reproduced_copy)
    write_baseline_f1(reproduced_copy, f1 / 0.97)
    failing = reproduced_copy.command("gate", check=False)
    assert failing.returncode == 1
    assert "comparison: f1 >= 0.98 x production" in failing.stdout
    write_baseline_f1(reproduced_copy, f1 / 0.99)
    assert reproduced_copy.command("gate", check=False).returncode == 0


def test_fairness_gap_over_the_limit_fails(reproduced_copy):
    gap = json.loads((reproduced_copy.path / "metrics" / "fairness.json").read_text())["max_gap"]
    reproduced_copy.set_param("gate.fairness.max_gap", round(gap / 2, 6))
    result = reproduced_copy.command("gate", check=False)
    assert result.returncode == 1
    assert f"fairness: largest group gap <= {round(gap / 2, 6)}" in result.stdout


def test_promote_refuses_an_uncommitted_run(reproduced_copy):
    reproduced_copy.set_param("split.seed", 7)
    result = reproduced_copy.command("promote", check=False)
    assert result.returncode == 2 and "uncommitted changes" in result.stderr
    assert reproduced_copy.git("tag").stdout == ""


def test_promote_refuses_a_failing_gate(reproduced_copy):
    reproduced_copy.set_param("gate.performance.accuracy_min", 0.99)
    reproduced_copy.dvc("repro", check=False)
    reproduced_copy.commit_all("A run whose gate failed")
    result = reproduced_copy.command("promote", check=False)
    assert result.returncode == 2 and "gate verdict is FAILED" in result.stderr
    assert reproduced_copy.git("tag").stdout == ""
    assert json.loads((reproduced_copy.path / "production" / "baseline.json").read_text())["metrics"] is None


def test_promoted_model_is_tagged_and_restored_by_tag_and_checkout(reproduced_copy):
    project = reproduced_copy
    project.command("promote")
    tags = project.git("tag").stdout.split()
    assert f"{ARTIFACT}@v1.0.0" in tags and any(tag.startswith(f"{ARTIFACT}#prod#") for tag in tags)
    baseline = json.loads((project.path / "production" / "baseline.json").read_text())
    assert baseline["version"] == "v1.0.0" and baseline["metrics"]["f1"] == candidate_f1(project)
    assert project.git("status", "--porcelain").stdout == ""
    assert json.loads(project.dvc("status", "--json").stdout) == {}

    project.set_param("train.hist_gradient_boosting.max_leaf_nodes", 4)  # a new candidate replaces the model
    project.dvc("repro", check=False)
    project.commit_all("Another candidate")
    model = project.path / "models" / "model.joblib"
    assert md5(model) != baseline["model_md5"]

    project.git("checkout", "--quiet", f"{ARTIFACT}@v1.0.0")
    project.dvc("checkout")
    assert md5(model) == baseline["model_md5"]


def test_tampered_model_is_refused_before_it_is_unpickled(reproduced_copy):
    model = reproduced_copy.path / "models" / "model.joblib"
    model.chmod(0o644)
    model.write_bytes(model.read_bytes() + b"tampered")
    result = reproduced_copy.command("evaluate", check=False)
    assert result.returncode == 2
    assert "does not match the md5 recorded for it in dvc.lock" in result.stderr
    assert "dvc checkout models/model.joblib" in result.stderr
    assert "Traceback" not in result.stderr


def test_saved_model_in_a_fresh_process_predicts_what_evaluate_recorded(reproduced):
    snippet = (
        "import json, pandas as pd; from credit_risk.model import load_model; from pathlib import Path; "
        "rows = pd.read_parquet('data/processed/test.parquet').drop(columns=['risk']).head(20); "
        "print(json.dumps(load_model(Path('models/model.joblib')).predict_proba(rows)[:, 1].round(12).tolist()))"
    )
    fresh = reproduced.run(str(VENV_BIN / "python"), "-c", snippet)
    recorded = json.loads((reproduced.path / "metrics" / "sample_predictions.json").read_text())
    assert json.loads(fresh.stdout) == recorded["probabilities"]


def md5(path) -> str:
    return subprocess.run(["md5sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
