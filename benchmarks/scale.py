"""The whole pipeline at growing sizes, under DVC and as one bare script: wall time, memory, ratios.

    python -m benchmarks.scale --rows 100000 1000000 10000000 [--runs 3] [--repeat 5]
        [--task binary multiclass regression] [--engine local dask] [--estimator lightgbm]
        [--workers 2] [--worker-memory 4GB] [--partition-size 64MB] [--full-only]

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

With `--engine dask`, the project runs `compute.engine: dask` (and LightGBM, which that engine trains) on
a cluster started for the benchmark on this machine, as tools.dask_cluster starts one: `dask scheduler` and
`--workers` `dask worker` processes of one thread and `--worker-memory` each; the stages reach it through
DASK_SCHEDULER_ADDRESS. Each stage's figures then add every worker's peak RSS during that stage, and the
stage's own peak RSS is the client's. With both engines, the local engine's peak RSS is extrapolated to
each size that only the Dask engine ran (a line through its two largest local sizes).

Times are medians, peak RSS the largest seen. With binary and another task, each size ends with every
task's full run against binary's (target: at most TASK_TARGET x), per engine. Figures, not tests:
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tools.bakery import Project, Task, bake_project
from tools.dask_cluster import DaskCluster, running_dask_cluster

from benchmarks.synthetic import synthesize, write_csv
from credit_risk.core import HEADLINE_METRICS, load_params
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
ENGINES = ("local", "dask")
WORKER_PIDS_VARIABLE = "BENCHMARK_DASK_WORKER_PIDS"
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
TASK_TARGET = 1.5  # no task's full run slower than this many times binary's, at the same size

# Runs a command and appends its label, wall time and peak RSS to a log. Linux reports, for
# RUSAGE_CHILDREN, the largest peak RSS among all waited-for descendants, so DVC's stage processes count.
# With the Dask engine, the workers are no descendants: WORKER_PIDS_VARIABLE names a file of their pids, and
# each one's peak RSS (VmHWM) is reset before the command (clear_refs 5) and read after it.
MEASURE_SCRIPT = f"""
import json, os, resource, subprocess, sys, time
log, label, *command = sys.argv[1:]
workers = os.environ.get("{WORKER_PIDS_VARIABLE}")
workers = json.loads(open(workers).read()) if workers else {{}}
def peak_rss_bytes(pid):  # None: the worker died (its nanny started another), its peak is lost
    try:
        with open(f"/proc/{{pid}}/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except FileNotFoundError:
        return None
for pid in workers.values():
    with open(f"/proc/{{pid}}/clear_refs", "w") as clear:
        clear.write("5")
start = time.perf_counter()
code = subprocess.call(command)
record = {{
    "label": label,
    "seconds": time.perf_counter() - start,
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    "worker_peak_rss_bytes": {{name: peak_rss_bytes(pid) for name, pid in workers.items()}},
}}
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


@dataclass(frozen=True)
class Engine:
    """Where the stages run: `local`, or `dask` on a cluster of `workers` processes started for the benchmark."""

    name: str = "local"
    estimator: str | None = None  # train.estimator; None: the project's own (dask: lightgbm)
    workers: int = 2
    worker_memory: str = "4GB"
    partition_size: str | None = None  # compute.partition_size; None: the project's own

    @property
    def label(self) -> str:
        """How a report's heading names it: nothing for the local engine, whose headings stay as they were."""
        if self.name == "local":
            return f", {self.estimator}" if self.estimator else ""
        return f", dask engine ({self.workers} workers x {self.worker_memory})"


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


def prepare(scratch: Path, task: Task, rows: int, seed: int, engine: Engine) -> Project:
    """A baked project of `task` holding `rows` synthetic rows shaped like its example as its raw data, set to
    run on `engine`, committed."""
    project = bake_project(scratch, task=task)
    use_engine(project, engine)
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


def use_engine(project: Project, engine: Engine) -> None:
    """The project's params for `engine`: the Dask engine trains LightGBM (core.Params refuses anything else)."""
    estimator = engine.estimator or ("lightgbm" if engine.name == "dask" else None)
    if estimator:
        project.set_param("train.estimator", estimator)
    if engine.name == "dask":
        project.set_param("compute.engine", "dask")
    if engine.partition_size:
        project.set_param("compute.partition_size", engine.partition_size)


@contextmanager
def cluster_for(project: Project, engine: Engine, folder: Path) -> Iterator[DaskCluster | None]:
    """The Dask engine's cluster, its address in the project's environment (so every stage and the bare script
    use it) and the file its workers' pids go to for the stage shim; nothing for the local engine."""
    if engine.name == "local":
        yield None
        return
    with running_dask_cluster(project.env, folder, engine.workers, engine.worker_memory) as cluster:
        project.env.update(DASK_SCHEDULER_ADDRESS=cluster.address, **{WORKER_PIDS_VARIABLE: str(folder / "pids")})
        yield cluster


def record_worker_pids(project: Project, cluster: DaskCluster | None) -> None:
    """Where the stage shim finds the workers, written before each run: a worker killed and restarted by its
    nanny (out of memory) has a new pid."""
    if cluster is not None:
        Path(project.env[WORKER_PIDS_VARIABLE]).write_text(json.dumps(cluster.worker_pids()))


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


def measure(
    task: Task, rows: int, repeat: int, runs: int, seed: int, engine: Engine = Engine(), full_only: bool = False
) -> dict:
    """Every figure of one task at one size: medians over `runs` full runs (and `repeat` quick commands); with
    `full_only`, the full runs alone (no no-op, bare or train-param runs: for sizes where one run takes minutes)."""
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        project = prepare(scratch / "project", task, rows, seed, engine)
        cluster = stack.enter_context(cluster_for(project, engine, scratch / "cluster"))
        measure = scratch / "measure.py"
        measure.write_text(MEASURE_SCRIPT)
        log = scratch / "stages.jsonl"
        install_stage_shim(project, measure, log)
        full, stage_runs = [], []
        failed_checks = []
        for _ in range(runs):  # --force runs every stage and bypasses the run-cache
            record_worker_pids(project, cluster)
            full.append(timed(project, measure, "dvc", "repro", "--force"))
            stage_runs.append(read_log(log))
            failed_checks.append(gate_verdict(project))
        answers = run_answers(project, task)
        if full_only:
            return full_figures(task, rows, runs, engine, full, stage_runs, failed_checks, answers)
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
        **full_figures(task, rows, runs, engine, full, stage_runs, failed_checks, answers),
        "noop": noop,
        "status": status,
        "bare_seconds": statistics.median(seconds for seconds, _ in bare),
        "bare_stage_seconds": {stage: statistics.median(b["seconds"][stage] for _, b in bare) for stage in STAGES},
        "bare_peak_rss_bytes": max(b["peak_rss_bytes"] for _, b in bare),
        "changed": statistics.median(changed),
        "rerun": reruns[0] if all(rerun == reruns[0] for rerun in reruns) else reruns,
    }


