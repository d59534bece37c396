"""Run a generated project's CI jobs here, from its own workflow files: every `run:` / `script:` line, in order.

What cannot run on this machine is stood in for, and only that: a hosted action's effect (`checkout` is
the fresh clone the job runs in, `setup-python` this interpreter, `upload-artifact` a check that the
paths exist), `gh` (a stub that records its arguments and the body it would post), and GitLab's API
(the caller passes the URL of a fake). Each job gets its own virtual environment, which sees this
environment's packages, so its `pip install` lines run for real without downloading anything. A step's
`$GITHUB_OUTPUT` is a file read back after it, so conditions and the job's `outputs:` see what it wrote.
The jobs that build and push the container image cannot run here (no Docker daemon, no registry).
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Unpack

import yaml

from tools.bakery import Answers, Project, bake_project, write_new_rows

SIMULATED_ACTIONS = {"actions/checkout", "actions/setup-python", "actions/upload-artifact", "actions/download-artifact"}
GH_STUB = """#!/bin/sh
# records the call, and the body of `--body-file`, as the GitHub CLI would post it; `pr list`: no pull requests
printf '%s\\n' "$*" >> "$GH_CALLS"
if [ "$1 $2" = "pr list" ]; then echo 0; fi
previous=""
for argument in "$@"; do
  if [ "$previous" = "--body-file" ]; then cat "$argument" > "$GH_CALLS.body"; fi
  previous="$argument"
done
"""


@dataclass
class JobRun:
    passed: bool
    log: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # what each step wrote to $GITHUB_OUTPUT
    outputs: dict[str, str] = field(default_factory=dict)  # the job's `outputs:`, as the jobs that need it see them

    @property
    def output(self) -> str:
        return "\n".join(self.log)


def job_environment(scratch: Path, base_env: dict[str, str]) -> dict[str, str]:
    """A fresh virtual environment that sees this one's packages, a `gh` stub, both first on PATH."""
    venv = scratch / "ci-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # its own pip: installs stay in it
    # ensurepip may bring an older setuptools than the lock pins: let the lock's come from this environment
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"], check=True
    )
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (venv / "lib" / version / "site-packages" / "this-environment.pth").write_text(sysconfig.get_paths()["purelib"])
    stubs = scratch / "stubs"
    stubs.mkdir()
    (stubs / "gh").write_text(GH_STUB)
    (stubs / "gh").chmod(0o755)
    path = os.pathsep.join([str(stubs), str(venv / "bin"), str(Path(sys.executable).parent), base_env["PATH"]])
    return {
        **base_env,
        "PATH": path,
        "VIRTUAL_ENV": str(venv),
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads 0 as "no isolation": build with this environment's setuptools
        "PIP_NO_INDEX": "1",  # every package is already here: nothing may be downloaded
        "GH_CALLS": str(scratch / "gh-calls"),
    }


