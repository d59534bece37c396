"""The model service under load beside a bare floor, and batch scoring of a big file: throughput, latency, memory.

    python -m benchmarks.serve [--requests 5000] [--seconds 10] [--batch-rows 1000000]

A freshly baked default project is reproduced (`dvc repro`), then:

1. its real service (`<slug> serve`, one worker, on 127.0.0.1) with its model promoted to prod, the same
   service with a second model holding the canary stage (serve.canary_share of the requests, sticky
   routing, both models loaded), and the floor: the same Pipeline behind a bare FastAPI endpoint
   (benchmarks.bare_service: JSON parsed, a DataFrame built, predict_proba; no validation, prediction
   log, metrics or access log), started by uvicorn the same way, side by side;
2. a load generator (async httpx over loopback, keep-alive connections opened before the clock starts)
   posts rows of the project's test split to both, alternately, after a warm-up of each: for single-row
   and 100-row requests, at concurrency 1, 16 and 64, each measurement ending after `--requests`
   requests or `--seconds` seconds, whichever comes first. Errors are non-200 answers and transport
   errors; throughput counts answered requests, latency percentiles are of those;
3. `<slug> predict` scores `--batch-rows` synthetic rows shaped like the sample (benchmarks.synthetic),
   CSV to CSV and Parquet to Parquet: wall time and the peak RSS of its process.

The load generator shares the machine's cores with the servers, so the figures are of client and server
together, as on any one-machine test. Figures, not tests: tests/test_benchmarks.py only runs it at a
tiny size to prove it works; the goals are printed beside the figures, never asserted.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from tools.bakery import TEMPLATE, Project, bake_project
from tools.service import PORT, Service, as_request_rows, running_server, running_service

from benchmarks.bare_service import MODEL_VARIABLE
from benchmarks.scale import MEASURE_SCRIPT, gb, timed
from benchmarks.synthetic import synthesize, write_csv
from credit_risk.core import load_params

CONCURRENCY = (1, 16, 64)
ROWS_PER_REQUEST = (1, 100)
REQUEST_TIMEOUT_SECONDS = 30
JSON = {"content-type": "application/json"}
GOAL_THROUGHPUT_RATIO = 0.7
GOAL_CANARY_RATIO = 0.9  # with a canary loaded, throughput within 10% of prod alone
GOAL_SINGLE_ROW_P99_MS = (16, 25.0)  # at concurrency 16
GOAL_BATCH_SECONDS = 15.0
GOAL_BATCH_RSS_GB = 1.5
GOAL_BATCH_ROWS = 1_000_000


@dataclass
class Measurement:
    rows_per_request: int
    answered: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def requests_per_second(self) -> float:
        return self.answered / self.seconds

    @property
    def rows_per_second(self) -> float:
        return self.answered * self.rows_per_request / self.seconds

    def percentile_ms(self, percent: float) -> float:
        return float(np.percentile(self.latencies, percent)) * 1000 if self.latencies else float("nan")


async def load(
    url: str, bodies: list[bytes], rows_per_request: int, concurrency: int, requests: int, seconds: float
) -> Measurement:
    """`concurrency` clients posting bodies in turn until `requests` have been sent or `seconds` have passed."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        await asyncio.gather(*(client.get("/health") for _ in range(concurrency)))  # the connections, opened
        sent, errors, latencies = 0, 0, []
        start = time.perf_counter()
        deadline = start + seconds

        async def client_loop() -> None:
            nonlocal sent, errors
            while sent < requests and time.perf_counter() < deadline:
                body = bodies[sent % len(bodies)]
                sent += 1
                began = time.perf_counter()
                try:
                    answer = await client.post("/predict", content=body, headers=JSON)
                except httpx.TransportError:
                    errors += 1
                    continue
                if answer.status_code == 200:
                    latencies.append(time.perf_counter() - began)
                else:
                    errors += 1

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return Measurement(rows_per_request, len(latencies), errors, elapsed, latencies)


