"""The generated GitHub workflows, run here from their own files: a project baked with the default answers (no
DVC remote) and published after its README's first steps passes its test, pull-request and main jobs, its
first pull request gets a report against main, and main promotes the model it reproduces exactly and tells the
image job (which cannot run here) which version and commit to build. On a schedule, the release workflow
finds new rows, retrains on a branch and opens a pull request with the report.
"""

import subprocess

import pytest
from tools.bakery import NEW_ROWS, RAW_DATA
from tools.ci_jobs import (
    CHANGED_PARAM,
    PR_BRANCH,
    checkout,
    github_context,
    job_environment,
    new_rows_on_main,
    published,
    run_github_job,
    this_environments_own_package,
)

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

RELEASE = "release.yml"


def test_github_jobs_pass_without_a_remote_and_the_first_pull_request_gets_its_report(tmp_path):
    origin, project = published(tmp_path, ci="github")
    own_package = this_environments_own_package()
    env = job_environment(tmp_path / "ci", project.env)

    pull_request = checkout(origin, PR_BRANCH, tmp_path / "pr", env)
    for job in ("test", "pull-request"):
        run = run_github_job(pull_request, job, github_context("pull_request"), env)
        assert run.passed, run.output
    assert not run_github_job(pull_request, "main", github_context("pull_request"), env).outcomes  # skipped

    calls = (tmp_path / "ci" / "gh-calls").read_text().splitlines()
    assert calls == ["pr comment 7 --edit-last --create-if-none --body-file report.md"]
    posted = (tmp_path / "ci" / "gh-calls.body").read_text()
    assert posted == (pull_request / "report.md").read_text()
    assert "Gate passed" in posted and CHANGED_PARAM in posted and "Not reproduced" not in posted
    assert "has no metrics yet" not in posted  # main already holds the first reproduced run

    main = checkout(origin, "main", tmp_path / "main", env)  # the merge: main's job runs what the PR's ran
    run = run_github_job(main, "main", github_context("push"), env)
    assert run.passed, run.output
    released = subprocess.run(["git", "ls-remote", "--tags", str(origin)], capture_output=True, text=True).stdout
    assert "refs/tags/credit-risk-model@v1.0.0" in released  # reproduced exactly, so promoted and pushed
    promotion = subprocess.run(["git", "rev-parse", "main"], cwd=origin, capture_output=True, text=True).stdout.strip()
    assert run.outputs == {"promoted": "true", "version": "v1.0.0", "commit": promotion}  # what the image job takes
    assert this_environments_own_package() == own_package  # the jobs installed into their own environment


def test_the_scheduled_release_check_fires_on_new_rows_and_retrain_opens_a_pull_request_with_the_report(tmp_path):
    origin, project = published(tmp_path, ci="github")
    new_rows_on_main(project, seed=3)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    env = {**job_environment(tmp_path / "ci", project.env), "RUNNER_TEMP": str(runner_temp)}
    context = {
        **github_context("schedule"),
        "inputs.action": "",
        "runner.temp": str(runner_temp),
        "github.event.repository.default_branch": "main",
        "secrets.SERVE_LOG_URL": "",
        "secrets.PGPASSWORD": "",
    }
    jobs = tmp_path / "jobs"  # the jobs' clones side by side: artifacts pass between them

    check = run_github_job(checkout(origin, "main", jobs / "check", env), "check", context, env, RELEASE)
    assert check.passed, check.output
    assert "SERVE_LOG_URL is not set" in check.output and "monitor is skipped" in check.output
    assert check.outputs == {"fired": "data"}

    context["needs.check.outputs.fired"] = check.outputs["fired"]
    clone = checkout(origin, "main", jobs / "retrain", env)
    retrain = run_github_job(clone, "retrain", context, env, RELEASE)
    assert retrain.passed, retrain.output
    assert not run_github_job(clone, "canary-decide", context, env, RELEASE).outcomes  # by hand only

    branch = retrain.step_outputs["retrain"]["branch"]
    calls = (tmp_path / "ci" / "gh-calls").read_text().splitlines()
    assert calls[0].startswith("pr list --state open")
    assert calls[1] == f"pr create --base main --head {branch} --title Retrain (data): gate passed --body-file " + str(
        runner_temp / "body.md"
    )
    body = (tmp_path / "ci" / "gh-calls.body").read_text()
    assert f"- **data**: {NEW_ROWS} new labelled rows in 1 CSV file" in body and "Gate passed" in body
    pushed = subprocess.run(["git", "ls-remote", str(origin), branch], capture_output=True, text=True).stdout
    assert pushed.strip().endswith(f"refs/heads/{branch}")
    committed = subprocess.run(
        ["git", "-C", str(clone), "show", "--stat", "--format=%s", branch], capture_output=True, text=True
    ).stdout
    assert "Retrain (data): gate passed" in committed and RAW_DATA in committed
    assert "data/incoming/week-48.csv" in committed  # folded: gone from git, kept in the ignored folded/
    assert "retrain.log" not in committed and "triggers" not in committed  # the job's scratch stays out of git
