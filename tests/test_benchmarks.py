"""The benchmarks work end to end at a tiny size (their figures are read by people, never asserted), and
their synthetic data keeps the shape of each task's example."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from benchmarks.scale import TARGETS, TASKS, Engine, extrapolated_local_need
from benchmarks.synthetic import JITTERED_MIN_DISTINCT, decimal_places, example, synthesize
from tools.bakery import TEMPLATE, isolated_env

from credit_risk.schema import rule_holds

slow = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out


def run_benchmark(module: str, *args: str, scratch: Path) -> str:
    """`python -m <module> <args>` from the template's root, isolated; its printed output."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=TEMPLATE, env=isolated_env(scratch), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@slow
def test_scale_benchmark_runs_every_step_of_every_task_at_a_tiny_size(tmp_path):
    args = ["--rows", "3000", "--runs", "1", "--repeat", "1", "--task", *TASKS]
    output = run_benchmark("benchmarks.scale", *args, scratch=tmp_path)
    sections = {section.split("\n", 1)[0]: section for section in output.split("## ")[1:]}
    for task in TASKS:
        section = sections[f"{task}, 3,000 rows (medians of 1 runs)"]
        for stage in ("preprocess", "validate", "train", "evaluate", "gate"):
            assert re.search(rf"^{stage}\s+\d+\.\d\d s\s+\d+\.\d\d GB\s+\d+\.\d\d s$", section, re.MULTILINE), stage
        assert "after train.seed changed" in section and "stages run: train, evaluate, gate" in section
        for ratio in TARGETS:
            assert re.search(rf"^{re.escape(ratio)}\s+\d+\.\d\d x", section, re.MULTILINE), ratio
    assert "gate: passed, every run" in sections["binary, 3,000 rows (medians of 1 runs)"]
    comparison = sections["Tasks at 3,000 rows: full dvc repro against binary's"]
    for task in TASKS:
        assert re.search(rf"^{task}\s+\d+\.\d\d s\s+\d+\.\d\d x   (meets|MISSES) target 1.5 x$", comparison, re.M)


@slow
def test_scale_benchmark_runs_the_dask_engine_on_a_cluster_of_two_workers_at_a_tiny_size(tmp_path):
    args = ["--rows", "3000", "--runs", "1", "--repeat", "1", "--engine", "dask", "--worker-memory", "1GB"]
    output = run_benchmark("benchmarks.scale", *args, "--partition-size", "100KB", scratch=tmp_path)
    section = output.split("## binary, 3,000 rows, dask engine (2 workers x 1GB) (medians of 1 runs)\n", 1)[1]
    assert re.search(r"^stage\s+dvc repro\s+peak RSS\s+bare\s+worker-0\s+worker-1$", section, re.MULTILINE)
    gigabytes = r"\d+\.\d\d GB"
    for stage in ("preprocess", "validate", "train", "evaluate", "gate"):
        line = rf"^{stage}\s+\d+\.\d\d s\s+{gigabytes}\s+\d+\.\d\d s\s+{gigabytes}\s+{gigabytes}$"
        assert re.search(line, section, re.MULTILINE), stage
    for worker in ("worker-0", "worker-1"):
        assert re.search(rf"^peak RSS of {worker}\s+{gigabytes}   limit 1GB$", section, re.MULTILINE), worker
    assert "gate: passed, every run" in section and "stages run: train, evaluate, gate" in section


def test_the_local_engines_need_is_extrapolated_to_sizes_only_the_dask_engine_ran():
    local, dask = Engine(), Engine("dask")
    figures = [
        {"task": "binary", "rows": 1_000_000, "engine": local, "peak_rss_bytes": 2 * 2**30},
        {"task": "binary", "rows": 10_000_000, "engine": local, "peak_rss_bytes": 5 * 2**30},
        {"task": "binary", "rows": 10_000_000, "engine": dask, "peak_rss_bytes": 1 * 2**30},
        {"task": "binary", "rows": 50_000_000, "engine": dask, "peak_rss_bytes": 1 * 2**30},
        {"task": "regression", "rows": 50_000_000, "engine": dask, "peak_rss_bytes": 1 * 2**30},
    ]
    # 2 GB at 1M and 5 GB at 10M rows: 1 GB per 3M rows more, so 5 + 40/3 GB at 50M; nothing where local ran,
    # nothing for a task local never ran
    assert extrapolated_local_need(figures) == [
        "local engine's peak RSS extrapolated to binary, 50,000,000 rows: 18.33 GB (from its 1,000,000, "
        "10,000,000-row runs)",
        "",
    ]
    assert extrapolated_local_need(figures[1:]) == [  # one local size: in proportion to the rows
        "local engine's peak RSS extrapolated to binary, 50,000,000 rows: 25.00 GB (from its 10,000,000-row runs)",
        "",
    ]


@slow
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


