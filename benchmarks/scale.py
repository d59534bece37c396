"""The whole pipeline at growing sizes, under DVC and as one bare script: wall time, memory, ratios.

    python -m benchmarks.scale --rows 100000 1000000 10000000 [--runs 3] [--repeat 5]
        [--task binary multiclass regression]

For each task and size, a freshly baked project of that task (the template's `task` answer) gets
synthetic data shaped like its example (benchmarks.synthetic: German credit, wine or diabetes) as its
raw CSV (`dvc add`, as a user bringing data would) and a drift reference of the production model's
size, then:

1. `dvc repro --force` (every stage runs; the run-cache is bypassed), `--runs` times: each stage's
   wall time and peak RSS (a shim in front of the project's command records them), and what DVC
   adds around the stages;
2. a no-op `dvc repro` beside `dvc status`, `--repeat` times each;
3. the bare floor: the same five stage functions one after another in one Python process, in a copy
   of the project without DVC, `--runs` times;
4. `dvc repro` after a train param changes (`train.seed`, a new value each of `--runs` times), and
   which stages it ran.

Times are medians, peak RSS the largest seen. With binary and another task, each size ends with every
task's full run against binary's (target: at most TASK_TARGET x). Figures, not tests:
tests/test_benchmarks.py only runs it at a tiny size to prove it works.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tools.bakery import Project, Task, bake_project

from benchmarks.synthetic import synthesize, write_csv
from credit_risk.core import load_params
from credit_risk.schema import Schema, load_schema

STAGES = ["preprocess", "validate", "train", "evaluate", "gate"]
GATE_FAILED = "failed to reproduce 'gate'"  # DVC's words when the gate stage exits non-zero
CHANGED_TRAIN_PARAM = "train.seed"
TRAIN_SEED_CHANGES_FROM = 43  # the project's seed is 42
REFERENCE_SEED = 1  # the reference is another draw: the production model's training data
TARGETS = {
    "full dvc repro / bare script": 1.3,
    "no-op dvc repro / dvc status": 1.1,
    "train-param repro / full dvc repro": 0.6,
}
PEAK_RSS_TARGET_GB = 6.0
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
TASK_TARGET = 1.5  # no task's full run slower than this many times binary's, at the same size

# Runs a command and appends its label, wall time and peak RSS to a log. Linux reports, for
# RUSAGE_CHILDREN, the largest peak RSS among all waited-for descendants, so DVC's stage processes count.
MEASURE_SCRIPT = """
import json, resource, subprocess, sys, time
log, label, *command = sys.argv[1:]
start = time.perf_counter()
code = subprocess.call(command)
record = {
    "label": label,
    "seconds": time.perf_counter() - start,
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
}
with open(log, "a") as out:
    out.write(json.dumps(record) + "\\n")
sys.exit(code)
"""

# In front of the project's command on PATH, so each stage DVC runs is measured: `<command> <stage>`.
STAGE_SHIM = """#!/bin/sh
exec "{python}" "{measure}" "{log}" "$1" "{real}" "$@"
"""

BARE_SCRIPT = """
import importlib, json, resource, sys, time
seconds = {{}}
for stage in {stages!r}:
    start = time.perf_counter()
    importlib.import_module("{package}." + stage).main()
    seconds[stage] = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"seconds": seconds, "peak_rss_bytes": peak}}), file=sys.stderr)
"""


@dataclass
class Run:
    seconds: float
    peak_rss_bytes: int


def timed(project: Project, measure: Path, *args: str) -> Run:
    """Wall time of one command in the project, and the peak RSS of the largest process it started.

    A failed gate is a verdict to report, not a broken run: every stage ran, so the run is measured (see
    `gate_verdict`). Any other failure stops the benchmark with DVC's output.
    """
    log = measure.with_name("command.jsonl")
    result = project.run(sys.executable, str(measure), str(log), "command", *args, check=False)
    if result.returncode != 0 and GATE_FAILED not in result.stdout + result.stderr:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise SystemExit(f"`{' '.join(args)}` failed, so there is nothing to measure:\n{tail}")
    record = read_log(log)["command"]
    return Run(record["seconds"], record["peak_rss_bytes"])


def gate_verdict(project: Project) -> list[str]:
    """The checks the last run's gate failed (none when it passed), from its metrics file."""
    verdict = json.loads((project.path / "metrics" / "gate.json").read_text())
    return [check["name"] for check in verdict["checks"] if not check["passed"]]


