"""Baking the template: the files each answer gives, the hooks, and the answers it refuses."""

import json
import os
import re
import subprocess
import tomllib
import typing
from pathlib import Path

import pytest
import yaml
from tools.bakery import TEMPLATE, VENV_BIN, Answers, bake, bake_project, isolated_env, replay_file

TEMPLATE_DIR = TEMPLATE / "{{cookiecutter.project_slug}}"
COOKIECUTTER = json.loads((TEMPLATE / "cookiecutter.json").read_text())
EXAMPLE_DATA = COOKIECUTTER["_example_data"]  # task -> its sample's file name under data/raw/
CI_FILES = {
    "github": [".github"],
    "gitlab": [".gitlab-ci.yml", "renovate.json", "requirements-gitlab.in", "requirements-gitlab.lock"],
}
MUST_HAVE = [
    "dvc.yaml",
    "params.yaml",
    "schema.yaml",
    "pyproject.toml",
    "requirements.lock",
    "requirements-dev.lock",
    "README.md",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
    "data/README.md",
    "data/raw/{raw}",
    "src/{package}/cli.py",
    "src/{package}/preprocess.py",
    "src/{package}/validate.py",
    "src/{package}/train.py",
    "src/{package}/evaluate.py",
    "src/{package}/gate.py",
    "tests/test_pipeline.py",
]


def files_under(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(root).parts[:1]
    }


def seeded_cache(raw: str) -> str:
    """Where `dvc add` would have put the sample in DVC's cache: its md5 as its .dvc file records it."""
    recorded = yaml.safe_load((TEMPLATE_DIR / "data" / "raw" / f"{raw}.dvc").read_text())["outs"][0]["md5"]
    return f".dvc/cache/files/md5/{recorded[:2]}/{recorded[2:]}"


def expected_files(package: str, ci: str, remote: bool, task: str = "binary") -> set[str]:
    """The template's files with their names rendered, less those the ci, task and remote answers exclude."""
    rendered = {name.replace("{{cookiecutter.package_name}}", package) for name in files_under(TEMPLATE_DIR)}
    excluded = [path for choice, paths in CI_FILES.items() if choice != ci for path in paths]
    excluded += [f"data/raw/{raw}{suffix}" for raw in EXAMPLE_DATA.values() for suffix in ("", ".dvc")]
    kept = {name for name in rendered if not any(name == ex or name.startswith(ex + "/") for ex in excluded)}
    raw = EXAMPLE_DATA[task]
    if remote:  # the sample is DVC's
        return kept | {f"data/raw/{raw}", f"data/raw/{raw}.dvc", ".cruft.json", seeded_cache(raw)}
    return (kept - {"data/raw/.gitignore"}) | {f"data/raw/{raw}", ".cruft.json"}


@pytest.mark.parametrize(
    ("answers", "slug", "package"),
    [
        ({}, "credit-risk", "credit_risk"),
        (
            {"project_name": "My Fancy PROJECT 2", "ci": "gitlab", "init_git": "no"},
            "my-fancy-project-2",
            "my_fancy_project_2",
        ),
        ({"project_name": "Churn", "ci": "none"}, "churn", "churn"),
        ({"project_name": "Fraud", "package_name": "fraud_model", "python_version": "3.12"}, "fraud", "fraud_model"),
        ({"project_name": "Shared", "dvc_remote": "s3://team-bucket/ml"}, "shared", "shared"),
        ({"task": "multiclass"}, "wine-cultivar", "wine_cultivar"),
        ({"task": "regression", "dvc_remote": "s3://team-bucket/ml"}, "diabetes-progression", "diabetes_progression"),
    ],
    ids=[
        "defaults",
        "spaces-capitals-gitlab-nogit",
        "ci-none",
        "package-override",
        "remote",
        "multiclass",
        "regression",
    ],
)
def test_bake_gives_exactly_the_expected_files(tmp_path: Path, answers: Answers, slug: str, package: str) -> None:
    result = bake(tmp_path / "out", **answers)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / slug
    ci, task = answers.get("ci", "github"), answers.get("task", "binary")
    actual = files_under(project)
    assert actual == expected_files(package, ci, remote=bool(answers.get("dvc_remote")), task=task)
    for name in MUST_HAVE:
        assert name.format(package=package, raw=EXAMPLE_DATA[task]) in actual
    assert (project / ".git").exists() == (answers.get("init_git", "yes") == "yes")


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_no_template_syntax_is_left_in_any_file(tmp_path, ci):
    result = bake(tmp_path / "out", project_name="Leftovers Check", ci=ci)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "leftovers-check"
    # CI expressions (GitHub's `${{ ... }}`) are meant to survive rendering
    jinja = re.compile(r"(?<!\$)\{\{|\{%|cookiecutter\.")
    leftovers = [
        str(path)
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.parts and jinja.search(path.read_text(errors="ignore"))
    ]
    assert leftovers == []
    ci_file = {"github": ".github/workflows/pipeline.yml", "gitlab": ".gitlab-ci.yml"}[ci]
    assert "leftovers-check report" in (project / ci_file).read_text()
    if ci == "github":
        assert "${{ github.ref }}" in (project / ci_file).read_text()
    assert "leftovers-check" in (project / "dvc.yaml").read_text()
    assert 'leftovers-check = "leftovers_check.cli:run"' in (project / "pyproject.toml").read_text()