@slow
def test_sample_benchmark_times_two_revisions_side_by_side(tmp_path):
    output = run_benchmark("benchmarks.sample", "--against", "HEAD", "--runs", "1", "--repeat", "1", scratch=tmp_path)
    number = r"\d+\.\d\d"
    assert re.search(rf"^full dvc repro --force \(median\)\s+{number} s\s+{number} s$", output, re.MULTILINE)
    for stage in ("preprocess", "validate", "train", "evaluate", "gate"):
        assert re.search(rf"^  {stage}\s+{number} s\s+{number} s$", output, re.MULTILINE), stage
        assert re.search(rf"^  {stage}\s+{number} s   \w+ {number}", output, re.MULTILINE), stage  # import profile
    assert re.search(rf"^full run, this / HEAD\s+{number} x$", output, re.MULTILINE)


@slow
def test_monitor_benchmark_times_monitor_over_a_written_log_at_a_tiny_size(tmp_path):
    output = run_benchmark("benchmarks.monitor", "--rows", "3000", scratch=tmp_path)
    heading = r"^## `monitor` over 3,000 logged predictions \(300 requests of 10, [\d,]+ labelled\)$"
    assert re.search(heading, output, re.MULTILINE), output
    assert re.search(r"^\| \d+\.\d\d \| \d+\.\d\d GB \| [01] \| \d+ \| n/a at 3,000 rows \|$", output, re.MULTILINE)


# ---------------------------------------------------------------- synthetic data, per task (no DVC: fast)


@pytest.mark.parametrize("task", TASKS)
def test_synthetic_rows_keep_the_examples_columns_types_categories_and_ranges(task):
    sample = example(task)
    frame = synthesize(sample, 5_000, seed=3)
    assert frame.shape == (5_000, sample.shape[1]) and list(frame.columns) == list(sample.columns)
    assert frame.dtypes.to_dict() == sample.dtypes.to_dict()
    for name in sample.columns:
        kept, given = frame[name].dropna(), sample[name].dropna()
        if not pd.api.types.is_numeric_dtype(given):
            assert set(kept) <= set(given), name  # categories and class labels: only the sample's own
            continue
        assert given.min() <= kept.min() and kept.max() <= given.max(), name
        assert decimal_places(kept) == decimal_places(given), name  # as fine as the sample records, no finer
        if given.nunique() >= JITTERED_MIN_DISTINCT:
            assert not set(kept) <= set(given), name  # noise: not mere copies of the sample's values
        else:
            assert set(kept) <= set(given), name  # codes (sex 1/2, job) keep their values


def test_the_multiclass_rows_are_shaped_like_wine_and_the_regression_rows_like_diabetes():
    wine = synthesize(example("multiclass"), 2_000, seed=1)
    features = wine.drop(columns=["cultivar"])
    assert features.shape[1] == 13 and all(pd.api.types.is_numeric_dtype(dtype) for dtype in features.dtypes)
    assert sorted(wine["cultivar"].unique()) == ["class_0", "class_1", "class_2"]
    diabetes = synthesize(example("regression"), 2_000, seed=1)
    features = diabetes.drop(columns=["progression"])
    assert features.shape[1] == 10 and all(pd.api.types.is_numeric_dtype(dtype) for dtype in features.dtypes)
    assert set(diabetes["sex"]) == {1, 2}
    assert pd.api.types.is_numeric_dtype(diabetes["progression"]) and diabetes["progression"].nunique() > 100


@pytest.mark.parametrize("task", TASKS)
def test_synthetic_rows_are_the_same_for_a_seed_and_differ_between_seeds(task):
    sample = example(task)
    first = synthesize(sample, 1_000, seed=7)
    pd.testing.assert_frame_equal(first, synthesize(sample, 1_000, seed=7))
    assert not first.equals(synthesize(sample, 1_000, seed=8))


def test_a_row_whose_noise_breaks_a_contract_rule_keeps_its_drawn_values():
    sample = example("regression")
    rules = {"cholesterol_parts": "s2 + s3 < s1"}  # diabetes' schema.yaml: LDL + HDL within total cholesterol
    assert rule_holds(sample, "cholesterol_parts", rules["cholesterol_parts"]).all()
    free, kept = synthesize(sample, 50_000, seed=0), synthesize(sample, 50_000, seed=0, rules=rules)
    broken = ~rule_holds(free, "cholesterol_parts", rules["cholesterol_parts"])
    assert broken.any()  # independent noise on s1, s2 and s3 can break it
    assert rule_holds(kept, "cholesterol_parts", rules["cholesterol_parts"]).all()
    assert kept[~broken].equals(free[~broken])  # only the broken rows change
    assert kept[broken].merge(sample.drop_duplicates(), how="left", indicator=True)["_merge"].eq("both").all()


def test_decimal_places_are_the_fewest_that_hold_every_value():
    assert decimal_places(pd.Series([59.0, 2.0, 101.0])) == 0  # whole numbers stored as floats
    assert decimal_places(pd.Series([4.8598, 3.8918, 4.5])) == 4
    assert decimal_places(pd.Series(np.array([0.1, 0.2]) * 3)) == 1  # 0.30000000000000004 is 0.3
