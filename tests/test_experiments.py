"""DVC experiments on a baked project: one run with -S, a queued grid run by two workers, apply."""

import json
import time

import pytest

GRID = [4, 6, 10]
QUEUE_TIMEOUT_SECONDS = 600


def wait_for_queue(project) -> str:
    """Poll `dvc queue status` until nothing is queued or running; bounded by QUEUE_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + QUEUE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status = project.dvc("queue", "status").stdout
        if not any(state in status for state in ("Queued", "Running")):
            return status
        time.sleep(2)
    pytest.fail(f"the experiment queue did not drain in {QUEUE_TIMEOUT_SECONDS} s:\n{status}")


def test_set_param_experiment_queue_grid_show_and_apply(reproduced_copy):
    project = reproduced_copy
    single = project.dvc("exp", "run", "-S", "train.random_forest.max_depth=5")
    assert project.stages_run(single.stdout) == ["train", "evaluate", "gate"]

    values = ",".join(str(depth) for depth in GRID)
    project.dvc("exp", "run", "--queue", "-S", f"train.random_forest.max_depth={values}")
    project.dvc("queue", "start", "-j", "2")
    status = wait_for_queue(project)
    assert status.count("Success") == len(GRID), status

    table = json.loads(project.dvc("exp", "show", "--json").stdout)
    experiments = [exp for commit in table for exp in (commit.get("experiments") or [])]
    depths = sorted(
        run["revs"][0]["data"]["params"]["params.yaml"]["data"]["train"]["random_forest"]["max_depth"]
        for run in experiments
    )
    assert depths == sorted([5, *GRID])
    assert all(run["revs"][0]["data"]["metrics"]["metrics/gate.json"]["data"]["passed"] for run in experiments)
    markdown = project.dvc("exp", "show", "--md", "--only-changed", "--drop", "Created|Executor").stdout
    assert "train.random_forest.max_depth" in markdown and "| f1 " in markdown

    best = max(
        experiments,
        key=lambda run: run["revs"][0]["data"]["metrics"]["metrics/evaluation.json"]["data"]["f1"],
    )
    project.dvc("exp", "apply", best["revs"][0]["name"])
    applied = json.loads((project.path / "metrics" / "evaluation.json").read_text())["f1"]
    assert applied == best["revs"][0]["data"]["metrics"]["metrics/evaluation.json"]["data"]["f1"]