def test_first_commit_holds_everything_and_works_without_a_git_identity(tmp_path):
    no_identity = {key: value for key, value in isolated_env(tmp_path).items() if not key.startswith("GIT_")}
    result = bake(tmp_path / "out", env=no_identity, author_name="Ada Lovelace", author_email="ada@example.com")
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "credit-risk"
    git = lambda *args: subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True).stdout  # noqa: E731
    assert git("status", "--porcelain") == ""
    assert git("branch", "--show-current").strip() == "main"
    assert git("log", "--format=%an <%ae>").strip() == "Ada Lovelace <ada@example.com>"
    tracked = set(git("ls-files").split())
    assert {"dvc.yaml", ".dvc/config", "data/raw/german_credit.csv"} <= tracked  # no remote: the sample is git's


@pytest.mark.parametrize("task", sorted(EXAMPLE_DATA))
def test_with_a_remote_the_sample_is_dvcs_and_its_seeded_cache_matches_the_commit(tmp_path, task):
    project = bake_project(tmp_path, task=task, dvc_remote="s3://team-bucket/ml")
    raw = f"data/raw/{EXAMPLE_DATA[task]}"
    tracked = set(project.git("ls-files").stdout.split())
    assert f"{raw}.dvc" in tracked and raw not in tracked
    assert not [
        name for name in tracked if name.startswith("data/raw/") and name not in (f"{raw}.dvc", "data/raw/.gitignore")
    ]
    status = json.loads(project.dvc("status", "--json").stdout)  # DVC's own hash of the file agrees with its .dvc
    assert f"{raw}.dvc" not in status
    assert project.dvc("data", "status", "--json").returncode == 0


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_slug": "Bad Slug"}, "project_slug 'Bad Slug' is not valid"),
        ({"project_slug": "evil/../x"}, "must not contain path separators"),
        ({"package_name": "1model"}, "package_name '1model' is not a valid Python package name"),
        ({"package_name": "json"}, "standard-library module"),
        # cookiecutter itself refuses a value outside a choice prompt's options, naming them
        ({"python_version": "2.7"}, "choices are ['3.11', '3.12']"),
        ({"ci": "jenkins"}, "choices are ['github', 'gitlab', 'none']"),
        ({"license": "GPL"}, "choices are ['MIT', 'Apache-2.0', 'BSD-3-Clause', 'proprietary']"),
        ({"task": "ranking"}, "choices are ['binary', 'multiclass', 'regression']"),
        ({"dvc_remote": "http://bucket"}, "dvc_remote 'http://bucket' is not an S3 URL"),
        (
            {"dvc_remote": "s3://ok-bucket", "dvc_remote_endpoint_url": "http://key:secret@host"},
            "dvc_remote_endpoint_url",
        ),
        ({"description": 'say "hi"'}, "description must be one line without double quotes"),
    ],
)
def test_bad_answers_are_refused_with_a_message_and_leave_nothing(tmp_path, answers, message):
    output = tmp_path / "out"
    result = bake(output, **answers)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    if "choices are" not in message:
        assert "Traceback" not in result.stderr
    left = [str(path.relative_to(output)) for path in output.rglob("*") if path.is_file()]
    assert left == []


