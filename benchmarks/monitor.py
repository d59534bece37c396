"""`monitor` over a million logged predictions: wall time and peak RSS.

    python -m benchmarks.monitor [--rows 1000000] [--rows-per-request 10] [--labelled-share 0.1] [--seed 0]

A freshly baked default project is reproduced, committed and promoted (prod v1.0.0, so a production
reference exists). `--rows` synthetic rows shaped like the sample (benchmarks.synthetic: the contract's
columns, types and categories) are scored by `<slug> predict` and logged as the service logs them
(tools.prediction_logs: `--rows-per-request` rows per request, through the project's `PredictionLog`
into its SQLite file), a `--labelled-share` of them with their true label as feedback. Then `<slug>
monitor` runs once, measured: wall time and the peak RSS of its process. Figures, not tests:
tests/test_benchmarks.py only runs it at a tiny size to prove it works; the goals are printed beside
the figures, never asserted.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tools.bakery import Project
from tools.prediction_logs import Traffic, sqlite_url, write_log

from benchmarks.scale import MEASURE_SCRIPT, Run, gb, read_log
from benchmarks.serve import promoted_project, verdict
from benchmarks.synthetic import synthesize

GOAL_ROWS = 1_000_000
GOAL_SECONDS = 20.0
GOAL_RSS_GB = 1.5
VERSION = "v1.0.0"  # the first promotion's
WRITE_CHUNK_ROWS = 100_000  # rows logged at a time, so the writer's memory stays small


def log_synthetic_traffic(
    project: Project, scratch: Path, rows: int, per_request: int, share: float, seed: int
) -> None:
    sample = pd.read_csv(project.path / "data" / "raw" / "german_credit.csv")
    frame = synthesize(sample, rows, seed)
    truth = frame.pop("risk")
    frame.to_parquet(scratch / "rows.parquet", index=False)
    project.command("predict", "--input", str(scratch / "rows.parquet"), "--output", str(scratch / "scored.parquet"))
    scored = pd.read_parquet(scratch / "scored.parquet")
    labelled = np.random.default_rng(seed).random(rows) < share
    truth_sent = [label if sent else None for label, sent in zip(truth.tolist(), labelled, strict=True)]
    url = sqlite_url(project.path)
    for start in range(0, rows, WRITE_CHUNK_ROWS):
        part = slice(start, start + WRITE_CHUNK_ROWS)
        traffic = Traffic(
            VERSION,
            frame.iloc[part],
            scored["prediction"].iloc[part].tolist(),
            scored["probability"].iloc[part].tolist(),
            truth_sent[part],
            rows_per_request=per_request,
            first_row=start,
        )
        write_log(url, [traffic])


def timed_monitor(project: Project, scratch: Path) -> tuple[Run, int]:
    """Wall time and peak RSS of `<slug> monitor`, and its exit status (1: it alerted, still a full run)."""
    measure, log = scratch / "measure.py", scratch / "monitor.jsonl"
    measure.write_text(MEASURE_SCRIPT)
    result = project.run(sys.executable, str(measure), str(log), "monitor", project.slug, "monitor", check=False)
    if result.returncode not in (0, 1):
        raise SystemExit(f"monitor failed, so there is nothing to measure:\n{result.stdout}\n{result.stderr}")
    record = read_log(log)["monitor"]
    return Run(record["seconds"], record["peak_rss_bytes"]), result.returncode


def report_lines(rows: int, per_request: int, run: Run, status: int, written: float, report: dict) -> list[str]:
    figures = report["versions"][VERSION]
    met = run.seconds <= GOAL_SECONDS and run.peak_rss_bytes <= GOAL_RSS_GB * 2**30
    goal = verdict(met) if rows == GOAL_ROWS else f"n/a at {rows:,} rows"
    return [
        f"## `monitor` over {rows:,} logged predictions ({figures['requests']:,} requests of {per_request}, "
        f"{figures['labelled_requests']:,} labelled)",
        "",
        f"| seconds | peak RSS | exit | alerts | goal at {GOAL_ROWS:,} rows: <= {GOAL_SECONDS:g} s, {GOAL_RSS_GB} GB |",
        "| ---: | ---: | ---: | ---: | --- |",
        f"| {run.seconds:.2f} | {gb(run.peak_rss_bytes)} | {status} | {len(report['alerts'])} | {goal} |",
        "",
        f"(logging them took {written:.0f} s; {os.cpu_count()} cores, 1-minute load average {os.getloadavg()[0]:.1f})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=GOAL_ROWS, help="logged predictions")
    parser.add_argument("--rows-per-request", type=int, default=10, help="rows of each logged request")
    parser.add_argument("--labelled-share", type=float, default=0.1, help="share of rows whose true label arrived")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        project = promoted_project(scratch / "project")
        start = time.perf_counter()
        log_synthetic_traffic(project, scratch, args.rows, args.rows_per_request, args.labelled_share, args.seed)
        written = time.perf_counter() - start
        run, status = timed_monitor(project, scratch)
        report = json.loads((project.path / "monitoring" / "report.json").read_text())
        print("\n".join(report_lines(args.rows, args.rows_per_request, run, status, written, report)))
        for line in report["alerts"]:
            print(f"alert: {line}")


if __name__ == "__main__":
    main()
