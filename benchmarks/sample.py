"""Time the default project on its 1,000-row sample, where imports are most of the cost.

    python -m benchmarks.sample [--against REV] [--runs 5] [--repeat 5]

Bakes the default project (and, with --against, a second one from the template at git revision REV,
for a side-by-side comparison in one run), then:

1. `dvc repro --force`, `--runs` times (alternating between the projects, so both see the same load):
   the full run's wall time and each stage's, medians;
2. each stage module's import time, from `python -X importtime -c "import <package>.<stage>"`, with
   the three costliest top-level packages it pulls in;
3. the bake, a no-op `dvc repro` and `dvc status` (medians of `--repeat`).

Figures, not tests.
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from tools.bakery import TEMPLATE, Project, bake_project

from benchmarks.scale import MEASURE_SCRIPT, STAGES, install_stage_shim, read_log, timed

IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_profile(project: Project, stage: str) -> tuple[float, list[tuple[str, float]]]:
    """Seconds to import the stage's module, and the costliest packages the project's modules import."""
    package = project.slug.replace("-", "_")
    result = project.run(sys.executable, "-X", "importtime", "-c", f"import {package}.{stage}")
    lines = [match for match in map(IMPORT_LINE.match, result.stderr.splitlines()) if match]
    total, imported_by_us = 0.0, defaultdict[str, float](float)
    parents: list[tuple[int, str]] = []  # importtime lists a module after its imports: read it backwards
    for match in reversed(lines):
        cumulative, depth, name = int(match[2]) / 1e6, len(match[3]), match[4]
        while parents and parents[-1][0] >= depth:
            parents.pop()
        if name == f"{package}.{stage}":
            total = cumulative
        elif parents and parents[-1][1].startswith(package) and not name.startswith(package):
            imported_by_us[name.split(".")[0]] += cumulative
        parents.append((depth, name))
    return total, sorted(imported_by_us.items(), key=lambda item: -item[1])[:3]


def measured(projects: dict[str, Project], scratch: Path, runs: int, repeat: int) -> dict[str, dict]:
    measure = scratch / "measure.py"
    measure.write_text(MEASURE_SCRIPT)
    logs = {}
    for name, project in projects.items():
        logs[name] = scratch / f"{name}-measure" / "stages.jsonl"
        logs[name].parent.mkdir()
        install_stage_shim(project, measure, logs[name])
    full: dict[str, list[float]] = defaultdict(list)
    stages: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for _ in range(runs):
        for name, project in projects.items():
            full[name].append(timed(project, measure, "dvc", "repro", "--force").seconds)
            for stage, record in read_log(logs[name]).items():
                stages[name][stage].append(record["seconds"])
    figures = {}
    for name, project in projects.items():
        noop = statistics.median(timed(project, measure, "dvc", "repro").seconds for _ in range(repeat))
        status = statistics.median(timed(project, measure, "dvc", "status").seconds for _ in range(repeat))
        figures[name] = {
            "full": statistics.median(full[name]),
            "stages": {stage: statistics.median(stages[name][stage]) for stage in STAGES},
            "imports": {stage: import_profile(project, stage) for stage in STAGES},
            "noop": noop,
            "status": status,
        }
    return figures


def template_at(revision: str, destination: Path) -> Path:
    """The template as it was at `revision`, extracted from git."""
    destination.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    return destination


def report(figures: dict[str, dict], bake_seconds: dict[str, float]) -> list[str]:
    names = list(figures)
    header = f"{'':<34}" + "".join(f"{name:>14}" for name in names)
    lines = [header]

    def row(label: str, values: list[float], unit: str = "s") -> None:
        lines.append(f"{label:<34}" + "".join(f"{value:>12.2f} {unit}" for value in values))

    row("bake", [bake_seconds[name] for name in names])
    row("full dvc repro --force (median)", [figures[name]["full"] for name in names])
    for stage in STAGES:
        row(f"  {stage}", [figures[name]["stages"][stage] for name in names])
    row("  DVC around the stages", [figures[n]["full"] - sum(figures[n]["stages"].values()) for n in names])
    row("no-op dvc repro (median)", [figures[name]["noop"] for name in names])
    row("dvc status (median)", [figures[name]["status"] for name in names])
    if len(names) == 2:
        ratio = figures[names[0]]["full"] / figures[names[1]]["full"]
        lines.append(f"{'full run, ' + names[0] + ' / ' + names[1]:<34}{ratio:>12.2f} x")
    for name in names:
        lines += ["", f"import time of each stage's module ({name}): seconds, and its costliest packages"]
        for stage in STAGES:
            total, costliest = figures[name]["imports"][stage]
            packages = ", ".join(f"{package} {seconds:.2f}" for package, seconds in costliest)
            lines.append(f"  {stage:<12}{total:6.2f} s   {packages}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also bake the template at this git revision, side by side")
    parser.add_argument("--runs", type=int, default=5, help="forced full runs of each project (median shown)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each quick command (median shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        templates = {"this": TEMPLATE}
        if args.against:
            templates[args.against] = template_at(args.against, scratch / "template-at-revision")
        projects, bake_seconds = {}, {}
        for name, template in templates.items():
            start = time.perf_counter()
            projects[name] = bake_project(scratch / f"{name}-bake", template=template)
            bake_seconds[name] = time.perf_counter() - start
        print("\n".join(report(measured(projects, scratch, args.runs, args.repeat), bake_seconds)))


if __name__ == "__main__":
    main()
