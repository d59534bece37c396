"""The pipeline on a real Dask cluster: `dask scheduler` and two `dask worker` processes on 127.0.0.1, each with a
memory limit (tools.dask_cluster), reached through DASK_SCHEDULER_ADDRESS by a baked project set to
`compute.engine: dask`. Its stages run there (the scheduler's transition counter grows), give the local engine's
verdicts and metrics, reproduce their bytes, refuse broken data with the local engine's words, survive or clearly
report a worker killed mid-stage, and say in one line when no scheduler answers.
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from tools.bakery import Project, bake_project
from tools.dask_cluster import DaskCluster, running_dask_cluster
from tools.service import free_port

from tests.test_fail_safe import BAD_INPUTS, USER_ERROR, assert_bad_input_stops_dvc_repro_clearly, locked_hashes
from tests.test_validation import BROKEN, assert_broken_raw_data_refused_clearly

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
PARTITION_SIZE = "10KB"  # the 45 KB sample in about five partitions, so every merge across partitions is exercised
DASK_PARAMS = {"compute.engine": "dask", "train.estimator": "lightgbm", "compute.partition_size": PARTITION_SIZE}
STAGES = ["preprocess", "validate", "train", "evaluate", "gate"]
ON_THE_CLUSTER = ["preprocess", "validate", "train", "evaluate"]  # the gate reads metrics files: no Dask
SPLITS = ["data/processed/train.parquet", "data/processed/test.parquet"]
HEADLINE = ("accuracy", "f1", "roc_auc")  # core.HEADLINE_METRICS of the default (binary) task
METRIC_TOLERANCE = 0.01
# the local engine's matrix, for the stages that run on the cluster; hist_gradient_boosting's hyper-parameter is
# not one the Dask engine (LightGBM) reads
BAD_INPUTS_ON_THE_CLUSTER = [
    kind for kind, case in BAD_INPUTS.items() if case[3] in ON_THE_CLUSTER and kind != "invalid hyper-parameter"
]
KILLED_STAGE_SECONDS = 120  # a stage that outlives this after a worker's death has hung
# a stage and one of its tasks, as the scheduler names them: the worker that starts it is killed
KILL_POINTS = {"preprocess": "write_split_partition", "train": "trained_block"}  # writing a split part; LightGBM


def on(cluster: DaskCluster, project: Project) -> Project:
    """The project's stages use the test cluster, as a CI job points a project at its cluster."""
    project.env[ADDRESS_VARIABLE] = cluster.address
    return project


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The default project set to the Dask engine (and LightGBM, the learner it trains across workers), committed."""
    project = bake_project(tmp_path_factory.mktemp("dask-project"))
    for key, value in DASK_PARAMS.items():
        project.set_param(key, value)
    project.commit_all("Dask engine")
    return project


@pytest.fixture(scope="module")
def cluster(baked: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """Two workers of one thread and 2 GB each, in the baked project's environment (they import its package)."""
    with running_dask_cluster(baked.env, tmp_path_factory.mktemp("dask-cluster")) as started:
        yield started


@dataclass
class Reproduced:
    project: Project
    transitions: dict[str, int]  # the scheduler's transitions during each stage
    task_names: list[str]  # every task name the scheduler saw during the run


@pytest.fixture(scope="module")
def reproduced(baked: Project, cluster: DaskCluster, tmp_path_factory: pytest.TempPathFactory) -> Reproduced:
    """The Dask project run from scratch through the gate, stage by stage (to count each one's transitions)."""
    project = on(cluster, baked.copy(tmp_path_factory.mktemp("dask-reproduced")))
    transitions = {}
    for stage in STAGES:
        before = cluster.transitions()
        result = project.dvc("repro", stage)
        assert project.stages_run(result.stdout) == [stage], result.stdout
        transitions[stage] = cluster.transitions() - before
    project.commit_all("Run the pipeline on the cluster")
    return Reproduced(project, transitions, cluster.task_names())


def test_the_test_cluster_counts_the_work_it_runs_and_restarts_a_killed_worker(cluster):
    import dask.bag as db

    before = cluster.transitions()
    pids = cluster.worker_pids()
    assert sorted(pids) == ["worker-0", "worker-1"]
    with cluster.client():
        assert db.from_sequence(range(10), npartitions=5).map(abs).sum().compute() == 45
    assert cluster.transitions() > before
    cluster.kill_worker("worker-1")
    after = cluster.worker_pids()
    assert after["worker-0"] == pids["worker-0"] and after["worker-1"] != pids["worker-1"]


def test_every_dask_stage_runs_its_tasks_on_the_cluster_and_the_pipeline_passes_the_gate(reproduced):
    project = reproduced.project
    assert {stage: reproduced.transitions[stage] > 0 for stage in STAGES} == {
        stage: stage in ON_THE_CLUSTER for stage in STAGES
    }, reproduced.transitions
    verdict = json.loads((project.path / "metrics" / "gate.json").read_text())
    assert all(check["passed"] for check in verdict["checks"]), verdict
    for split in SPLITS:  # the processed splits keep the raw data's partitions
        parts = sorted(path.name for path in (project.path / split).iterdir())
        assert len(parts) >= 2 and parts == sorted(f"part.{n}.parquet" for n in range(len(parts))), parts


