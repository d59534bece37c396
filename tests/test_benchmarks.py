"""The scale benchmark works end to end at a tiny size. Its figures are read by people, never asserted."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from tools.bakery import TEMPLATE, isolated_env

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out


def run_benchmark(module: str, *args: str, scratch: Path) -> str:
    """`python -m <module> <args>` from the template's root, isolated; its printed output."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=TEMPLATE, env=isolated_env(scratch), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_scale_benchmark_runs_every_step_at_a_tiny_size(tmp_path):
    output = run_benchmark("benchmarks.scale", "--rows", "3000", "--runs", "1", "--repeat", "1", scratch=tmp_path)
    assert "## 3,000 rows (medians of 1 runs)" in output
    for stage in ("preprocess", "validate", "train", "evaluate", "gate"):
        assert re.search(rf"^{stage}\s+\d+\.\d\d s\s+\d+\.\d\d GB\s+\d+\.\d\d s$", output, re.MULTILINE), stage
    assert "after train.seed changed" in output and "stages run: train, evaluate, gate" in output
    assert "gate: passed, every run" in output
    for ratio in ("full dvc repro / bare script", "no-op dvc repro / dvc status", "train-param repro / full dvc repro"):
        assert re.search(rf"^{re.escape(ratio)}\s+\d+\.\d\d x", output, re.MULTILINE), ratio


def test_serve_benchmark_measures_both_services_and_batch_scoring_at_a_tiny_size(tmp_path):
    tiny = ["--requests", "20", "--seconds", "1", "--warmup", "5", "--batch-rows", "2000"]
    output = run_benchmark("benchmarks.serve", *tiny, scratch=tmp_path)
    assert "## Service: full vs bare, each measurement 20 requests or 1 s, after 5 warm-up requests" in output
    number = r"\d+(\.\d+)?"
    for heading in ("### 1 row per request", "### 100 rows per request"):
        table = output.split(heading, 1)[1].split("\n\n", 2)[1]
        for concurrency in (1, 16, 64):
            cells = rf"\| {number} \| {number} \| {number}x" + rf" \| {number}" * 6 + r" \| \d+ / \d+"
            cells += rf" \| {number} \| {number}x \| {number} \|"  # with a canary loaded
            assert re.search(rf"^\| {concurrency} {cells}$", table, re.MULTILINE), (heading, concurrency, table)
    goals = ("bare throughput | lowest", "prod alone's throughput | lowest", "at concurrency 16 <= 25 ms |")
    for goal in (*goals, "zero errors (full service, with and without a canary) |"):
        assert re.search(rf"{re.escape(goal)}.*\| (meets|MISSES) \|$", output, re.MULTILINE), goal
    assert "## Batch scoring: `predict` on 2,000 synthetic rows, 100,000 rows at a time" in output
    for name in ("CSV -> CSV", "Parquet -> Parquet"):
        assert re.search(rf"^\| {name} \| \d+\.\d\d \| \d+\.\d\d GB \| n/a at 2,000 rows \|$", output, re.MULTILINE)


def test_sample_benchmark_times_two_revisions_side_by_side(tmp_path):
    output = run_benchmark("benchmarks.sample", "--against", "HEAD", "--runs", "1", "--repeat", "1", scratch=tmp_path)
    number = r"\d+\.\d\d"
    assert re.search(rf"^full dvc repro --force \(median\)\s+{number} s\s+{number} s$", output, re.MULTILINE)
    for stage in ("preprocess", "validate", "train", "evaluate", "gate"):
        assert re.search(rf"^  {stage}\s+{number} s\s+{number} s$", output, re.MULTILINE), stage
        assert re.search(rf"^  {stage}\s+{number} s   \w+ {number}", output, re.MULTILINE), stage  # import profile
    assert re.search(rf"^full run, this / HEAD\s+{number} x$", output, re.MULTILINE)


def test_monitor_benchmark_times_monitor_over_a_written_log_at_a_tiny_size(tmp_path):
    output = run_benchmark("benchmarks.monitor", "--rows", "3000", scratch=tmp_path)
    heading = r"^## `monitor` over 3,000 logged predictions \(300 requests of 10, [\d,]+ labelled\)$"
    assert re.search(heading, output, re.MULTILINE), output
    assert re.search(r"^\| \d+\.\d\d \| \d+\.\d\d GB \| [01] \| \d+ \| n/a at 3,000 rows \|$", output, re.MULTILINE)
