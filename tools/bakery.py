"""Bake the template for real and run the baked project's commands, isolated per test.

Every baked project shares this interpreter's installed dependencies (installed once, from the
lock); its own package is installed with `pip install --no-deps -e` into a private prefix, so its
console command is the real entry point declared in its pyproject.toml.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict, Unpack

import yaml

TEMPLATE = Path(__file__).resolve().parents[1]
ROOT_BUILD = TEMPLATE / "build" / "demo"
VENV_BIN = Path(sys.executable).parent
DEFAULT_SLUG = "credit-risk"
RAW_DATA = "data/raw/german_credit.csv"
NEW_ROWS = 500  # retrain.min_new_rows in the shipped params.yaml: just enough to fire the data trigger
GUARDED = ["data/processed", "models", "dvclive", "metrics", "plots", "reports", "production", "dvc.lock"]


def md5(path: Path) -> str:
    """The md5 of a file's bytes, as DVC records it."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def set_yaml_key(path: Path, dotted_key: str, value: object) -> None:
    """Set one key (e.g. "split.seed") of a YAML file, as a user editing it would."""
    data = yaml.safe_load(path.read_text())
    *parents, last = dotted_key.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@dataclass
class Project:
    path: Path
    env: dict[str, str]

    def run(
        self, *args: str, check: bool = True, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """Run a command in the project (with `env` added to its environment); fail with its output if it fails."""
        environment = {**self.env, **(env or {})}
        result = subprocess.run(args, cwd=cwd or self.path, env=environment, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(VENV_BIN / "dvc"), *args, check=check)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("git", *args, check=check)

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The project's own console command, e.g. `credit-risk gate`."""
        return self.run(self.slug, *args, check=check)

    @property
    def slug(self) -> str:
        return self.path.name

    def run_experiment_queue(self, tasks: int, jobs: int, timeout_seconds: float) -> str:
        """`dvc queue start -j <jobs>`, then poll `dvc queue status` until all `tasks` have ended.

        "Nothing queued or running" is not the end: a task taken off the queue by a worker that has
        not yet marked it running is listed in neither state, so the poll counts ended tasks instead.

        The workers are daemons that inherit the starting command's output, so it is not captured:
        a worker has been seen to stay alive after "shutting down due to empty queue", and a captured
        pipe would then never close. Each worker gets its share of the cores for OpenMP, as the
        project's README advises: oversubscribed, OpenMP's threads spin waiting for each other.
        """
        threads = max(1, (os.cpu_count() or 1) // jobs)
        subprocess.run(
            [str(VENV_BIN / "dvc"), "queue", "start", "-j", str(jobs)],
            cwd=self.path,
            env={**self.env, "OMP_NUM_THREADS": str(threads)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            status = self.dvc("queue", "status").stdout
            ended = [line for line in status.splitlines() if line.split()[-1:] in (["Success"], ["Failed"])]
            if len(ended) >= tasks:
                return status
            time.sleep(1)
        raise AssertionError(f"the experiment queue did not drain in {timeout_seconds} s:\n{status}")

    def stages_run(self, repro_output: str) -> list[str]:
        return [line.split("'")[1] for line in repro_output.splitlines() if line.startswith("Running stage '")]

    def set_param(self, dotted_key: str, value: object) -> None:
        """Change one key of the project's params.yaml, as a user editing it would."""
        set_yaml_key(self.path / "params.yaml", dotted_key, value)

    def guarded_state(self) -> dict[str, str]:
        """The md5 of every pipeline output, dvc.lock and the production record: what a failure must not change."""
        files = []
        for name in GUARDED:
            path = self.path / name
            files += [path] if path.is_file() else [child for child in path.rglob("*") if child.is_file()]
        return {str(path.relative_to(self.path)): md5(path) for path in files}

    def deleted_by_git(self) -> list[str]:
        """Tracked files missing from the work tree, as `git status` shows them."""
        return [line for line in self.git("status", "--porcelain").stdout.splitlines() if line.startswith(" D")]

    def commit_all(self, message: str) -> None:
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)

    def copy(self, destination: Path) -> "Project":
        """A separate working copy (git history and DVC cache included) for a test that changes things."""
        shutil.copytree(self.path, destination / self.slug, symlinks=True)
        return make_project(destination / self.slug, destination)


def write_new_rows(project: Path, name: str, seed: int, rows: int = NEW_ROWS) -> Path:
    """New labelled rows waiting under data/incoming/: a seeded sample of the shipped raw data."""
    import pandas as pd  # here: baking needs no pandas

    incoming = project / "data" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    pd.read_csv(project / RAW_DATA).sample(rows, random_state=seed).to_csv(incoming / name, index=False)
    return incoming / name


def tree_md5s(root: Path, skip: tuple[str, ...] = (".git",)) -> dict[str, str]:
    """Everything under `root`: each file's md5, each folder and link marked, by relative path.

    Paths equal to or under one of `skip` (relative, e.g. ".git") are left out.
    """
    root = Path(root)
    listing = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if any(name == skipped or name.startswith(f"{skipped}/") for skipped in skip):
            continue
        if path.is_symlink():
            listing[name] = f"link to {os.readlink(path)}"
        elif path.is_dir():
            listing[name] = "folder"
        else:
            listing[name] = md5(path)
    return listing


def isolated_env(scratch: Path) -> dict[str, str]:
    """No user config, no shared DVC site cache, no telemetry, a known git identity."""
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DVC_", "GIT_", "PYTHON"))}
    env.update(
        HOME=str(home),
        DVC_SITE_CACHE_DIR=str(scratch / "dvc-site-cache"),
        DVC_NO_ANALYTICS="1",
        DO_NOT_TRACK="1",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_COMMITTER_NAME="Test Author",
        GIT_COMMITTER_EMAIL="author@example.com",
        PATH=f"{VENV_BIN}{os.pathsep}{env['PATH']}",
    )
    return env


Task = Literal["binary", "multiclass", "regression"]


class Answers(TypedDict, total=False):
    """Answers to cookiecutter.json's prompts; a bake takes the default of each one left out."""

    task: Task
    project_name: str
    project_slug: str
    package_name: str
    description: str
    author_name: str
    author_email: str
    python_version: str
    license: str
    ci: str
    dvc_remote: str
    dvc_remote_endpoint_url: str
    init_git: str


def bake(
    output_dir: Path,
    env: dict[str, str] | None = None,
    template: Path = TEMPLATE,
    replay: Path | None = None,
    **answers: Unpack[Answers],
) -> subprocess.CompletedProcess[str]:
    """Run the real cookiecutter command line, without prompts, into `output_dir`.

    With `replay`, the answers are those of that replay file, as cookiecutter recorded them, unchecked
    by cookiecutter's prompts: only the template's own hooks stand between them and the files.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    scratch = output_dir.parent / f"{output_dir.name}-scratch"
    env = env or isolated_env(scratch)
    config = scratch / "cookiecutter.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"replay_dir: {scratch / 'replay'}\ncookiecutters_dir: {scratch / 'cookiecutters'}\n")
    extra = ["--replay-file", str(replay)] if replay else [f"{key}={value}" for key, value in answers.items()]
    return subprocess.run(
        [
            str(VENV_BIN / "cookiecutter"),
            *([] if replay else ["--no-input"]),
            "--config-file",
            str(config),
            "--output-dir",
            str(output_dir),
            str(template),
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
    )


def replay_file(output_dir: Path, template: Path = TEMPLATE) -> Path:
    """The answers cookiecutter recorded for the last bake into `output_dir`."""
    return output_dir.parent / f"{output_dir.name}-scratch" / "replay" / f"{template.name}.json"


def make_project(path: Path, scratch: Path) -> Project:
    """Install the baked package's console command into a private prefix and return the project."""
    env = isolated_env(scratch)
    prefix = scratch / "prefix"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            # never uninstall this environment's own copy (the root instance has the default name)
            "--ignore-installed",
            "--prefix",
            str(prefix),
            "-e",
            str(path),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(path / "src")
    return Project(path=path, env=env)


def bake_project(tmp_path: Path, *, template: Path = TEMPLATE, **answers: Unpack[Answers]) -> Project:
    """Bake with these answers (defaults for the rest) and make it runnable; fail if the bake fails."""
    output = tmp_path / "out"
    result = bake(output, template=template, **answers)
    assert result.returncode == 0, f"bake failed:\n{result.stdout}\n{result.stderr}"
    (path,) = [child for child in output.iterdir() if child.is_dir()]
    return make_project(path, tmp_path)
