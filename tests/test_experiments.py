"""DVC experiments on a baked project: one run with -S, a queued grid run by two workers, apply."""

import json
import shlex

import pytest
from tools.bakery import Project

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

GRID = [4, 6, 10]
QUEUE_TIMEOUT_SECONDS = 600


def readme_command(project: Project, prefix: str) -> list[str]:
    """The command the project's README gives, starting with `prefix`, as the user would copy it."""
    line = next(line for line in (project.path / "README.md").read_text().splitlines() if line.startswith(prefix))
    return shlex.split(line)


def test_set_param_experiment_queue_grid_show_and_apply(reproduced_copy):
    project = reproduced_copy
    single = project.dvc("exp", "run", "-S", "train.hist_gradient_boosting.max_leaf_nodes=5")
    assert project.stages_run(single.stdout) == ["train", "evaluate", "gate"]

    values = ",".join(str(leaves) for leaves in GRID)
    project.dvc("exp", "run", "--queue", "-S", f"train.hist_gradient_boosting.max_leaf_nodes={values}")
    status = project.run_experiment_queue(tasks=len(GRID), jobs=2, timeout_seconds=QUEUE_TIMEOUT_SECONDS)
    assert status.count("Success") == len(GRID), status

    table = json.loads(project.dvc("exp", "show", "--json").stdout)
    experiments = [exp for commit in table for exp in (commit.get("experiments") or [])]
    leaves = sorted(
        run["revs"][0]["data"]["params"]["params.yaml"]["data"]["train"]["hist_gradient_boosting"]["max_leaf_nodes"]
        for run in experiments
    )
    assert leaves == sorted([5, *GRID])
    assert all(run["revs"][0]["data"]["metrics"]["metrics/gate.json"]["data"]["passed"] for run in experiments)
    markdown = project.run(*readme_command(project, "dvc exp show")).stdout
    header, _, *rows = markdown.strip().splitlines()
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    assert columns == [
        "Experiment",
        "accuracy",
        "f1",
        "roc_auc",
        "max_gap",
        "max_drop",
        "metrics/gate.json:passed",
        "train.hist_gradient_boosting.max_leaf_nodes",
    ]
    verdicts = [row.strip("|").split("|")[6].strip() for row in rows]
    assert len(rows) == 2 + len(experiments) and set(verdicts) == {"True"}

    best = max(
        experiments,
        key=lambda run: run["revs"][0]["data"]["metrics"]["metrics/evaluation.json"]["data"]["f1"],
    )
    project.dvc("exp", "apply", best["revs"][0]["name"])
    applied = json.loads((project.path / "metrics" / "evaluation.json").read_text())["f1"]
    assert applied == best["revs"][0]["data"]["metrics"]["metrics/evaluation.json"]["data"]["f1"]
