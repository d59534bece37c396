"""Template updates reach baked projects: a plain cookiecutter bake records its source for cruft."""

import json
import shutil
import subprocess
from pathlib import Path

from tools.bakery import TEMPLATE, VENV_BIN, bake, isolated_env

SAMPLE = "{{cookiecutter.project_slug}}/data/raw/german_credit.csv"  # the generated .gitignore hides it


def commit_all(repo: Path, message: str, env: dict[str, str]) -> str:
    for args in (["add", "--all"], ["add", "--force", SAMPLE], ["commit", "--quiet", "-m", message]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return head.stdout.strip()


def template_repository(path: Path, env: dict[str, str]) -> str:
    """A git repository holding this template as it is now; returns its commit."""
    for name in ("cookiecutter.json", "hooks", "{{cookiecutter.project_slug}}"):
        source = TEMPLATE / name
        copy = shutil.copytree if source.is_dir() else shutil.copyfile
        copy(source, path / name)
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], cwd=path, env=env, check=True)
    return commit_all(path, "Template", env)


def replace_line(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_cruft_update_brings_a_template_change_and_keeps_the_projects_own_edits(tmp_path):
    env = isolated_env(tmp_path / "scratch")
    template = tmp_path / "template"
    template.mkdir()
    first = template_repository(template, env)
    assert bake(tmp_path / "out", env=env, template=template).returncode == 0
    project = tmp_path / "out" / "credit-risk"
    record = json.loads((project / ".cruft.json").read_text())
    assert (record["template"], record["commit"]) == (str(template), first)
    assert record["context"]["cookiecutter"]["project_name"] == "Credit Risk"

    def cruft(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "cruft"), *args], cwd=project, env=env, capture_output=True, text=True)

    assert cruft("check").returncode == 0
    replace_line(template / "{{cookiecutter.project_slug}}" / "params.yaml", "psi_bins: 10 ", "psi_bins: 12 ")
    second = commit_all(template, "More PSI bins", env)
    replace_line(project / "params.yaml", "test_size: 0.2 ", "test_size: 0.25")  # the project's own edit
    subprocess.run(["git", "commit", "--quiet", "--all", "-m", "A larger test split"], cwd=project, env=env, check=True)

    assert cruft("check").returncode != 0
    updated = cruft("update", "--skip-apply-ask", "--allow-untracked-files")

    assert updated.returncode == 0, updated.stdout + updated.stderr
    params = (project / "params.yaml").read_text()
    assert "psi_bins: 12 " in params and "test_size: 0.25" in params
    assert json.loads((project / ".cruft.json").read_text())["commit"] == second
