"""Stages in the registry, in baked projects with real git, DVC and GTO: `promote --canary`,
`rollback` to the previous prod version, byte for byte, and `status`."""

import json
import re
import shutil

import pandas as pd
import pytest
from tools.bakery import VENV_BIN, Project, tree_md5s

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

ARTIFACT = "credit-risk-model"
PRODUCTION = ("production/baseline.json", "production/reference.parquet")
# git's own folder; DVC's scratch, where every command rewrites its lock file; Python's bytecode of the command
NOT_DATA = (".git", ".dvc/tmp", "src/credit_risk/__pycache__")
SINCE = r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def production_bytes(project: Project) -> dict[str, bytes]:
    return {name: (project.path / name).read_bytes() for name in PRODUCTION}


def gto_stages(project: Project) -> dict[str, str | None]:
    return json.loads(project.run(str(VENV_BIN / "gto"), "show", "--json").stdout)[ARTIFACT]["stage"]


def registry_state(project: Project) -> tuple[list[str], str]:
    """The git tags and the commit checked out: what a registry command changes."""
    return project.git("tag").stdout.split(), project.git("rev-parse", "HEAD").stdout.strip()


def stage_tags(tags: list[str], stage: str) -> int:
    """How many GTO stage tags (`<artifact>#<stage>#N`, N counting every stage's tags) the registry holds."""
    return sum(1 for tag in tags if re.fullmatch(rf"{ARTIFACT}#{re.escape(stage)}#\d+", tag))


def new_candidate(project: Project, learning_rate: float) -> None:
    """A changed, reproduced and committed candidate that passes the gate."""
    project.set_param("train.hist_gradient_boosting.learning_rate", learning_rate)
    project.dvc("repro")
    project.commit_all(f"Candidate with learning rate {learning_rate}")


def test_canary_leaves_prod_alone_then_rollback_restores_v1_byte_for_byte_and_serves_it(reproduced_copy, tmp_path):
    project = reproduced_copy
    project.command("promote")
    v1 = production_bytes(project)
    v1_probabilities = json.loads((project.path / "metrics" / "sample_predictions.json").read_text())["probabilities"]

    # a changed candidate to canary: registered at its commit, prod and its record untouched
    new_candidate(project, 0.06)
    _, head = registry_state(project)
    canary = project.command("promote", "--canary")
    assert f"{ARTIFACT} v1.1.0 is now canary" in canary.stdout
    tags, after = registry_state(project)
    assert f"{ARTIFACT}@v1.1.0" in tags and stage_tags(tags, "canary") == 1 and after == head
    assert production_bytes(project) == v1
    assert gto_stages(project) == {"prod": "v1.0.0", "canary": "v1.1.0"}
    assert project.git("status", "--porcelain").stdout == ""
    again = project.command("promote", "--canary")
    assert "already canary" in again.stdout and registry_state(project) == (tags, head)

    status = project.command("status").stdout
    assert re.search(rf"prod +v1\.0\.0 +{SINCE}", status), status
    assert re.search(rf"canary +v1\.1\.0 +{SINCE}", status), status
    assert re.search(r"candidate .*not in prod, gate PASSED", status), status

    # the canary to prod at its commit: the same version, no new one, and no longer canary; then rolled
    # back: v1 again, with its baseline and reference
    project.command("promote")
    assert gto_stages(project) == {"prod": "v1.1.0"} and production_bytes(project) != v1
    assert f"{ARTIFACT}@v1.2.0" not in registry_state(project)[0]
    rolled = project.command("rollback")
    assert f"{ARTIFACT} v1.0.0 is prod again, in place of v1.1.0" in rolled.stdout
    assert production_bytes(project) == v1
    tags, _ = registry_state(project)
    assert stage_tags(tags, "prod") == 3 and stage_tags(tags, "prod!") == 1  # v1.0.0, v1.1.0, v1.0.0; v1.1.0 off
    assert project.git("tag", "--points-at", f"{ARTIFACT}@v1.0.0^{{commit}}").stdout.count("#prod#") == 2
    assert project.git("log", "-1", "--format=%s").stdout.strip() == f"Roll back {ARTIFACT} prod from v1.1.0 to v1.0.0"
    assert project.git("status", "--porcelain").stdout == ""
    assert json.loads(project.dvc("status", "--json").stdout) == {}
    assert gto_stages(project)["prod"] == "v1.0.0"
    status = project.command("status").stdout
    assert re.search(rf"prod +v1\.0\.0 +{SINCE}", status) and "candidate" in status and "not in prod" in status

    # the restored version scores from the registry, checked against its promotion record
    rows = tmp_path / "rows.parquet"
    pd.read_parquet(project.path / "data" / "processed" / "test.parquet").head(20).to_parquet(rows, index=False)
    output = tmp_path / "scored.parquet"
    project.command("predict", "--input", str(rows), "--output", str(output), "--model-version", "v1.0.0")
    scored = pd.read_parquet(output)
    assert scored["probability"].tolist() == v1_probabilities and set(scored["model_version"]) == {"v1.0.0"}

    # a second rollback: v1.0.0 is the first prod, so there is nothing older to go back to
    refused = project.command("rollback", check=False)
    assert refused.returncode == 2 and "nothing to roll back to: only v1.0.0 has held prod" in refused.stderr


def test_rollback_refuses_with_nothing_to_go_back_to_and_changes_nothing(reproduced_copy):
    project = reproduced_copy

    def refused(expected: str) -> None:
        before, workspace = registry_state(project), tree_md5s(project.path, skip=NOT_DATA)
        result = project.command("rollback", check=False)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert registry_state(project) == before and tree_md5s(project.path, skip=NOT_DATA) == workspace

    refused(f"nothing to roll back to: no version of {ARTIFACT} holds prod yet")
    assert "prod      -" in project.command("status").stdout
    project.command("promote")
    refused("nothing to roll back to: only v1.0.0 has held prod")
    project.set_param("split.seed", 7)
    refused("uncommitted changes")
    shutil.rmtree(project.path / ".git")
    outside = project.command("rollback", check=False)
    assert outside.returncode == 2 and "not a git repository" in outside.stderr and "Traceback" not in outside.stderr
