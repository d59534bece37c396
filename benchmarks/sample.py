"""Time the default project on its sample data: bake, full `dvc repro`, no-op `dvc repro`, `dvc status`.

    python -m benchmarks.sample [--repeat 5]

Prints wall times in seconds (median of --repeat runs for the quick commands). Figures, not tests.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tools.bakery import Project, bake_project


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each quick command (median shown)")
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as scratch:
        holder: dict[str, Project] = {}
        bake_seconds = timed(lambda: holder.setdefault("project", bake_project(Path(scratch))))
        project = holder["project"]
        full = timed(lambda: project.dvc("repro"))
        noop = statistics.median(timed(lambda: project.dvc("repro")) for _ in range(repeat))
        status = statistics.median(timed(lambda: project.dvc("status")) for _ in range(repeat))
    rows = [
        ("bake (cookiecutter + hooks + editable install of the command)", bake_seconds),
        ("full dvc repro, five stages", full),
        (f"no-op dvc repro (median of {repeat})", noop),
        (f"dvc status (median of {repeat})", status),
    ]
    for label, seconds in rows:
        print(f"{label:<64} {seconds:7.2f} s")
    print(f"{'no-op repro / status':<64} {noop / status:7.2f} x")


if __name__ == "__main__":
    main()