def prepare(scratch: Path, task: Task, rows: int, seed: int) -> Project:
    """A baked project of `task` holding `rows` synthetic rows shaped like its example as its raw data, committed."""
    project = bake_project(scratch, task=task)
    raw = load_params(project.path / "params.yaml").paths.raw  # the task's example: german_credit, wine, diabetes
    sample = pd.read_csv(project.path / raw)
    write_csv(synthesize(sample, rows, seed, contract(project).rules), project.path / raw)
    schema_file = project.path / "schema.yaml"
    schema_file.write_text(schema_file.read_text().replace("max_rows: 1000000", f"max_rows: {max(rows, 1000000)}"))
    write_reference(project, sample)
    project.git("rm", "--cached", "--quiet", raw.as_posix())  # git holds the sample; DVC takes big data
    project.dvc("add", "--quiet", raw.as_posix())
    project.commit_all(f"{rows} synthetic rows")
    return project


def contract(project: Project) -> Schema:
    return load_schema(project.path / load_params(project.path / "params.yaml").paths.contract)


def write_reference(project: Project, sample: pd.DataFrame) -> None:
    """What `promote` keeps of the production model's training data: a sample, typed, without the target."""
    params, schema = load_params(project.path / "params.yaml"), contract(project)
    reference = synthesize(sample, params.validation.reference_rows, REFERENCE_SEED, schema.rules)
    reference = reference.astype(schema.read_dtypes())
    reference.drop(columns=[params.data.target]).to_parquet(project.path / params.paths.reference)


def install_stage_shim(project: Project, measure: Path, log: Path) -> None:
    """Put a command of the project's name first on PATH that measures the real one into `log`."""
    real = shutil.which(project.slug, path=project.env["PATH"])
    shim_dir = log.parent / "shim"
    shim_dir.mkdir()
    shim = shim_dir / project.slug
    shim.write_text(STAGE_SHIM.format(python=sys.executable, measure=measure, log=log, real=real))
    shim.chmod(0o755)
    project.env["PATH"] = f"{shim_dir}{os.pathsep}{project.env['PATH']}"


def read_log(log: Path) -> dict[str, dict]:
    """The records of a measure log by label, in the order they were written; the log is emptied."""
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    log.unlink(missing_ok=True)
    return {record["label"]: record for record in records}


def bare_runs(project: Project, copy_to: Path, runs: int) -> list[tuple[float, dict]]:
    """The five stages' main() in one process, in a copy of the project that DVC never touches."""
    shutil.copytree(project.path, copy_to, ignore=shutil.ignore_patterns(".dvc", ".git"))
    script = BARE_SCRIPT.format(stages=STAGES, package=project.slug.replace("-", "_"))
    env = {**project.env, "PYTHONPATH": str(copy_to / "src")}
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", script], cwd=copy_to, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"the bare script failed:\n{run.stdout}\n{run.stderr}")
        results.append((time.perf_counter() - start, json.loads(run.stderr.strip().splitlines()[-1])))
    return results


def measure(task: Task, rows: int, repeat: int, runs: int, seed: int) -> dict:
    """Every figure of one task at one size: medians over `runs` full runs (and `repeat` quick commands)."""
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        project = prepare(scratch / "project", task, rows, seed)
        measure = scratch / "measure.py"
        measure.write_text(MEASURE_SCRIPT)
        log = scratch / "stages.jsonl"
        install_stage_shim(project, measure, log)
        full, stage_runs = [], []
        failed_checks = []
        for _ in range(runs):  # --force runs every stage and bypasses the run-cache
            full.append(timed(project, measure, "dvc", "repro", "--force"))
            stage_runs.append(read_log(log))
            failed_checks.append(gate_verdict(project))
        noop = statistics.median(timed(project, measure, "dvc", "repro").seconds for _ in range(repeat))
        status = statistics.median(timed(project, measure, "dvc", "status").seconds for _ in range(repeat))
        project.commit_all("Full run")
        bare = bare_runs(project, scratch / "bare", runs)
        changed, reruns = [], []
        for run in range(runs):  # a new value each time, so each run is a real change
            project.set_param(CHANGED_TRAIN_PARAM, TRAIN_SEED_CHANGES_FROM + run)
            changed.append(timed(project, measure, "dvc", "repro").seconds)
            reruns.append(list(read_log(log)))
    return {
        "task": task,
        "rows": rows,
        "runs": runs,
        "full_seconds": statistics.median(run.seconds for run in full),
        "peak_rss_bytes": max(run.peak_rss_bytes for run in full),
        "stages": {
            stage: {
                "seconds": statistics.median(entries[stage]["seconds"] for entries in stage_runs),
                "peak_rss_bytes": max(entries[stage]["peak_rss_bytes"] for entries in stage_runs),
            }
            for stage in STAGES
        },
        "noop": noop,
        "status": status,
        "bare_seconds": statistics.median(seconds for seconds, _ in bare),
        "bare_stage_seconds": {stage: statistics.median(b["seconds"][stage] for _, b in bare) for stage in STAGES},
        "bare_peak_rss_bytes": max(b["peak_rss_bytes"] for _, b in bare),
        "changed": statistics.median(changed),
        "rerun": reruns[0] if all(rerun == reruns[0] for rerun in reruns) else reruns,
        "gate_failed_checks": failed_checks,
    }


