"""The generated GitLab CI, run here from its own file: a project baked with the default answers (no DVC
remote) and published after its README's first steps passes its test, merge-request and default-branch
jobs, its first merge request gets the report as a note, and the default branch promotes and pushes. A
scheduled pipeline finds new rows, retrains on a branch and opens a merge request with the report.
"""

import subprocess

import pytest
from tools.ci_jobs import (
    CHANGED_PARAM,
    PR_BRANCH,
    checkout,
    job_environment,
    new_rows_on_main,
    published,
    run_gitlab_job,
    this_environments_own_package,
)
from tools.fake_gitlab import MERGE_REQUEST_IID, PROJECT_ID, FakeGitLab

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out


def test_gitlab_jobs_pass_without_a_remote_and_the_first_merge_request_gets_its_note(tmp_path):
    origin, project = published(tmp_path, ci="gitlab")
    own_package = this_environments_own_package()
    env = job_environment(tmp_path / "ci", project.env)
    gitlab = FakeGitLab(token="glpat-test")
    try:
        merge_request = checkout(origin, PR_BRANCH, tmp_path / "mr", env)
        variables = {
            "CI_PROJECT_DIR": str(merge_request),
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_SERVER_URL": gitlab.url,
            "CI_PROJECT_ID": PROJECT_ID,
            "CI_MERGE_REQUEST_IID": MERGE_REQUEST_IID,
            "CI_SERVER_HOST": "gitlab.example",
            "CI_PROJECT_PATH": "team/credit-risk",
            "GITLAB_TOKEN": "glpat-test",
        }
        for job in ("test", "merge-request"):
            run = run_gitlab_job(merge_request, job, variables, env)
            assert run.passed, run.output
        (note,) = gitlab.bodies()  # posted by the python-gitlab that the job installed from requirements-gitlab.lock
        assert note == (merge_request / "report.md").read_text() and CHANGED_PARAM in note
        assert [method for method, _, _ in gitlab.calls] == ["GET", "POST"]

        main = checkout(origin, "main", tmp_path / "main", env)
        branch = {"CI_PROJECT_DIR": str(main), "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}
        push_url = f"https://oauth2:{variables['GITLAB_TOKEN']}@gitlab.example/{variables['CI_PROJECT_PATH']}.git"
        subprocess.run(["git", "config", "--global", f"url.{origin}.insteadOf", push_url], env=env, check=True)
        run = run_gitlab_job(main, "default-branch", {**variables, **branch}, env)
        assert run.passed, run.output
        released = subprocess.run(["git", "ls-remote", "--tags", str(origin)], capture_output=True, text=True).stdout
        assert "refs/tags/credit-risk-model@v1.0.0" in released
        # what the container-image job (which cannot run here) takes: the version, beside the promoted files
        assert (main / "promotion.env").read_text() == "PROMOTED=true\nMODEL_VERSION=v1.0.0\n"
        assert this_environments_own_package() == own_package  # the jobs installed into their own environment
    finally:
        gitlab.stop()


def test_a_scheduled_pipeline_retrains_on_new_rows_and_opens_a_merge_request_with_the_report(tmp_path):
    origin, project = published(tmp_path, ci="gitlab")
    new_rows_on_main(project, seed=4)
    env = job_environment(tmp_path / "ci", project.env)
    gitlab = FakeGitLab(token="glpat-test")
    try:
        main = checkout(origin, "main", tmp_path / "main", env)
        variables = {
            "CI_PROJECT_DIR": str(main),
            "CI_BUILDS_DIR": str(tmp_path),
            "CI_PIPELINE_SOURCE": "schedule",
            "CI_COMMIT_BRANCH": "main",
            "CI_DEFAULT_BRANCH": "main",
            "CI_SERVER_URL": gitlab.url,
            "CI_PROJECT_ID": PROJECT_ID,
            "CI_SERVER_HOST": "gitlab.example",
            "CI_PROJECT_PATH": "team/credit-risk",
            "GITLAB_TOKEN": "glpat-test",
        }
        push_url = f"https://oauth2:{variables['GITLAB_TOKEN']}@gitlab.example/{variables['CI_PROJECT_PATH']}.git"
        subprocess.run(["git", "config", "--global", f"url.{origin}.insteadOf", push_url], env=env, check=True)
        run = run_gitlab_job(main, "retrain", variables, env)
        assert run.passed, run.output
        assert "SERVE_LOG_URL is not set" in run.output and "monitor is skipped" in run.output

        (request,) = gitlab.merge_requests
        assert request["title"] == "Retrain (data): gate passed" and request["labels"] == ["retraining"]
        assert request["target_branch"] == "main" and request["description"] == (main / "report.md").read_text()
        assert "Gate passed" in request["description"]
        branch = request["source_branch"]
        pushed = subprocess.run(["git", "ls-remote", str(origin), branch], capture_output=True, text=True).stdout
        assert pushed.strip().endswith(f"refs/heads/{branch}")

        again = run_gitlab_job(checkout(origin, "main", tmp_path / "again", env), "retrain", variables, env)
        assert again.passed and "A retraining merge request is open" in again.output  # no second one
        assert len(gitlab.merge_requests) == 1
    finally:
        gitlab.stop()