def full_figures(
    task: Task,
    rows: int,
    runs: int,
    engine: Engine,
    full: list[Run],
    stage_runs: list[dict],
    failed_checks: list[list[str]],
    answers: dict,
) -> dict:
    """The figures of the full runs: time and peak RSS, per stage too (with each worker's), and their answers."""
    return {
        "task": task,
        "rows": rows,
        "runs": runs,
        "engine": engine,
        "full_seconds": statistics.median(run.seconds for run in full),
        "peak_rss_bytes": max(run.peak_rss_bytes for run in full),
        "stages": {
            stage: {
                "seconds": statistics.median(entries[stage]["seconds"] for entries in stage_runs),
                "peak_rss_bytes": max(entries[stage]["peak_rss_bytes"] for entries in stage_runs),
                "worker_peak_rss_bytes": worker_peaks([entries[stage] for entries in stage_runs]),
            }
            for stage in STAGES
        },
        "gate_failed_checks": failed_checks,
        "answers": answers,
    }


def run_answers(project: Project, task: Task) -> dict:
    """What the last full run concluded, to compare engines: validate's verdict and the task's headline metrics."""
    validation = json.loads((project.path / "metrics" / "validation.json").read_text())
    metrics = json.loads((project.path / "metrics" / "evaluation.json").read_text())
    return {
        "validation": f"{'passed' if validation['passed'] else 'FAILED'} ({validation['checks_failed']} of "
        f"{validation['checks_total']} checks failed)",
        "headline": {name: metrics.get(name) for name in HEADLINE_METRICS[task]},
    }