def test_a_wrong_task_in_recorded_answers_is_refused_by_the_hook_in_one_line(tmp_path):
    """A replayed or hand-edited answer file skips cookiecutter's choice check: the pre-generation hook refuses."""
    assert bake(tmp_path / "first", init_git="no").returncode == 0
    recorded = json.loads(replay_file(tmp_path / "first").read_text())
    recorded["cookiecutter"]["task"] = "ranking"
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(recorded))
    result = bake(tmp_path / "out", replay=answers)
    assert result.returncode != 0
    assert "error: task 'ranking' is not one of binary, multiclass, regression\n" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_typed_answers_are_cookiecutter_jsons_prompts():
    """tools.bakery.Answers types every prompt of cookiecutter.json, and the task's type lists its choices."""
    prompts = {key for key in COOKIECUTTER if not key.startswith("_")}
    typed = typing.get_type_hints(Answers)
    assert set(typed) == prompts
    assert list(typing.get_args(typed["task"])) == COOKIECUTTER["task"] == list(EXAMPLE_DATA)


@pytest.mark.parametrize(
    ("license_answer", "heading", "expression"),
    [
        ("MIT", "MIT License", "MIT"),
        ("Apache-2.0", "Apache License", "Apache-2.0"),
        ("BSD-3-Clause", "BSD 3-Clause License", "BSD-3-Clause"),
        ("proprietary", "All rights reserved.", "LicenseRef-Proprietary"),
    ],
)
def test_the_license_answer_writes_the_licence_and_the_package_metadata(tmp_path, license_answer, heading, expression):
    result = bake(tmp_path / "out", license=license_answer, author_name="Ada Lovelace", init_git="no")
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "credit-risk"
    licence = (project / "LICENSE").read_text()
    assert heading in licence[:300]
    assert "{%" not in licence and "{{" not in licence
    if license_answer != "Apache-2.0":  # Apache's text carries no copyright line: the project's NOTICE would
        assert "Ada Lovelace" in licence
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert (metadata["license"], metadata["license-files"]) == (expression, ["LICENSE"])