def substitute(text: str, context: dict[str, str]) -> str:
    """GitHub's `${{ expression }}` replaced by its value; an expression the test does not know is an error."""

    def value(match: re.Match) -> str:
        expression = match.group(1).strip()
        if expression not in context:
            raise KeyError(f"the workflow uses ${{{{ {expression} }}}}, which this runner does not know")
        return context[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def condition_holds(condition: str | None, context: dict[str, str], outcomes: dict[str, str]) -> bool:
    """`a == b` and `a != b` conditions, joined by `||` or `&&` (without parentheses), the only kinds the
    generated workflows use; anything else is an error."""
    if condition is None:
        return True
    return any(
        all(_comparison_holds(part, context, outcomes) for part in alternative.split("&&"))
        for alternative in condition.split("||")
    )


def _comparison_holds(condition: str, context: dict[str, str], outcomes: dict[str, str]) -> bool:
    parsed = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", condition)
    if parsed is None:
        raise ValueError(f"unsupported condition: {condition!r}")
    left, operator, right = parsed.groups()
    values = [_operand(side, context, outcomes) for side in (left, right)]
    return (values[0] == values[1]) == (operator == "==")


def _operand(text: str, context: dict[str, str], outcomes: dict[str, str]) -> str:
    if text.startswith("'"):
        return text.strip("'")
    step = re.fullmatch(r"steps\.([\w-]+)\.outcome", text)
    if step:
        return outcomes[step.group(1)]
    if re.fullmatch(r"steps\.[\w-]+\.outputs\.[\w-]+", text):
        return context.get(text, "")  # an output no step wrote is empty, as on GitHub
    return context[text]


def step_output_context(step_outputs: dict[str, dict[str, str]]) -> dict[str, str]:
    """`steps.<id>.outputs.<name>` for every output a step wrote, as an expression context."""
    return {
        f"steps.{step}.outputs.{name}": value
        for step, written in step_outputs.items()
        for name, value in written.items()
    }


def read_github_output(path: Path) -> dict[str, str]:
    """The `name=value` lines a step appended to $GITHUB_OUTPUT (the only form the generated workflow writes)."""
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def run_github_job(
    project: Path, job_name: str, context: dict[str, str], env: dict[str, str], workflow_file: str = "pipeline.yml"
) -> JobRun:
    """The job's steps as GitHub would run them, in `project` (a fresh clone). Artifacts pass between the
    jobs of clones made in the same folder."""
    workflow = yaml.safe_load((project / ".github" / "workflows" / workflow_file).read_text())
    job = workflow["jobs"][job_name]
    run = JobRun(passed=condition_holds(job.get("if"), context, {}))
    if not run.passed:
        run.log.append(f"job {job_name} skipped by its condition")
        return run
    declared = {**workflow.get("env", {}), **job.get("env", {})}
    variables = {key: substitute(str(value), context) for key, value in declared.items()}
    summary = project.parent / f"{job_name}-step-summary.md"
    for number, step in enumerate(job["steps"]):
        step_context = {**context, **step_output_context(run.step_outputs)}
        if not condition_holds(step.get("if"), step_context, run.outcomes):
            continue
        if "uses" in step:
            _simulate_action(project, step, run, context)
            continue
        step_env = {key: substitute(str(value), step_context) for key, value in step.get("env", {}).items()}
        shell = (
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
            if step.get("shell") == "bash"
            else [
                "bash",
                "-e",
                "-c",
            ]
        )
        output_file = project.parent / f"{job_name}-step-{number}-output"
        result = subprocess.run(
            [*shell, substitute(step["run"], step_context)],
            cwd=project,
            env={
                **env,
                **variables,
                **step_env,
                "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_OUTPUT": str(output_file),
            },
            capture_output=True,
            text=True,
        )
        run.log.append(f"$ {step.get('name', step['run'])}\n{result.stdout}{result.stderr}")
        outcome = "success" if result.returncode == 0 else "failure"
        run.outcomes[step.get("id", step.get("name", ""))] = outcome
        if "id" in step:
            run.step_outputs[step["id"]] = read_github_output(output_file)
        if outcome == "failure" and not step.get("continue-on-error"):
            run.passed = False
            return run
    run.outputs = job_outputs(job, run)
    return run


def job_outputs(job: dict, run: JobRun) -> dict[str, str]:
    """The job's `outputs:`, its `steps.<id>.outputs.<name>` resolved; one no step wrote is empty, as on GitHub."""
    written = step_output_context(run.step_outputs)
    return {
        name: re.sub(
            r"\$\{\{\s*(steps\.[\w-]+\.outputs\.[\w-]+)\s*\}\}", lambda m: written.get(m.group(1), ""), str(value)
        )
        for name, value in job.get("outputs", {}).items()
    }


def _simulate_action(project: Path, step: dict, run: JobRun, context: dict[str, str]) -> None:
    """Checkout and setup-python have happened; artifacts are copied to and from `<clones' folder>/artifacts`."""
    action = step["uses"].split("@")[0]
    if action not in SIMULATED_ACTIONS:
        raise KeyError(f"the workflow uses {action}, which this runner cannot stand in for")
    store = project.parent / "artifacts" / step.get("with", {}).get("name", "")
    if action == "actions/upload-artifact":
        paths = step["with"]["path"].split()
        missing = [path for path in paths if not (project / path).exists()]
        if step["with"].get("if-no-files-found") != "ignore":
            assert not missing, f"the artifact's paths are missing: {missing}"
        for path in set(paths) - set(missing):
            _copy(project / path, store / path)
    if action == "actions/download-artifact":
        _copy(store, Path(substitute(step["with"]["path"], context)))
    run.log.append(f"[{action}: simulated]")


def _copy(source: Path, destination: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, destination, dirs_exist_ok=True)
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)