def gb(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GB"


def gate_line(failed_checks: list[list[str]]) -> str:
    failing = [checks for checks in failed_checks if checks]
    if not failing:
        return "gate: passed, every run"
    names = sorted({name for checks in failing for name in checks})
    # DVC records no lock for a failed stage, so the no-op repro above re-ran the gate too
    return f"gate: FAILED in {len(failing)} of {len(failed_checks)} runs ({'; '.join(names)}); measured regardless"


def report(figures: dict) -> list[str]:
    """The figures of one size as printable lines; failed targets are marked."""
    rows, stages = figures["rows"], figures["stages"]
    lines = [
        f"## {figures['task']}, {rows:,} rows (medians of {figures['runs']} runs)",
        "",
        f"{'stage':<12}{'dvc repro':>12}{'peak RSS':>12}{'bare':>12}",
    ]
    for stage in STAGES:
        lines.append(
            f"{stage:<12}{stages[stage]['seconds']:>10.2f} s{gb(stages[stage]['peak_rss_bytes']):>12}"
            f"{figures['bare_stage_seconds'][stage]:>10.2f} s"
        )
    overhead = figures["full_seconds"] - sum(entry["seconds"] for entry in stages.values())
    lines += [
        f"{'total':<12}{figures['full_seconds']:>10.2f} s{gb(figures['peak_rss_bytes']):>12}"
        f"{figures['bare_seconds']:>10.2f} s  (bare peak RSS {gb(figures['bare_peak_rss_bytes'])}; "
        f"DVC around the stages {overhead:.2f} s)",
        f"no-op dvc repro {figures['noop']:.2f} s, dvc status {figures['status']:.2f} s (medians)",
        f"after {CHANGED_TRAIN_PARAM} changed: {figures['changed']:.2f} s, stages run: "
        f"{', '.join(figures['rerun']) or 'none'}",
        gate_line(figures["gate_failed_checks"]),
    ]
    ratios = {
        "full dvc repro / bare script": figures["full_seconds"] / figures["bare_seconds"],
        "no-op dvc repro / dvc status": figures["noop"] / figures["status"],
        "train-param repro / full dvc repro": figures["changed"] / figures["full_seconds"],
    }
    for name, value in ratios.items():
        verdict = "meets" if value <= TARGETS[name] else "MISSES"
        lines.append(f"{name:<38}{value:6.2f} x   {verdict} target {TARGETS[name]} x")
    skipped = figures["rerun"] == ["train", "evaluate", "gate"]
    lines.append(f"{'preprocess and validate skipped':<38}{'yes' if skipped else 'NO':>6}")
    peak_ok = figures["peak_rss_bytes"] <= PEAK_RSS_TARGET_GB * 2**30
    lines.append(
        f"{'peak RSS of any process':<38}{gb(figures['peak_rss_bytes']):>9}   "
        f"{'meets' if peak_ok else 'MISSES'} target {PEAK_RSS_TARGET_GB} GB"
    )
    return lines


def task_comparison(figures: list[dict]) -> list[str]:
    """Each task's full `dvc repro` against binary's at the same size; nothing without binary to compare with."""
    lines = []
    for rows in dict.fromkeys(entry["rows"] for entry in figures):
        runs = {entry["task"]: entry["full_seconds"] for entry in figures if entry["rows"] == rows}
        if "binary" not in runs or len(runs) == 1:
            continue
        lines += [f"## Tasks at {rows:,} rows: full dvc repro against binary's", ""]
        for task, seconds in runs.items():
            ratio = seconds / runs["binary"]
            verdict = "meets" if ratio <= TASK_TARGET else "MISSES"
            lines.append(f"{task:<12}{seconds:>10.2f} s{ratio:>8.2f} x   {verdict} target {TASK_TARGET} x")
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="sizes to run")
    parser.add_argument("--runs", type=int, default=3, help="full, bare and train-param runs per size (medians)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the no-op repro and of status (medians)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--task", nargs="+", choices=TASKS, default=["binary"], help="the template's task answers")
    args = parser.parse_args()
    figures = []
    for rows in args.rows:
        for task in args.task:
            figures.append(measure(task, rows, args.repeat, args.runs, args.seed))
            print("\n".join(report(figures[-1])) + "\n", flush=True)
    print("\n".join(task_comparison(figures)), end="", flush=True)


if __name__ == "__main__":
    main()
