"""Failing safe, through `dvc repro` in baked projects: a bad param, a bad contract, a crash or a SIGKILL
stops the run with a clear message and the right exit status, and loses nothing that was there before.
"""

import json
import pickle
import re
from pathlib import Path
from typing import NoReturn

import pytest
import yaml
from tools.bakery import Project, md5, set_yaml_key

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

USER_ERROR, INTERNAL_ERROR = 2, 3

# Each hook makes one stage process (`credit-risk <stage>`, run by dvc repro) fail at one point, for real:
# a SIGKILL of itself, or an exception no stage expects. Python imports `sitecustomize` at start-up.
FAULT_HOOK = """
import os, signal, sys

stage, _, point = os.environ.get("STAGE_FAULT", "").partition(":")
if len(sys.argv) > 1 and sys.argv[1] == stage and os.path.basename(sys.argv[0]) == "credit-risk":

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "start":
        die()
    elif point == "model-write":  # killed after the model's first bytes are written
        import joblib

        real_dump = joblib.dump

        class DyingFile:
            def __init__(self, handle):
                self.handle, self.written = handle, 0

            def write(self, data):
                self.handle.write(data)
                self.written += len(data)
                if self.written > 4096:
                    die()
                return len(data)

            def __getattr__(self, name):
                return getattr(self.handle, name)

        joblib.dump = lambda value, handle, *args, **kwargs: real_dump(value, DyingFile(handle), *args, **kwargs)
    elif point == "learning-curve":  # killed after the model is saved, while DVCLive logs the curve
        import sklearn.model_selection

        sklearn.model_selection.learning_curve = die
    elif point == "crash":  # a bug: an exception nobody expects
        import json

        def crash(*args, **kwargs):
            raise RuntimeError("injected bug")

        json.loads = crash
"""


def leftovers(project: Project) -> list[Path]:
    return [path for path in project.path.rglob("*partial*") if ".git" not in path.parts]