def test_the_local_engine_gives_the_same_verdicts_rows_and_metrics(reproduced, tmp_path):
    local = bake_project(tmp_path, task="binary")
    local.set_param("train.estimator", "lightgbm")  # the same learner on both engines
    local.dvc("repro")
    on_dask = reproduced.project

    def verdicts(project: Project, name: str) -> list[tuple]:
        checks = json.loads((project.path / "metrics" / name).read_text())["checks"]
        return sorted((check["name"], check["column"] or "", check["passed"]) for check in checks)

    assert verdicts(on_dask, "validation.json") == verdicts(local, "validation.json")
    assert verdicts(on_dask, "gate.json") == verdicts(local, "gate.json")
    for split in SPLITS:  # the same rows, in another order (the local engine writes them shuffled)
        assert rows(on_dask.path / split).equals(rows(local.path / split)), split
    dask_metrics, local_metrics = (
        json.loads((project.path / "metrics" / "evaluation.json").read_text()) for project in (on_dask, local)
    )
    for metric in HEADLINE:  # metrics files hold 6 decimals: 0.77 against 0.76 is within 0.01
        difference = round(abs(dask_metrics[metric] - local_metrics[metric]), 6)
        assert difference <= METRIC_TOLERANCE, (metric, dask_metrics[metric], local_metrics[metric])


def test_the_engine_is_an_input_of_the_stages_it_runs_and_the_clusters_address_and_size_are_not(reproduced, tmp_path):
    project = reproduced.project.copy(tmp_path)
    project.set_param("compute.scheduler", "tcp://10.0.0.5:8786")
    project.set_param("compute.local_workers", 8)
    project.set_param("compute.worker_memory", "16GB")
    assert "Data and pipelines are up to date." in project.dvc("status").stdout
    project.set_param("compute.engine", "local")
    status = project.dvc("status").stdout
    assert [line[:-1] for line in status.splitlines() if line.endswith(":") and not line[0].isspace()] == ON_THE_CLUSTER


def rows(path: Path) -> pd.DataFrame:
    """A split's rows in one order, whatever order and partitions it was written in; categories as text."""
    frame = pd.read_parquet(path)
    frame = frame.astype({name: "string" for name in frame.select_dtypes("category").columns})
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_two_forced_runs_from_scratch_give_the_same_dvc_lock_hashes(reproduced, cluster, tmp_path):
    again = on(cluster, reproduced.project.copy(tmp_path))
    again.dvc("repro", "--force")
    assert locked_hashes(again) == locked_hashes(reproduced.project)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_raw_data_is_refused_on_the_cluster_as_locally(reproduced, cluster, tmp_path, kind):
    assert_broken_raw_data_refused_clearly(on(cluster, reproduced.project.copy(tmp_path)), kind)


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS_ON_THE_CLUSTER))
def test_bad_params_and_contracts_stop_dvc_repro_on_the_cluster_as_locally(reproduced, cluster, tmp_path, kind):
    assert_bad_input_stops_dvc_repro_clearly(on(cluster, reproduced.project.copy(tmp_path)), kind)


@pytest.mark.parametrize("stage", sorted(KILL_POINTS))
def test_a_worker_killed_mid_stage_recovers_or_fails_clearly_and_a_rerun_gives_identical_outputs(
    reproduced, cluster, tmp_path, stage
):
    project = on(cluster, reproduced.project.copy(tmp_path))
    assert KILL_POINTS[stage] in reproduced.task_names  # the stage does run such tasks
    cluster.kill_worker_at(KILL_POINTS[stage])
    try:
        killed = run_with_deadline(project, "dvc", "repro", "--force", "--single-item", stage)
        assert cluster.fired(), "no worker started the task, so none was killed"
    finally:
        cluster.disarm()
        cluster.wait_for_workers()  # the nanny's new worker: the cluster has two again
    output = killed.stdout + killed.stderr
    if killed.returncode != 0:  # failed: with a message that names the problem, no traceback
        assert f"failed to run: credit-risk {stage}, exited with {USER_ERROR}" in output, output
        assert "Traceback" not in output
        project.dvc("repro", "--force", "--single-item", stage)
    assert locked_hashes(project) == locked_hashes(reproduced.project)


def run_with_deadline(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """A command in the project that must end within KILLED_STAGE_SECONDS; if it has not, it and the stage it
    started are killed and the test fails."""
    process = subprocess.Popen(
        args,
        cwd=project.path,
        env=project.env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=KILLED_STAGE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"`{' '.join(args)}` hung after a worker died:\n{stdout}\n{stderr}") from None
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def test_tasks_pinned_to_a_worker_that_dies_end_in_one_clear_error_not_a_wait_without_end(cluster):
    from credit_risk.compute import gathered_from  # the root instance: the baked project's code
    from credit_risk.core import PipelineError

    before = cluster.worker_pids()
    with cluster.client() as client:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        futures = [
            client.submit(time.sleep, 300, workers=[worker], allow_other_workers=False, pure=False)
            for worker in workers
        ]
        while len(client.processing()) < len(workers) or not all(client.processing().values()):
            time.sleep(0.1)
        cluster.kill_worker("worker-1")
        start = time.monotonic()
        with pytest.raises(PipelineError, match=r"^the Dask worker tcp://.* left the cluster while sleeping \("):
            gathered_from(client, futures, workers, "sleeping")
        assert time.monotonic() - start < 30
    cluster.wait_for_workers(dead_pid=before["worker-0"])  # restarted: its thread no longer sleeps
    assert set(cluster.worker_pids().values()).isdisjoint(before.values())


def test_an_unreachable_scheduler_is_one_clear_line(baked, tmp_path):
    project = baked.copy(tmp_path)
    project.env[ADDRESS_VARIABLE] = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    result = project.command("preprocess", check=False)
    assert result.returncode == USER_ERROR, result.stdout + result.stderr
    assert f"${ADDRESS_VARIABLE} is {project.env[ADDRESS_VARIABLE]}, but no Dask scheduler answered" in result.stderr
    assert "Traceback" not in result.stderr
