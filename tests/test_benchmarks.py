"""The scale benchmark works end to end at a tiny size. Its figures are read by people, never asserted."""

import re
import subprocess
import sys

import pytest
from tools.bakery import TEMPLATE, isolated_env

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out


def test_scale_benchmark_runs_every_step_at_a_tiny_size(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--rows", "3000", "--runs", "1", "--repeat", "1"],
        cwd=TEMPLATE,
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "## 3,000 rows (medians of 1 runs)" in output
    for stage in ("preprocess", "validate", "train", "evaluate", "gate"):
        assert re.search(rf"^{stage}\s+\d+\.\d\d s\s+\d+\.\d\d GB\s+\d+\.\d\d s$", output, re.MULTILINE), stage
    assert "after train.seed changed" in output and "stages run: train, evaluate, gate" in output
    assert "gate: passed, every run" in output
    for ratio in ("full dvc repro / bare script", "no-op dvc repro / dvc status", "train-param repro / full dvc repro"):
        assert re.search(rf"^{re.escape(ratio)}\s+\d+\.\d\d x", output, re.MULTILINE), ratio
