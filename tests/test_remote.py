"""A DVC remote on S3: moto's S3 server on 127.0.0.1, started and stopped by these tests."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from tools.bakery import Project, bake, bake_project, make_project, md5, tree_md5s
from tools.s3 import BUCKET, CREDENTIALS, S3Server, started_s3

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

# Left out when comparing a workspace: git's own folder, and DVC's scratch folder, where every command
# rewrites .dvc/tmp/lock (the repository lock, naming the process that holds it).
NOT_DATA = (".git", ".dvc/tmp")
OUTPUTS = ["data/processed/train.parquet", "data/processed/test.parquet", "models/model.joblib"]


@pytest.fixture(scope="module")
def shared_s3():
    server = started_s3()
    yield server
    server.stop()


def push_a_baked_project(path: Path, s3: S3Server) -> Project:
    """A baked project with the S3 remote: pipeline run, committed, everything pushed with the run-cache."""
    project = bake_project(path, dvc_remote=f"s3://{BUCKET}/store", dvc_remote_endpoint_url=s3.url)
    project.env.update(CREDENTIALS)
    project.dvc("repro")
    project.commit_all("Run the pipeline")
    project.dvc("push", "--run-cache")
    return project


@pytest.fixture
def pushed(tmp_path, s3):
    """A pushed project of the test's own, to change and push again."""
    return push_a_baked_project(tmp_path / "origin", s3)


@pytest.fixture(scope="module")
def pushed_once(tmp_path_factory, shared_s3):
    """A pushed project for the tests that only clone it or read its status. Read-only."""
    return push_a_baked_project(tmp_path_factory.mktemp("origin"), shared_s3)


def clone(project, destination):
    destination.mkdir(parents=True)
    project.git("clone", "--quiet", str(project.path), str(destination / project.slug))
    copy = make_project(destination / project.slug, destination)
    copy.env.update(CREDENTIALS)
    return copy


def test_fresh_clone_pulls_every_output_byte_for_byte_and_reproduces_nothing(pushed_once, tmp_path):
    pushed = pushed_once
    fresh = clone(pushed, tmp_path / "clone")
    assert not (fresh.path / "models" / "model.joblib").exists()
    fresh.dvc("pull")
    for output in [*OUTPUTS, "data/raw/german_credit.csv"]:
        assert md5(fresh.path / output) == md5(pushed.path / output), output
    assert fresh.stages_run(fresh.dvc("repro").stdout) == []


def test_in_a_fresh_clone_a_train_param_reruns_train_evaluate_gate_only(pushed_once, tmp_path):
    fresh = clone(pushed_once, tmp_path / "clone")
    fresh.dvc("pull", "--run-cache")
    fresh.set_param("train.hist_gradient_boosting.max_leaf_nodes", 10)
    assert fresh.stages_run(fresh.dvc("repro").stdout) == ["train", "evaluate", "gate"]


def test_a_training_run_pushed_from_elsewhere_is_restored_from_the_run_cache_not_recomputed(pushed, tmp_path):
    pushed.set_param("train.hist_gradient_boosting.max_leaf_nodes", 10)
    pushed.dvc("repro")  # a teammate's experiment, never committed, its run pushed to the run-cache
    pushed.dvc("push", "--run-cache")
    fresh = clone(pushed, tmp_path / "clone")
    fresh.dvc("pull", "--run-cache")
    fresh.set_param("train.hist_gradient_boosting.max_leaf_nodes", 10)
    result = fresh.dvc("repro", "--pull")  # --pull fetches the outputs of runs it restores
    assert "Stage 'train' is cached - skipping run, checking out outputs" in result.stdout, result.stdout
    assert fresh.stages_run(result.stdout) == ["evaluate", "gate"]  # their metrics live in git, not the cache
    assert md5(fresh.path / "models" / "model.joblib") == md5(pushed.path / "models" / "model.joblib")


def test_remote_outage_fails_clearly_damages_nothing_and_a_retry_succeeds(pushed, s3, tmp_path):
    fresh = clone(pushed, tmp_path / "clone")
    fresh.dvc("pull")
    pushed.set_param("train.hist_gradient_boosting.max_leaf_nodes", 10)
    pushed.dvc("repro")
    pushed.commit_all("A new model")
    before = {output: md5(pushed.path / output) for output in OUTPUTS}

    s3.stop()
    push = pushed.dvc("push", check=False)
    assert_failed_clearly(push)
    assert {output: md5(pushed.path / output) for output in OUTPUTS} == before
    s3.start()
    pushed.dvc("push")
    assert in_sync_with_remote(pushed)

    fresh.git("pull", "--quiet")  # the new dvc.lock; its outputs are only on the remote
    clone_before = tree_md5s(fresh.path, skip=NOT_DATA)
    assert any(name.startswith(".dvc/cache/files/md5/") for name in clone_before)
    s3.stop()
    assert_failed_clearly(fresh.dvc("pull", check=False))
    assert tree_md5s(fresh.path, skip=NOT_DATA) == clone_before  # the workspace and .dvc/cache, file by file
    s3.start()
    fresh.dvc("pull")
    assert in_sync_with_remote(fresh)
    assert json.loads(fresh.dvc("status", "--json").stdout) == {}  # every output as dvc.lock records it
    assert {output: md5(fresh.path / output) for output in OUTPUTS} == before


def assert_failed_clearly(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0
    assert re.search(r"failed to (push|pull|fetch)|Could not connect|Connect timeout", result.stderr + result.stdout)
    assert "Traceback" not in result.stderr


def in_sync_with_remote(project: Project) -> bool:
    """`dvc status --cloud --json`: empty, or every entry "in sync" (nothing new, missing or deleted)."""
    status = json.loads(project.dvc("status", "--cloud", "--json").stdout)
    return all(state == "in sync" for state in status.values())


CREDENTIAL_PATTERNS = [
    r"AKIA[0-9A-Z]{16}",
    r"(?i)secret_access_key\s*[=:]\s*(?!\$\{\{ secrets\.)\S",
    r"(?i)password\s*[=:]\s*(?!\$\{\{ (secrets\.|github\.token))\S",  # a GitHub expression names a secret
    r"://[^/\s:@]+:[^/\s@]+@",
]


def test_no_generated_file_holds_credentials(tmp_path):
    output = tmp_path / "out"
    result = bake(
        output, dvc_remote="s3://team-bucket/ml", dvc_remote_endpoint_url="https://minio.example.com", ci="github"
    )
    assert result.returncode == 0, result.stderr
    project = output / "credit-risk"
    config = (project / ".dvc" / "config").read_text()
    assert "url = s3://team-bucket/ml" in config and "endpointurl = https://minio.example.com" in config
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts and path.suffix not in {".csv", ".lock"}:
            text = path.read_text(errors="ignore")
            for pattern in CREDENTIAL_PATTERNS:
                assert not re.search(pattern, text), f"{path.relative_to(project)} matches {pattern}"
    workflow = (project / ".github" / "workflows" / "pipeline.yml").read_text()
    assert "secrets.AWS_SECRET_ACCESS_KEY" in workflow


def test_status_of_the_pushed_project_against_the_remote_is_clean(pushed_once):
    assert json.loads(pushed_once.dvc("status", "--cloud", "--json").stdout) == {}