def test_generated_project_passes_its_own_tests_and_lint(tmp_path):
    project = bake_project(tmp_path, project_name="Loan Default")
    tests = project.run(str(VENV_BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    project.run(str(VENV_BIN / "ruff"), "check", "--no-cache", ".")
    project.run(str(VENV_BIN / "ruff"), "format", "--check", "--no-cache", ".")
    types = project.run(str(VENV_BIN / "mypy"), "--cache-dir", str(tmp_path / "mypy-cache"))
    assert types.stdout.startswith("Success: no issues found"), types.stdout


def test_the_generated_makefile_lists_its_commands_by_default_and_runs_the_project_tools(tmp_path):
    result = bake(tmp_path / "out", init_git="no")
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "credit-risk"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}  # not make's child
    make = ["make", "--no-print-directory"]
    listed = subprocess.run(make, cwd=project, env=env, capture_output=True, text=True, check=True).stdout
    assert [line.split()[1] for line in listed.splitlines()] == ["help", "setup", "test", "lint", "repro", "lock"]
    planned = subprocess.run(
        [*make, "--dry-run", "test", "lint", "repro", "lock"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for command in (
        "-m venv .venv",
        "pip install --quiet --no-deps -r requirements-dev.lock",
        "python -m pytest",
        "ruff check .",
        "ruff format --check .",
        "mypy",
        "dvc repro",
        "uv pip compile",
    ):
        assert command in planned


def test_the_first_commit_passes_the_shipped_pre_commit_hooks_and_a_bad_edit_does_not(tmp_path):
    project = bake_project(tmp_path)
    hooks = project.run(str(VENV_BIN / "pre-commit"), "run", "--all-files", check=False)
    assert hooks.returncode == 0, hooks.stdout + hooks.stderr
    for hook in ("ruff check", "ruff format", "mypy", "DVC pre-commit"):
        assert re.search(rf"{re.escape(hook)}.*Passed", hooks.stdout), hooks.stdout
    module = next((project.path / "src").glob("*/gate.py"))
    module.write_text(module.read_text() + "\nunused  =  1\n")
    assert project.run(str(VENV_BIN / "pre-commit"), "run", "--all-files", check=False).returncode != 0


def pins(lock: Path) -> dict[str, str]:
    """name -> version of each package a uv-compiled lock pins, after checking every pin carries hashes."""
    pinned = "\n".join(line for line in lock.read_text().splitlines() if not line.startswith("#"))
    entries = re.split(r"\n(?=[a-z0-9])", pinned.strip())
    assert all("--hash=sha256:" in entry for entry in entries), "a pin without hashes"
    pins = [re.match(r"([a-z0-9._-]+)==([^ ;\\]+)", entry) for entry in entries]
    assert all(pins), "a line that pins nothing"
    return {pin.group(1): pin.group(2) for pin in pins if pin}


def test_locks_pin_every_platform_with_hashes_and_keep_dev_tools_out_of_the_runtime_lock():
    runtime = pins(TEMPLATE_DIR / "requirements.lock")
    dev = pins(TEMPLATE_DIR / "requirements-dev.lock")
    assert {"dvc", "scikit-learn", "evidently", "pandas", "pydantic"} <= set(runtime)
    assert not {"pytest", "ruff", "mypy", "fairlearn", "pre-commit"} & set(runtime)
    assert {"pytest", "ruff", "mypy", "pandas-stubs", "fairlearn", "pre-commit"} <= set(dev)
    assert {name: dev[name] for name in runtime} == runtime  # one resolution: the dev lock extends the runtime one
    assert "sys_platform == 'win32'" in (TEMPLATE_DIR / "requirements.lock").read_text()  # universal, not Linux only
    declared = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())  # the root instance: the default rendering
    ranges = [*declared["project"]["dependencies"], *declared["project"]["optional-dependencies"]["dev"]]
    assert not [spec for spec in ranges if "==" in spec], "pyproject holds ranges; the locks hold exact versions"


def test_the_gitlab_job_alone_installs_python_gitlab_from_its_own_hash_checked_lock_that_renovate_refreshes(tmp_path):
    runtime, gitlab = pins(TEMPLATE_DIR / "requirements.lock"), pins(TEMPLATE_DIR / "requirements-gitlab.lock")
    assert "python-gitlab" in gitlab and "python-gitlab" not in runtime  # not a dependency of the project
    assert {name: runtime[name] for name in gitlab if name in runtime} == {
        name: version for name, version in gitlab.items() if name in runtime
    }  # resolved within the runtime lock: installing it changes nothing the job already has
    # the template's own tests of `gitlab-note` run the version the job installs
    assert pins(TEMPLATE / "requirements-template.lock")["python-gitlab"] == gitlab["python-gitlab"]

    result = bake(tmp_path / "out", ci="gitlab", init_git="no")
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "credit-risk"
    ci_file = (project / ".gitlab-ci.yml").read_text()
    script = yaml.safe_load(ci_file)["merge-request"]["script"]
    install = script.index("pip install --no-deps --require-hashes -r requirements-gitlab.lock")
    assert install < next(number for number, line in enumerate(script) if " gitlab-note " in line)
    assert ci_file.count("requirements-gitlab.lock") == 1  # in that job only
    recorded = "uv pip compile --universal --generate-hashes --no-annotate -c requirements.lock"
    assert (
        f"#    {recorded} -o requirements-gitlab.lock requirements-gitlab.in\n"
        in (project / "requirements-gitlab.lock").read_text()
    )  # the command Renovate re-runs, on files the project has
    patterns = json.loads((project / "renovate.json").read_text())["pip-compile"]["managerFilePatterns"]
    for lock in ("requirements.lock", "requirements-dev.lock", "requirements-gitlab.lock"):
        assert any(re.search(pattern.strip("/"), lock) for pattern in patterns), lock
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    planned = subprocess.run(
        ["make", "--no-print-directory", "--dry-run", "lock"], cwd=project, env=env, capture_output=True, text=True
    ).stdout
    assert "-c requirements.lock -o requirements-gitlab.lock requirements-gitlab.in" in planned


@pytest.mark.parametrize(
    ("ci", "bot_file", "schema"),
    [("github", ".github/dependabot.yml", "vendor.dependabot"), ("gitlab", "renovate.json", "vendor.renovate")],
)
def test_generated_ci_tests_the_code_before_the_pipeline_and_a_bot_keeps_the_pins_fresh(tmp_path, ci, bot_file, schema):
    result = bake(tmp_path / "out", ci=ci, init_git="no")
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "credit-risk"
    check = [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", schema, bot_file]
    subprocess.run(check, cwd=project, check=True, capture_output=True)
    if ci == "github":
        jobs = yaml.safe_load((project / ".github/workflows/pipeline.yml").read_text())["jobs"]
        runs = [step.get("run", "") for step in jobs["test"]["steps"]]
        assert jobs["pull-request"]["needs"] == jobs["main"]["needs"] == "test"
        assert jobs["test"]["permissions"] == {"contents": "read"}
    else:
        config = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
        runs = config["test"]["script"]
        assert config["stages"] == ["test", "pipeline", "image"] and config["test"]["stage"] == "test"
        assert config["merge-request"]["stage"] == config["default-branch"]["stage"] == "pipeline"
    for command in ("ruff check .", "ruff format --check .", "mypy", "pytest"):
        assert any(command in run for run in runs), command
