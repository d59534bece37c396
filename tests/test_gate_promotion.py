"""The gate against the production model, promotion to production, and safe loading, in baked projects."""

import json

import pandas as pd
import pytest
from tools.bakery import VENV_BIN, Project, md5, tree_md5s

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

ARTIFACT = "credit-risk-model"
NOT_DATA = (".git", ".dvc/tmp")  # git's own folder; DVC's scratch, where every command rewrites its lock file


@pytest.fixture(scope="module")
def promoted(reproduced, tmp_path_factory):
    """The reproduced default project with its model promoted to production as v1.0.0. Read-only: copy to change."""
    project = reproduced.copy(tmp_path_factory.mktemp("promoted"))
    project.command("promote")
    return project


@pytest.fixture
def promoted_copy(promoted, tmp_path):
    return promoted.copy(tmp_path)


def baseline(project: Project) -> dict:
    return json.loads((project.path / "production" / "baseline.json").read_text())


def registry_state(project: Project) -> tuple[list[str], str]:
    """The git tags and the commit checked out: what a promotion changes."""
    return project.git("tag").stdout.split(), project.git("rev-parse", "HEAD").stdout.strip()


def gto_prod_version(project: Project) -> str:
    return json.loads(project.run(str(VENV_BIN / "gto"), "show", "--json").stdout)[ARTIFACT]["stage"]["prod"]


def write_baseline_f1(project: Project, f1: float) -> None:
    """A production record as `promote` writes one, for a model that scored `f1`."""
    record = {"artifact": ARTIFACT, "version": "v9.9.9", "model_md5": "0" * 32, "source_commit": "0" * 40}
    (project.path / "production" / "baseline.json").write_text(json.dumps({**record, "metrics": {"f1": f1}}))


def candidate_f1(project: Project) -> float:
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


def test_promoted_model_is_tagged_and_its_baseline_recorded(promoted):
    tags, _ = registry_state(promoted)
    assert f"{ARTIFACT}@v1.0.0" in tags and f"{ARTIFACT}#prod#1" in tags
    recorded = baseline(promoted)
    assert recorded["version"] == "v1.0.0" and recorded["metrics"]["f1"] == candidate_f1(promoted)
    assert recorded["model_md5"] == md5(promoted.path / "models" / "model.joblib")
    assert gto_prod_version(promoted) == "v1.0.0"
    assert promoted.git("status", "--porcelain").stdout == ""
    assert json.loads(promoted.dvc("status", "--json").stdout) == {}


def test_promote_refuses_a_committed_change_that_was_not_reproduced(reproduced_copy):
    reproduced_copy.set_param("train.hist_gradient_boosting.learning_rate", 0.06)
    reproduced_copy.commit_all("A change committed without `dvc repro`")
    result = reproduced_copy.command("promote", check=False)
    assert result.returncode == 2
    assert "the workspace does not match dvc.lock (train: params.yaml" in result.stderr and "dvc repro" in result.stderr
    assert "Traceback" not in result.stderr
    assert reproduced_copy.git("tag").stdout == ""
    assert baseline(reproduced_copy)["metrics"] is None


def test_lifecycle_restore_by_tag_refuse_a_mismatched_model_promote_v1_1_0_then_nothing_to_do(promoted_copy):
    project, model = promoted_copy, promoted_copy.path / "models" / "model.joblib"
    first = baseline(project)
    branch = project.git("branch", "--show-current").stdout.strip()
    project.set_param("train.hist_gradient_boosting.learning_rate", 0.06)  # a candidate that passes the gate
    project.dvc("repro")
    project.commit_all("Another candidate")
    candidate_md5 = md5(model)
    assert candidate_md5 != first["model_md5"]

    # the promoted version comes back from its tag
    project.git("checkout", "--quiet", f"{ARTIFACT}@v1.0.0")
    project.dvc("checkout")
    assert md5(model) == first["model_md5"]

    # back on the branch, the workspace still holds v1.0.0's model while dvc.lock records the candidate's
    project.git("checkout", "--quiet", branch)
    before = registry_state(project)
    refused = project.command("promote", check=False)
    assert refused.returncode == 2
    assert "the workspace does not match dvc.lock (train: models/model.joblib modified" in refused.stderr
    assert "dvc checkout" in refused.stderr and "Traceback" not in refused.stderr
    assert registry_state(project) == before and baseline(project) == first

    project.dvc("checkout")
    project.command("promote")
    tags, _ = registry_state(project)
    assert {f"{ARTIFACT}@v1.1.0", f"{ARTIFACT}#prod#2"} <= set(tags) and len(tags) == len(before[0]) + 2
    second = baseline(project)
    assert second["version"] == "v1.1.0" and second["model_md5"] == candidate_md5 == md5(model)
    assert gto_prod_version(project) == "v1.1.0"
    assert project.git("status", "--porcelain").stdout == ""

    # the same model again: nothing to do, nothing changed
    before, workspace = registry_state(project), tree_md5s(project.path, skip=NOT_DATA)
    again = project.command("promote")
    assert f"this model is already prod ({ARTIFACT} v1.1.0); nothing to do" in again.stdout
    assert registry_state(project) == before and tree_md5s(project.path, skip=NOT_DATA) == workspace


def test_promotion_keeps_the_training_data_as_reference_and_validate_checks_psi_per_column(promoted):
    reference = pd.read_parquet(promoted.path / "production" / "reference.parquet")
    training = pd.read_parquet(promoted.path / "data" / "processed" / "train.parquet")
    assert len(reference) == len(training) > 0  # the sample is every row while there are at most reference_rows
    assert "risk" in reference.columns  # the target's drift is checked too
    assert sorted(map(tuple, reference.astype(str).to_numpy())) == sorted(map(tuple, training.astype(str).to_numpy()))
    checks = json.loads((promoted.path / "metrics" / "validation.json").read_text())["checks"]
    psi = {check["column"]: check for check in checks if check["name"] == "drift: PSI"}
    assert set(psi) == set(reference.columns)
    assert all(check["passed"] and check["value"] is not None for check in psi.values())
    assert not any(check["name"] == "drift: reference present" for check in checks)


def test_a_shifted_column_stops_repro_at_validate_naming_its_psi(promoted_copy):
    raw = promoted_copy.path / "data" / "raw" / "german_credit.csv"
    data = pd.read_csv(raw)
    data["duration"] = (data["duration"] + 24).clip(upper=120)  # every loan two years longer
    data.to_csv(raw, index=False)
    result = promoted_copy.dvc("repro", check=False)
    assert result.returncode != 0
    assert promoted_copy.stages_run(result.stdout) == ["preprocess", "validate"]
    assert "column 'duration': drift: PSI" in result.stdout + result.stderr
    checks = json.loads((promoted_copy.path / "metrics" / "validation.json").read_text())["checks"]
    assert [(check["name"], check["column"]) for check in checks if not check["passed"]] == [("drift: PSI", "duration")]


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
        "print(json.dumps(load_model(Path('models/model.joblib')).predict_proba(rows)[:, 1].tolist()))"
    )
    fresh = reproduced.run(str(VENV_BIN / "python"), "-c", snippet)
    recorded = json.loads((reproduced.path / "metrics" / "sample_predictions.json").read_text())
    assert json.loads(fresh.stdout) == recorded["probabilities"]
