"""The model service's container image: its Dockerfile linted, its build context, its build and start run
here from the Dockerfile's own lines (there is no Docker daemon: tools/dockerfile.py stands in for it), and
the CI jobs that build and push it after a promotion wired to the promoted version.
"""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Unpack

import pytest
import yaml
from tools.bakery import VENV_BIN, Answers, bake
from tools.ci_jobs import condition_holds, run_gitlab_job
from tools.dockerfile import Builder, build_context, parse, parse_duration
from tools.service import free_port

SERVING_FILES = {
    "requirements.lock",
    "params.yaml",
    "schema.yaml",
    "dvc.lock",
    "production/baseline.json",
    "models/model.joblib",
}
FULL_SHA_PIN = re.compile(r"uses: [\w./-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+$")


def baked(tmp_path: Path, **answers: Unpack[Answers]) -> Path:
    without_git: Answers = {**answers, "init_git": "no"}
    result = bake(tmp_path / "out", **without_git)
    assert result.returncode == 0, result.stderr
    (project,) = (tmp_path / "out").iterdir()
    return project


@pytest.mark.parametrize("python_version", ["3.11", "3.12"])
def test_the_dockerfile_pins_its_python_and_is_hadolint_clean(tmp_path, python_version):
    project = baked(tmp_path, python_version=python_version)
    stages = parse((project / "Dockerfile").read_text())
    assert re.fullmatch(rf"python:{re.escape(python_version)}\.\d+-slim-bookworm", stages[0].base)
    assert [stage.base for stage in stages[1:]] == [stages[0].name] * 2  # build and runtime on the one pin
    lint = subprocess.run([str(VENV_BIN / "hadolint"), "Dockerfile"], cwd=project, capture_output=True, text=True)
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, "", "")


@pytest.mark.slow  # runs DVC
def test_the_build_context_holds_only_what_the_image_needs(reproduced_copy, tmp_path):
    project = reproduced_copy.path
    for stray in ("monitoring/predictions.sqlite", ".venv/bin/python", "src/credit_risk/__pycache__/cli.cpython.pyc"):
        (project / stray).parent.mkdir(parents=True, exist_ok=True)
        (project / stray).write_text("not for the image")
    context = build_context(project, tmp_path / "context")
    code = {path for path in context if path.startswith("src/credit_risk/") and path.endswith(".py")}
    assert code and set(context) == SERVING_FILES | code  # no data, .git, .dvc, tests, venv or prediction log


@pytest.mark.slow  # runs DVC
def test_the_image_built_from_a_promoted_project_passes_its_own_healthcheck(reproduced_copy, tmp_path):
    reproduced_copy.command("promote")  # CI builds the image after a promotion, from its commit
    timings = {}
    started = time.monotonic()
    context = tmp_path / "context"
    build_context(reproduced_copy.path, context)
    builder = Builder(reproduced_copy.path / "Dockerfile", context, tmp_path / "image")
    assert builder.base_image().startswith(f"python:{sys.version_info.major}.{sys.version_info.minor}."), (
        "the test's Python must be the minor version the image pins"
    )
    image = builder.build()
    timings["build stage (venv and pip install from the lock)"] = time.monotonic() - started
    assert image.healthcheck and image.exposed == ["8000"]

    port = free_port()
    log = tmp_path / "service.log"
    started = time.monotonic()
    with log.open("w") as output:
        service = subprocess.Popen(
            image.with_port(image.command, "127.0.0.1", port),
            cwd=image.workdir,
            env=image.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        check = image.with_port(image.healthcheck, "127.0.0.1", port)
        timeout = parse_duration(image.healthcheck_options["timeout"])
        deadline = started + parse_duration(image.healthcheck_options["start-period"])  # Docker's grace period
        while True:
            health = subprocess.run(check, cwd=image.workdir, env=image.env, capture_output=True, timeout=timeout)
            if health.returncode == 0:
                break
            assert time.monotonic() < deadline, f"not healthy within the start period\n{log.read_text()}"
            try:
                service.wait(timeout=0.5)  # the wait between checks, cut short if the service exits
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"the service exited {service.returncode} before it was healthy\n{log.read_text()}")
        timings["start until healthy"] = time.monotonic() - started
    finally:
        service.send_signal(signal.SIGTERM)  # what `docker stop` sends, then SIGKILL after 10 s
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
            raise AssertionError(f"the service ignored SIGTERM for 10 s\n{log.read_text()}") from None
    print(", ".join(f"{phase}: {seconds:.1f} s" for phase, seconds in timings.items()))


