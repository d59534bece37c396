"""The five stages through DVC on the sample data, in a throw-away copy of this project."""

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parents[1]
COPIED = ["dvc.yaml", "params.yaml", "schema.yaml", ".dvcignore", "data", "production", "src"]


@pytest.fixture
def pipeline_copy(tmp_path: Path) -> Path:
    """This project's pipeline, code and sample data in a fresh git + DVC repository."""
    for name in COPIED:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("processed", "__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    for command in (
        ["git", "init", "--quiet"],
        ["dvc", "init", "--quiet"],
        ["dvc", "config", "core.analytics", "false"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "commit", "--quiet", "-m", "Copy"],
    ):
        subprocess.run(command, cwd=tmp_path, check=True)
    return tmp_path


def test_dvc_repro_runs_the_five_stages_and_the_gate_passes(pipeline_copy):
    result = subprocess.run(["dvc", "repro"], cwd=pipeline_copy, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for stage in ("preprocess", "validate", "train", "evaluate", "gate"):
        assert f"Running stage '{stage}'" in result.stdout
    verdict = json.loads((pipeline_copy / "metrics" / "gate.json").read_text())
    assert verdict["passed"] is True
    test_rows = len(pd.read_parquet(pipeline_copy / "data" / "processed" / "test.parquet"))
    assert json.loads((pipeline_copy / "metrics" / "evaluation.json").read_text())["rows"] == test_rows > 0
