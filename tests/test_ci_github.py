"""The generated GitHub workflow, run here from its own file: a project baked with the default answers (no
DVC remote) and published after its README's first steps passes its test, pull-request and main jobs, its
first pull request gets a report against main, and main promotes the model it reproduces exactly and tells the
image job (which cannot run here) which version and commit to build.
"""

import subprocess

import pytest
from tools.ci_jobs import (
    CHANGED_PARAM,
    PR_BRANCH,
    checkout,
    github_context,
    job_environment,
    published,
    run_github_job,
    this_environments_own_package,
)

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out


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