# name: (file, dotted key, value, the stage that refuses, what its message must say)
BAD_INPUTS = {
    "test_size not a number": ("params.yaml", "split.test_size", "abc", "preprocess", "'split.test_size' is 'abc'"),
    "test_size out of range": ("params.yaml", "split.test_size", 1.5, "preprocess", "'split.test_size' is 1.5"),
    "unknown estimator": ("params.yaml", "train.estimator", "xgboost", "train", "'train.estimator' is 'xgboost'"),
    "invalid hyper-parameter": (
        "params.yaml",
        "train.hist_gradient_boosting.max_leaf_nodes",
        -3,
        "train",
        "The 'max_leaf_nodes' parameter of HistGradientBoostingClassifier must be",
    ),
    "positive class no row has": ("params.yaml", "data.positive_class", 7, "train", "'data.positive_class' is 7"),
    "unknown sensitive column": (
        "params.yaml",
        "evaluate.fairness.sensitive",
        ["gender"],
        "evaluate",
        "'evaluate.fairness.sensitive' names ['gender']",
    ),
    "unknown robustness metric": (
        "params.yaml",
        "evaluate.robustness.metric",
        "auc",
        "evaluate",
        "'evaluate.robustness.metric' is 'auc', not a scikit-learn scorer",
    ),
    "threshold not a number": ("params.yaml", "gate.fairness.max_gap", "high", "gate", "'gate.fairness.max_gap'"),
    "threshold of no metric": ("params.yaml", "gate.performance.auc_min", 0.7, "gate", "names metric 'auc'"),
    "misspelt key": ("params.yaml", "validate.psi_bin", 10, "validate", "'validate.psi_bin' is not a known key"),
    "impossible range": ("schema.yaml", "columns.age.min", 120, "preprocess", "min 120.0 is above max 100.0"),
    "unknown column type": ("schema.yaml", "columns.age.type", "text", "preprocess", "'columns.age.type' is 'text'"),
    "missing rate on a non-nullable column": (
        "schema.yaml",
        "columns.sex.max_missing_rate",
        0.3,
        "preprocess",
        "nullable: false allows no missing values",
    ),
    "unbounded rule": (
        "schema.yaml",
        "rules.adult_applicant",
        "age < 9 ** 9 ** 9",
        "preprocess",
        "rule 'adult_applicant': `**` needs a literal exponent",
    ),
    "rule that runs code": (
        "schema.yaml",
        "rules.adult_applicant",
        "__import__('os').system('touch pwned')",
        "preprocess",
        "rule 'adult_applicant': Call is not allowed",
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_params_and_contracts_stop_dvc_repro_clearly_and_lose_nothing(reproduced_copy, kind):
    assert_bad_input_stops_dvc_repro_clearly(reproduced_copy, kind)


def assert_bad_input_stops_dvc_repro_clearly(project: Project, kind: str) -> None:
    """One of BAD_INPUTS in the project, then `dvc repro`: the stage refuses it in its words and loses nothing
    (tests/test_dask_engine.py runs the same on a Dask cluster)."""
    file, key, value, stage, message = BAD_INPUTS[kind]
    set_yaml_key(project.path / file, key, value)
    before = project.guarded_state()

    result = project.dvc("repro", check=False)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"failed to run: credit-risk {stage}, exited with {USER_ERROR}" in output, output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in output
    assert f"{stage}: kept the last good outputs" in result.stderr
    assert project.guarded_state() == before
    assert project.deleted_by_git() == []
    assert not (project.path / "pwned").exists()


@pytest.mark.parametrize("point", ["start", "model-write", "learning-curve"])
def test_a_train_killed_by_sigkill_leaves_no_partial_file_and_the_next_repro_restores_the_same_hashes(
    reproduced_copy, tmp_path, point
):
    project = reproduced_copy
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAULT_HOOK)
    lock_before = (project.path / "dvc.lock").read_bytes()
    locked_before = locked_hashes(project)
    model = project.path / "models" / "model.joblib"

    killed = project.run(
        "dvc",
        "repro",
        "--force",
        "--single-item",
        "train",
        check=False,
        env={"STAGE_FAULT": f"train:{point}", "PYTHONPATH": f"{hook}:{project.env['PYTHONPATH']}"},
    )

    assert killed.returncode != 0 and "failed to run: credit-risk train" in killed.stderr, killed.stderr
    assert leftovers(project) == []
    assert not model.exists() or md5(model) == locked_before["models/model.joblib"]  # never a truncated model
    assert (project.path / "dvc.lock").read_bytes() == lock_before
    assert "Stage 'train' is cached" in project.dvc("repro").stdout  # DVC restores the last good model
    retrained = project.dvc("repro", "--force", "--single-item", "train")  # and training again gives its bytes
    assert "Running stage 'train'" in retrained.stdout
    assert locked_hashes(project) == locked_before
    assert json.loads(project.dvc("status", "--json").stdout) == {}
    assert leftovers(project) == []


def test_a_crash_is_an_internal_error_not_a_failed_gate_and_keeps_the_verdict(reproduced_copy, tmp_path):
    project = reproduced_copy
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAULT_HOOK)
    before = project.guarded_state()
    env = {"STAGE_FAULT": "gate:crash", "PYTHONPATH": f"{hook}:{project.env['PYTHONPATH']}"}

    direct = project.run("credit-risk", "gate", check=False, env=env)
    under_dvc = project.run("dvc", "repro", "--force", "--single-item", "gate", check=False, env=env)

    assert direct.returncode == INTERNAL_ERROR
    assert "RuntimeError: injected bug" in direct.stderr and "internal error in `gate`" in direct.stderr
    assert f"failed to run: credit-risk gate, exited with {INTERNAL_ERROR}" in under_dvc.stderr
    assert project.guarded_state() == before


def test_a_model_file_that_does_not_match_dvc_lock_is_never_unpickled(reproduced_copy, tmp_path):
    project = reproduced_copy
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_CreatesFileWhenUnpickled(str(marker)))
    pickle.loads(payload)  # the control: unpickling these bytes does create the marker
    assert marker.exists()
    marker.unlink()
    model = project.path / "models" / "model.joblib"
    model.chmod(0o644)
    model.write_bytes(payload)

    result = project.command("evaluate", check=False)

    assert result.returncode == USER_ERROR
    assert "does not match the md5 recorded for it in dvc.lock" in result.stderr
    assert not marker.exists()


class _CreatesFileWhenUnpickled:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def locked_hashes(project: Project) -> dict[str, str]:
    """Every output's md5 in dvc.lock, except the latency timings, which measure the machine."""
    lock = yaml.safe_load((project.path / "dvc.lock").read_text())
    outs = {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}
    return {path: value for path, value in outs.items() if not re.search(r"latency|gate\.json", path)}


def test_metrics_files_hold_strict_json(reproduced):
    def refuse(constant: str) -> NoReturn:
        raise AssertionError(f"a metrics file holds {constant}")

    for path in (reproduced.path / "metrics").glob("*.json"):
        json.loads(path.read_text(), parse_constant=refuse)
