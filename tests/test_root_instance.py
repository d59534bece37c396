"""The repository root is the template's default rendering: fail when the two drift apart."""

import json
import re
import subprocess

import yaml
from tools.bakery import VENV_BIN, isolated_env
from tools.render_root import ROOT, drift, render_default


def test_root_instance_matches_a_fresh_rendering(tmp_path):
    project = render_default(tmp_path / "out")
    assert drift(project) == [], "the root has drifted from the template: run `make render` and commit"


def test_root_lock_records_every_stage():
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert set(lock["stages"]) == set(dvc_yaml["stages"])


def test_root_pipeline_is_up_to_date_after_setup(tmp_path):
    """`make setup` reproduces the root instance; afterwards DVC finds nothing to re-run."""
    status = subprocess.run(
        [str(VENV_BIN / "dvc"), "status", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=isolated_env(tmp_path),
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == {}, "run `make setup` (it runs `dvc repro` at the root)"


def test_template_sample_data_is_tracked_by_git():
    """The generated project's data/raw/.gitignore must not hide the template's own copy of the sample."""
    tracked = subprocess.run(
        ["git", "ls-files", "{{cookiecutter.project_slug}}/data/raw"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "{{cookiecutter.project_slug}}/data/raw/german_credit.csv" in tracked


def test_the_report_runs_on_the_root_instance_against_its_own_history(tmp_path):
    """This repository's own pull requests get the generated project's report: the same command, here."""
    env = isolated_env(tmp_path)
    command = [str(VENV_BIN / "credit-risk"), "report", "--base", "HEAD"]
    markdown = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    as_json = subprocess.run([*command, "--format", "json"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert markdown.returncode == as_json.returncode == 0, markdown.stderr + as_json.stderr
    assert markdown.stdout.count("xychart-beta") == 3 and "| Gated check |" in markdown.stdout
    gate = json.loads((ROOT / "metrics" / "gate.json").read_text())
    assert json.loads(as_json.stdout)["verdict"]["checks_total"] == len(gate["checks"]) > 0


def test_every_test_the_readme_names_as_proof_exists():
    """The Reliability table's claims point at tests by name (a trailing `...` abbreviates one)."""
    readme = (ROOT / "README.md").read_text()
    named = re.findall(r"`((?:project )?tests/test_\w+\.py)(?:::(test_\w+))?`", readme)
    named += [
        (file, name)
        for file, names in re.findall(r"`(tests/test_\w+\.py)` \(([^)]*)\)", readme)
        for name in re.findall(r"`(test_\w+)(?:\.\.\.)?`", names)
    ]
    assert len(named) > 20
    for file, name in named:
        path = (
            ROOT / "{{cookiecutter.project_slug}}" / file.removeprefix("project ")
            if file.startswith("project ")
            else ROOT / file
        )
        assert path.is_file(), file
        if name:
            assert re.search(rf"^def {name}", path.read_text(), re.MULTILINE), f"{file}::{name}"