def test_github_builds_and_pushes_the_image_only_after_a_promotion_tagged_with_its_version(tmp_path):
    project = baked(tmp_path, ci="github")
    text = (project / ".github/workflows/pipeline.yml").read_text()
    jobs = yaml.safe_load(text)["jobs"]
    main, image = jobs["main"], jobs["image"]
    promote = next(step for step in main["steps"] if step.get("id") == "promote")
    assert main["outputs"] == {
        name: f"${{{{ steps.promote.outputs.{name} }}}}" for name in ("promoted", "version", "commit")
    }
    assert image["needs"] == "main"
    assert image["permissions"] == {"contents": "read", "packages": "write"}
    for promoted, runs in (("true", True), ("false", False), ("", False)):
        assert condition_holds(image["if"], {"needs.main.outputs.promoted": promoted}, {}) == runs
    assert 'print(json.load(open("production/baseline.json"))["version"])' in promote["run"]

    steps = {step.get("uses", "").split("@")[0] or step.get("id"): step for step in image["steps"]}
    assert steps["actions/checkout"]["with"]["ref"] == "${{ needs.main.outputs.commit }}"
    upload = next(step for step in main["steps"] if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert (
        upload["if"] == "steps.promote.outputs.promoted == 'true'" and upload["with"]["path"] == "models/model.joblib"
    )
    assert steps["actions/download-artifact"]["with"] == {"name": upload["with"]["name"], "path": "models"}
    push = steps["docker/build-push-action"]["with"]
    assert (push["context"], push["push"], push["tags"]) == (".", True, "${{ steps.image.outputs.tag }}")
    assert steps["docker/login-action"]["with"]["registry"] == "ghcr.io"

    output = tmp_path / "github-output"  # the naming step's own line, with the version main would give
    name = steps["image"]
    subprocess.run(
        ["bash", "-e", "-c", name["run"]],
        env={"GITHUB_REPOSITORY": "Team/Credit-Risk", "GITHUB_OUTPUT": str(output), "VERSION": "v1.2.0"},
        check=True,
    )
    assert name["env"] == {"VERSION": "${{ needs.main.outputs.version }}"}
    assert output.read_text() == "tag=ghcr.io/team/credit-risk:v1.2.0\n"
    pins = [line.strip().removeprefix("- ") for line in text.splitlines() if "uses:" in line]
    assert len(pins) > 6 and all(FULL_SHA_PIN.fullmatch(line) for line in pins), pins
    bot = yaml.safe_load((project / ".github/dependabot.yml").read_text())
    assert "docker" in {update["package-ecosystem"] for update in bot["updates"]}


def test_gitlab_builds_and_pushes_the_image_only_after_a_promotion_tagged_with_its_version(tmp_path):
    project = baked(tmp_path, ci="gitlab")
    config = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    job, promotion = config["container-image"], config["default-branch"]
    assert config["stages"].index(job["stage"]) > config["stages"].index(promotion["stage"])
    assert job["needs"] == ["default-branch"] and job["rules"] == promotion["rules"]  # the default branch only
    assert promotion["artifacts"]["reports"]["dotenv"] == "promotion.env"
    assert set(promotion["artifacts"]["paths"]) == {"models/model.joblib", "production/baseline.json", "dvc.lock"}
    assert "MODEL_VERSION=" in "\n".join(promotion["script"])
    assert re.fullmatch(r"moby/buildkit:v\d+\.\d+\.\d+-rootless", job["image"]["name"])
    assert "services" not in job and "privileged" not in str(job)  # no Docker-in-Docker
    assert 'name="$CI_REGISTRY_IMAGE:$MODEL_VERSION",push=true' in job["script"][-1]

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for promoted in ("false", ""):  # nothing promoted: the job ends there, successfully, without building
        run = run_gitlab_job(project, "container-image", {"PROMOTED": promoted}, env)
        assert run.passed and "no image to build" in run.output, run.output