def worker_peaks(records: list[dict]) -> dict[str, int | None]:
    """Each worker's largest peak RSS over a stage's runs; None when a worker died during one (its peak is lost)."""
    names = sorted({name for record in records for name in record.get("worker_peak_rss_bytes", {})})
    peaks: dict[str, int | None] = {}
    for name in names:
        seen = [record["worker_peak_rss_bytes"].get(name) for record in records]
        peaks[name] = None if None in seen else max(seen)
    return peaks


def gb(n_bytes: float | None) -> str:
    return "lost" if n_bytes is None else f"{n_bytes / 2**30:.2f} GB"


def gate_line(failed_checks: list[list[str]]) -> str:
    failing = [checks for checks in failed_checks if checks]
    if not failing:
        return "gate: passed, every run"
    names = sorted({name for checks in failing for name in checks})
    # DVC records no lock for a failed stage, so the no-op repro above re-ran the gate too
    return f"gate: FAILED in {len(failing)} of {len(failed_checks)} runs ({'; '.join(names)}); measured regardless"


def report(figures: dict) -> list[str]:
    """The figures of one size as printable lines; failed targets are marked."""
    rows, stages, engine = figures["rows"], figures["stages"], figures["engine"]
    workers = sorted({name for entry in stages.values() for name in entry["worker_peak_rss_bytes"]})
    lines = [
        f"## {figures['task']}, {rows:,} rows{engine.label} (medians of {figures['runs']} runs)",
        "",
        f"{'stage':<12}{'dvc repro':>12}{'peak RSS':>12}{'bare':>12}" + "".join(f"{name:>12}" for name in workers),
    ]
    for stage in STAGES:
        lines.append(
            f"{stage:<12}{stages[stage]['seconds']:>10.2f} s{gb(stages[stage]['peak_rss_bytes']):>12}"
            + (f"{figures['bare_stage_seconds'][stage]:>10.2f} s" if "bare_stage_seconds" in figures else f"{'-':>12}")
            + "".join(f"{gb(stages[stage]['worker_peak_rss_bytes'].get(name)):>12}" for name in workers)
        )
    overhead = figures["full_seconds"] - sum(entry["seconds"] for entry in stages.values())
    answers = figures["answers"]
    headline = ", ".join(f"{name} {value}" for name, value in answers["headline"].items())
    if "noop" not in figures:  # --full-only
        return [
            *lines,
            f"{'total':<12}{figures['full_seconds']:>10.2f} s{gb(figures['peak_rss_bytes']):>12}"
            f"  (DVC around the stages {overhead:.2f} s)",
            f"validate: {answers['validation']}; headline metrics: {headline}",
            gate_line(figures["gate_failed_checks"]),
            *worker_peak_lines(figures, workers),
        ]
    lines += [
        f"{'total':<12}{figures['full_seconds']:>10.2f} s{gb(figures['peak_rss_bytes']):>12}"
        f"{figures['bare_seconds']:>10.2f} s  (bare peak RSS {gb(figures['bare_peak_rss_bytes'])}; "
        f"DVC around the stages {overhead:.2f} s)",
        f"no-op dvc repro {figures['noop']:.2f} s, dvc status {figures['status']:.2f} s (medians)",
        f"after {CHANGED_TRAIN_PARAM} changed: {figures['changed']:.2f} s, stages run: "
        f"{', '.join(figures['rerun']) or 'none'}",
        f"validate: {answers['validation']}; headline metrics: {headline}",
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
    return lines + worker_peak_lines(figures, workers)


def worker_peak_lines(figures: dict, workers: list[str]) -> list[str]:
    lines = []
    for name in workers:
        peaks = [figures["stages"][stage]["worker_peak_rss_bytes"].get(name) for stage in STAGES]
        peak = None if None in peaks else max(peak for peak in peaks if peak is not None)
        lines.append(f"{f'peak RSS of {name}':<38}{gb(peak):>9}   limit {figures['engine'].worker_memory}")
    return lines


def extrapolated_local_need(figures: list[dict]) -> list[str]:
    """The local engine's peak RSS at each size only the Dask engine ran, on a line through the local engine's
    two largest sizes of the same task (through zero with one size): what one machine would need."""
    lines = []
    for entry in figures:
        task, rows = entry["task"], entry["rows"]
        local = sorted(
            (other["rows"], other["peak_rss_bytes"])
            for other in figures
            if other["engine"].name == "local" and other["task"] == task
        )
        if entry["engine"].name != "dask" or not local or any(size == rows for size, _ in local):
            continue
        (small_rows, small_peak), (large_rows, large_peak) = ([(0, 0)] + local)[-2:]
        slope = (large_peak - small_peak) / (large_rows - small_rows)
        need = large_peak + slope * (rows - large_rows)
        lines.append(
            f"local engine's peak RSS extrapolated to {task}, {rows:,} rows: {gb(need)} "
            f"(from its {', '.join(f'{size:,}' for size, _ in local[-2:])}-row runs)"
        )
    return lines + [""] if lines else []


def task_comparison(figures: list[dict]) -> list[str]:
    """Each task's full `dvc repro` against binary's at the same size on the same engine; nothing without binary
    to compare with."""
    lines = []
    for rows, engine in dict.fromkeys((entry["rows"], entry["engine"]) for entry in figures):
        runs = {
            entry["task"]: entry["full_seconds"]
            for entry in figures
            if entry["rows"] == rows and entry["engine"] == engine
        }
        if "binary" not in runs or len(runs) == 1:
            continue
        lines += [f"## Tasks at {rows:,} rows{engine.label}: full dvc repro against binary's", ""]
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
    parser.add_argument("--engine", nargs="+", choices=ENGINES, default=["local"], help="compute.engine values")
    parser.add_argument("--estimator", help="train.estimator on every engine (default: the project's; dask: lightgbm)")
    parser.add_argument("--workers", type=int, default=2, help="dask: worker processes, one thread each")
    parser.add_argument("--worker-memory", default="4GB", help="dask: each worker's memory limit")
    parser.add_argument("--partition-size", help="dask: compute.partition_size (default: the project's)")
    parser.add_argument(
        "--full-only", action="store_true", help="only the full runs (no no-op, bare or train-param runs)"
    )
    args = parser.parse_args()
    if "dask" in args.engine and args.estimator not in (None, "lightgbm"):
        parser.error("the dask engine trains lightgbm only: leave --estimator out or set it to lightgbm")
    engines = [
        Engine(name, args.estimator, args.workers, args.worker_memory, args.partition_size) for name in args.engine
    ]
    figures = []
    for rows in args.rows:
        for task in args.task:
            for engine in engines:
                figures.append(measure(task, rows, args.repeat, args.runs, args.seed, engine, args.full_only))
                print("\n".join(report(figures[-1])) + "\n", flush=True)
    print("\n".join(task_comparison(figures) + extrapolated_local_need(figures)), end="", flush=True)


if __name__ == "__main__":
    main()
