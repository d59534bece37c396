"""The generated release loop's CI: GitHub's scheduled `release.yml` and GitLab's scheduled-pipeline jobs are
valid, lint clean, least privileged and pinned, and run monitor (skipped without a shared log), then
retrain-check, then retrain and a pull or merge request, with canary-decide by hand."""

import re

import pytest
import yaml
from tools.bakery import VENV_BIN, bake_project

RELEASE = ".github/workflows/release.yml"
PIPELINE = ".github/workflows/pipeline.yml"


def pinned_actions(text: str) -> set[str]:
    return set(re.findall(r"uses: (\S+@\S+)", text))


@pytest.fixture(scope="module")
def github(tmp_path_factory):
    return bake_project(tmp_path_factory.mktemp("github"), ci="github", init_git="no")


@pytest.fixture(scope="module")
def gitlab(tmp_path_factory):
    return bake_project(tmp_path_factory.mktemp("gitlab"), ci="gitlab", init_git="no")


def test_the_release_workflow_is_valid_lint_clean_and_pinned_like_the_pipeline(github):
    github.run(str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", RELEASE)
    github.run(str(VENV_BIN / "zizmor"), "--offline", "--min-severity", "low", RELEASE)
    text = (github.path / RELEASE).read_text()
    actions = pinned_actions(text)
    assert actions and all(re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", action) for action in actions)
    assert actions <= pinned_actions((github.path / PIPELINE).read_text())  # the same SHAs as pipeline.yml
    assert "pull_request_target" not in text
    assert not re.search(r"(gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|glpat-)", text)  # no credentials


def test_the_release_workflow_runs_on_a_schedule_or_by_hand_with_least_privilege(github):
    workflow = yaml.safe_load((github.path / RELEASE).read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"} and triggers["schedule"][0]["cron"]
    assert triggers["workflow_dispatch"]["inputs"]["action"]["options"] == ["check", "canary-decide"]
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert {name: job["permissions"] for name, job in jobs.items()} == {
        "check": {"contents": "read"},
        "retrain": {"contents": "write", "pull-requests": "write"},
        "canary-decide": {"contents": "write"},
    }
    assert jobs["retrain"]["needs"] == "check" and "needs.check.outputs.fired" in jobs["retrain"]["if"]
    assert jobs["canary-decide"]["if"] == "github.event_name == 'workflow_dispatch' && inputs.action == 'canary-decide'"


def test_the_release_workflow_skips_monitor_without_a_log_then_checks_retrains_and_opens_a_pull_request(github):
    jobs = yaml.safe_load((github.path / RELEASE).read_text())["jobs"]
    check = "\n".join(step.get("run", "") for step in jobs["check"]["steps"])
    assert 'if [ -z "$SERVE_LOG_URL" ]' in check and "monitor is skipped" in check
    assert check.index("credit-risk monitor") < check.index("credit-risk retrain-check")
    retrain = "\n".join(step.get("run", "") for step in jobs["retrain"]["steps"])
    assert retrain.index("credit-risk retrain ") < retrain.index('credit-risk report --base "origin/$BASE"')
    assert "gh pr create" in retrain and '--body-file "$RUNNER_TEMP/body.md"' in retrain
    assert jobs["retrain"]["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert "credit-risk canary-decide --apply" in jobs["canary-decide"]["steps"][-1]["run"]
    assert not any(step.get("with", {}).get("persist-credentials") for step in jobs["check"]["steps"])


def test_gitlab_schedules_run_the_release_loop_and_nothing_of_the_default_branch_pipeline(gitlab):
    gitlab.run(str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", ".gitlab-ci.yml")
    config = yaml.safe_load((gitlab.path / ".gitlab-ci.yml").read_text())
    schedule = '$CI_PIPELINE_SOURCE == "schedule"'
    assert {"if": schedule} in config["workflow"]["rules"]
    assert config["retrain"]["rules"] == [{"if": schedule}]
    for job in ("default-branch", "container-image"):
        assert config[job]["rules"][0] == {"if": schedule, "when": "never"}
    script = "\n".join(config["retrain"]["script"])
    assert 'if [ -z "$SERVE_LOG_URL" ]' in script
    order = ["credit-risk monitor", "credit-risk retrain-check", "credit-risk retrain ", "description@report.md"]
    assert [script.index(step) for step in order] == sorted(script.index(step) for step in order)
    decide = config["canary-decide"]
    assert all(rule["when"] == "manual" for rule in decide["rules"])
    assert "credit-risk canary-decide --apply" in decide["script"]
    assert "glpat-" not in (gitlab.path / ".gitlab-ci.yml").read_text()
