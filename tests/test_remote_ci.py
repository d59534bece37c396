"""The generated CI's pull-request job with a DVC remote on S3 (moto's server on 127.0.0.1): it restores
what main already ran from the run-cache. Apart from tests/test_remote.py so that the two spread over
the test workers."""

import subprocess

import pytest
from tools.bakery import bake_project
from tools.ci_jobs import CHANGED_PARAM, PR_BRANCH, github_context, job_environment, run_github_job, run_gitlab_job
from tools.s3 import BUCKET, CREDENTIALS

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_the_pull_request_job_restores_from_the_run_cache_and_reruns_only_what_a_train_param_changes(s3, tmp_path, ci):
    """The generated CI job's own lines, on a pull request that changes one training parameter."""
    remote = {"dvc_remote": f"s3://{BUCKET}/store", "dvc_remote_endpoint_url": s3.url}
    project = bake_project(tmp_path / "origin", ci=ci, **remote)
    project.env.update(CREDENTIALS)
    project.dvc("repro")
    project.commit_all("First reproduced run")
    project.dvc("push", "--run-cache")  # the README's first steps with a remote
    project.git("switch", "--quiet", "-c", PR_BRANCH)
    project.set_param(CHANGED_PARAM, 5)
    project.commit_all("Fewer leaves, not reproduced locally: CI reproduces it")
    env = job_environment(tmp_path / "ci", project.env)
    checkout = tmp_path / "pr"
    subprocess.run(["git", "clone", "--quiet", "--branch", PR_BRANCH, str(project.path), str(checkout)], check=True)

    if ci == "github":
        run = run_github_job(checkout, "pull-request", github_context("pull_request", CREDENTIALS), env)
    else:
        variables = {"CI_PROJECT_DIR": str(checkout), "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
        run = run_gitlab_job(checkout, "merge-request", variables, env)

    assert project.stages_run((checkout / "repro.log").read_text()) == ["train", "evaluate", "gate"], run.output
    assert CHANGED_PARAM in (checkout / "report.md").read_text()
