"""Retraining in a baked, reproduced and committed project with real git and DVC: enough new rows fire
the data trigger, `retrain` folds them into the DVC-tracked raw data and reproduces, the gate decides,
and the folded rows no longer count."""

import json

import pandas as pd
import pytest
from tools.bakery import NEW_ROWS, RAW_DATA, Project, md5, write_new_rows

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out


def retrain_check(project: Project) -> dict:
    return json.loads(project.command("retrain-check").stdout)


def track_raw_with_dvc(project: Project) -> None:
    """As the README says once a remote exists: DVC takes the sample over from git."""
    project.git("rm", "--cached", "--quiet", RAW_DATA)
    project.dvc("add", RAW_DATA)
    project.commit_all("Track the raw data with DVC")


def test_new_rows_fire_the_data_trigger_and_retrain_folds_them_once_and_the_gate_decides(reproduced_copy):
    project = reproduced_copy
    track_raw_with_dvc(project)
    raw = project.path / RAW_DATA
    rows_before = len(pd.read_csv(raw))
    incoming = write_new_rows(project.path, "batch-1.csv", seed=7).parent
    project.commit_all("New labelled rows")

    before = retrain_check(project)
    assert "data" in before["fired"], before
    assert before["triggers"]["data"]["value"] == NEW_ROWS

    run = project.command("retrain", check=False)
    output = run.stdout + run.stderr
    # the gate decides (0 passed, 1 failed); these rows, drawn from the raw data itself, pass it
    assert run.returncode == 0, output
    assert f"folded {NEW_ROWS} rows from 1 files" in output
    assert all(f"Running stage '{stage}'" in output for stage in ("preprocess", "train", "evaluate", "gate")), output
    assert json.loads((project.path / "metrics" / "gate.json").read_text())["passed"]
    assert "retrain: the gate passed" in output

    assert len(pd.read_csv(raw)) == rows_before + NEW_ROWS
    tracked = (project.path / f"{RAW_DATA}.dvc").read_text()
    assert f"md5: {md5(raw)}" in tracked  # DVC tracks the new raw data
    assert "Data and pipelines are up to date" in project.dvc("status").stdout
    assert not (incoming / "batch-1.csv").exists()
    assert len(list((incoming / "folded").glob("*/batch-1.csv"))) == 1  # kept, out of git's way
    changed = project.git("status", "--porcelain").stdout
    assert " D data/incoming/batch-1.csv" in changed and "folded" not in changed
    assert "production/" not in changed  # retrain never promotes

    after = retrain_check(project)
    assert "data" not in after["fired"] and after["triggers"]["data"]["value"] == 0


def test_when_the_gate_fails_the_fold_is_kept_uncommitted_and_its_undo_restores_the_raw_data(reproduced_copy):
    project = reproduced_copy  # the sample in git, as without a remote: git tracks the new raw data
    raw = project.path / RAW_DATA
    original = raw.read_bytes()
    incoming = write_new_rows(project.path, "batch-2.csv", seed=8).parent
    project.set_param("gate.performance.f1_min", 0.99)  # no model reaches it

    run = project.command("retrain", check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output  # the gate failed: not releasable, and not an error
    assert "retrain: the gate failed" in output and "The folded rows stay in the workspace" in output
    assert raw.read_bytes().startswith(original) and raw.read_bytes() != original
    (kept,) = (incoming / "folded").glob("*/batch-2.csv")  # nothing lost
    assert "production/" not in project.git("status", "--porcelain").stdout

    undo = output.split("To undo the fold: `")[1].split("`")[0]
    project.run("sh", "-c", undo)
    kept.replace(incoming / "batch-2.csv")
    assert raw.read_bytes() == original
    assert retrain_check(project)["triggers"]["data"]["value"] == NEW_ROWS