def run_gitlab_job(project: Path, job_name: str, variables: dict[str, str], env: dict[str, str]) -> JobRun:
    """The job's before_script and script as one shell session, as GitLab's runner does."""
    config = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    job = config[job_name]
    lines = [*job.get("before_script", config["default"]["before_script"]), *job["script"]]
    expand = lambda value: re.sub(r"\$\{?(\w+)\}?", lambda name: variables.get(name.group(1), name.group(0)), value)  # noqa: E731
    declared = {key: expand(str(value)) for key, value in config.get("variables", {}).items()}
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(lines)],
        cwd=project,
        env={**env, **declared, **variables},
        capture_output=True,
        text=True,
    )
    return JobRun(passed=result.returncode == 0, log=[result.stdout + result.stderr])


PR_BRANCH = "fewer-leaves"
CHANGED_PARAM = "train.hist_gradient_boosting.max_leaf_nodes"


def published(tmp_path: Path, **answers: Unpack[Answers]) -> tuple[Path, Project]:
    """Baked, then the README's quick start: the first run committed and pushed, then a pull request's branch."""
    project = bake_project(tmp_path / "bake", **answers)
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(origin)], check=True)
    project.dvc("repro")
    project.commit_all("First reproduced run")
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "--quiet", "-u", "origin", "main")
    project.git("switch", "--quiet", "-c", PR_BRANCH)
    project.dvc("exp", "run", "-S", f"{CHANGED_PARAM}=5")
    project.commit_all("Fewer leaves")
    project.git("push", "--quiet", "-u", "origin", PR_BRANCH)
    return origin, project


def new_rows_on_main(project: Project, seed: int) -> None:
    """New labelled rows under data/incoming/, committed on main and pushed, as a scheduled pipeline finds them."""
    project.git("switch", "--quiet", "main")
    write_new_rows(project.path, "week-48.csv", seed=seed)
    project.commit_all("New labelled rows")
    project.git("push", "--quiet", "origin", "main")


def checkout(origin: Path, branch: str, destination: Path, env: dict[str, str]) -> Path:
    """What CI checks out: a fresh, full-history clone of one branch."""
    subprocess.run(["git", "clone", "--quiet", "--branch", branch, str(origin), str(destination)], env=env, check=True)
    return destination


def this_environments_own_package() -> str:
    """Where this environment imports the root instance's package from: a job must never reinstall it."""
    found = subprocess.run(
        [sys.executable, "-c", "import credit_risk; print(credit_risk.__file__)"], capture_output=True
    )
    return found.stdout.decode().strip()


def github_context(event: str, secrets: dict[str, str] | None = None) -> dict[str, str]:
    """The values of the `${{ }}` expressions the generated workflow uses, for one event."""
    secrets = secrets or {}
    return {
        "github.event_name": event,
        "github.ref": f"refs/heads/{PR_BRANCH}" if event == "pull_request" else "refs/heads/main",
        "github.base_ref": "main",
        "github.token": "ghs_test",
        "github.repository": "team/credit-risk",
        "github.event.pull_request.number": "7",
        "github.event.pull_request.head.repo.full_name": "team/credit-risk",
        "secrets.AWS_ACCESS_KEY_ID": secrets.get("AWS_ACCESS_KEY_ID", ""),
        "secrets.AWS_SECRET_ACCESS_KEY": secrets.get("AWS_SECRET_ACCESS_KEY", ""),
    }