def request_bodies(rows: list[dict], rows_per_request: int) -> list[bytes]:
    """One body starting at each row, the rows taken in turn (wrapping round), as JSON bytes."""
    wrapped = rows * (rows_per_request // len(rows) + 2)
    return [json.dumps({"rows": wrapped[start : start + rows_per_request]}).encode() for start in range(len(rows))]


def promoted_project(scratch: Path) -> Project:
    """The default project, reproduced, committed and its model promoted to prod (v1.0.0)."""
    project = bake_project(scratch)
    project.dvc("repro")
    project.commit_all("Run the pipeline")
    project.command("promote")
    return project


def with_canary(project: Project, scratch: Path) -> Project:
    """A copy of the promoted project whose next model, trained with another learning rate, is the canary."""
    canary = project.copy(scratch)
    canary.set_param("train.hist_gradient_boosting.learning_rate", 0.08)
    canary.dvc("repro")
    canary.commit_all("A canary")
    canary.command("promote", "--canary")
    return canary


@contextmanager
def bare_service(project: Project, log: Path) -> Iterator[Service]:
    """benchmarks.bare_service on a free port, with the project's model and package (its pickle needs it)."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "benchmarks.bare_service:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        PORT,
    ]
    env = {
        **project.env,
        "PYTHONPATH": os.pathsep.join([str(TEMPLATE), project.env["PYTHONPATH"]]),
        MODEL_VARIABLE: str(project.path / "models" / "model.joblib"),
        "OMP_NUM_THREADS": "1",  # one thread per prediction, as the service's own limit gives each request
    }
    with running_server([*command, "--no-access-log"], cwd=project.path, env=env, log=log) as service:
        yield service


def measure_services(project: Project, scratch: Path, requests: int, seconds: float, warmup: int) -> dict:
    """{(rows per request, concurrency): {"full": Measurement, "canary": ..., "bare": ...}}, measured alternately."""
    test = pd.read_parquet(project.path / "data" / "processed" / "test.parquet")
    rows = as_request_rows(test)
    figures: dict = {}
    with ExitStack() as stack:
        services = {
            "full": stack.enter_context(running_service(project, log=scratch / "serve.log")),
            "canary": stack.enter_context(running_service(with_canary(project, scratch), log=scratch / "canary.log")),
            "bare": stack.enter_context(bare_service(project, scratch / "bare.log")),
        }
        for rows_per_request in ROWS_PER_REQUEST:
            bodies = request_bodies(rows, rows_per_request)
            for service in services.values():  # the first requests of a process are not its steady state
                warm = asyncio.run(load(service.url, bodies, rows_per_request, 16, warmup, seconds))
                if warm.errors:
                    raise SystemExit(f"{service.url} failed {warm.errors} of the warm-up requests:\n{service.output()}")
            for concurrency in CONCURRENCY:
                figures[rows_per_request, concurrency] = {
                    name: asyncio.run(load(service.url, bodies, rows_per_request, concurrency, requests, seconds))
                    for name, service in services.items()
                }
    return figures


def measure_batch(project: Project, scratch: Path, rows: int, seed: int) -> dict[str, tuple[float, int]]:
    """{"CSV": (seconds, peak RSS bytes), "Parquet": ...} of `<slug> predict` on `rows` synthetic rows."""
    sample = pd.read_csv(project.path / "data" / "raw" / "german_credit.csv")
    frame = synthesize(sample, rows, seed).drop(columns=["risk"])  # rows to score come without the target
    write_csv(frame, scratch / "rows.csv")
    frame.to_parquet(scratch / "rows.parquet", index=False)
    del frame
    measure = scratch / "measure.py"
    measure.write_text(MEASURE_SCRIPT)
    figures = {}
    for name, suffix in (("CSV", ".csv"), ("Parquet", ".parquet")):
        source, destination = scratch / f"rows{suffix}", scratch / f"scored{suffix}"
        run = timed(project, measure, project.slug, "predict", "--input", str(source), "--output", str(destination))
        figures[name] = (run.seconds, run.peak_rss_bytes)
    return figures


def verdict(met: bool) -> str:
    return "meets" if met else "MISSES"


def service_report(figures: dict, requests: int, seconds: float, warmup: int) -> list[str]:
    lines = [
        f"## Service: full vs bare, each measurement {requests:,} requests or {seconds:g} s, "
        f"after {warmup:,} warm-up requests",
    ]
    for rows_per_request in ROWS_PER_REQUEST:
        lines += [
            "",
            f"### {rows_per_request} row{'s' * (rows_per_request > 1)} per request",
            "",
            "| concurrency | full req/s | bare req/s | full/bare | full rows/s | bare rows/s "
            "| full p50 ms | bare p50 ms | full p99 ms | bare p99 ms | errors full / bare "
            "| with canary req/s | with canary/full | with canary p99 ms |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for concurrency in CONCURRENCY:
            full, bare, canary = (figures[rows_per_request, concurrency][name] for name in ("full", "bare", "canary"))
            ratio = full.requests_per_second / bare.requests_per_second if bare.answered else float("nan")
            canary_ratio = canary.requests_per_second / full.requests_per_second if full.answered else float("nan")
            lines.append(
                f"| {concurrency} | {full.requests_per_second:.1f} | {bare.requests_per_second:.1f} | {ratio:.2f}x "
                f"| {full.rows_per_second:.0f} | {bare.rows_per_second:.0f} "
                f"| {full.percentile_ms(50):.1f} | {bare.percentile_ms(50):.1f} "
                f"| {full.percentile_ms(99):.1f} | {bare.percentile_ms(99):.1f} | {full.errors} / {bare.errors} "
                f"| {canary.requests_per_second:.1f} | {canary_ratio:.2f}x | {canary.percentile_ms(99):.1f} |"
            )
    ratios = throughput_ratios(figures, "full", "bare")
    canary_ratios = throughput_ratios(figures, "canary", "full")
    p99_concurrency, p99_goal = GOAL_SINGLE_ROW_P99_MS
    p99 = figures[1, p99_concurrency]["full"].percentile_ms(99)
    errors = sum(measured[name].errors for measured in figures.values() for name in ("full", "canary"))
    lines += [
        "",
        "| goal | figure | |",
        "| --- | ---: | --- |",
        f"| full service >= {GOAL_THROUGHPUT_RATIO}x bare throughput | lowest {min(ratios, default=float('nan')):.2f}x "
        f"| {verdict(bool(ratios) and min(ratios) >= GOAL_THROUGHPUT_RATIO)} |",
        f"| with a canary >= {GOAL_CANARY_RATIO}x prod alone's throughput "
        f"| lowest {min(canary_ratios, default=float('nan')):.2f}x "
        f"| {verdict(bool(canary_ratios) and min(canary_ratios) >= GOAL_CANARY_RATIO)} |",
        f"| p99 of a single-row request at concurrency {p99_concurrency} <= {p99_goal:g} ms | {p99:.1f} ms "
        f"| {verdict(p99 <= p99_goal)} |",
        f"| zero errors (full service, with and without a canary) | {errors} | {verdict(errors == 0)} |",
    ]
    return lines


def throughput_ratios(figures: dict, service: str, reference: str) -> list[float]:
    return [
        measured[service].requests_per_second / measured[reference].requests_per_second
        for measured in figures.values()
        if measured[reference].answered
    ]


def batch_report(figures: dict[str, tuple[float, int]], rows: int, batch_rows: int) -> list[str]:
    lines = [
        f"## Batch scoring: `predict` on {rows:,} synthetic rows, {batch_rows:,} rows at a time (serve.batch_rows)",
        "",
        f"| input -> output | seconds | peak RSS | goal at {GOAL_BATCH_ROWS:,} rows: "
        f"<= {GOAL_BATCH_SECONDS:g} s and < {GOAL_BATCH_RSS_GB} GB |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, (seconds, peak) in figures.items():
        met = seconds <= GOAL_BATCH_SECONDS and peak < GOAL_BATCH_RSS_GB * 2**30
        goal = verdict(met) if rows == GOAL_BATCH_ROWS else f"n/a at {rows:,} rows"
        lines.append(f"| {name} -> {name} | {seconds:.2f} | {gb(peak)} | {goal} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per measurement at most")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement at most")
    parser.add_argument("--warmup", type=int, default=300, help="requests to each service before measuring")
    parser.add_argument("--batch-rows", type=int, default=GOAL_BATCH_ROWS, help="rows `predict` scores")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        project = promoted_project(scratch / "project")
        load_before = os.getloadavg()[0]
        services = measure_services(project, scratch, args.requests, args.seconds, args.warmup)
        print("\n".join(service_report(services, args.requests, args.seconds, args.warmup)) + "\n", flush=True)
        batch = measure_batch(project, scratch, args.batch_rows, args.seed)
        chunk_rows = load_params(project.path / "params.yaml").serve.batch_rows
        print("\n".join(batch_report(batch, args.batch_rows, chunk_rows)) + "\n")
        print(
            f"{os.cpu_count()} cores; 1-minute load average {load_before:.1f} before the service measurements, "
            f"{os.getloadavg()[0]:.1f} at the end (the load generator's own share included)"
        )


if __name__ == "__main__":
    main()
