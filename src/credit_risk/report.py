"""A Markdown report for a pull request: the gate's verdict, then metrics and params against a base.

DVC does the diffing (`dvc metrics diff`, `dvc params diff`, `dvc plots diff`); this module runs it
and lays the results out. It works in any checkout, so `<command> report` shows locally what CI posts.
"""

import json
import subprocess
from pathlib import Path

from .files import read_json
from .params import load_params

MARKER = "<!-- dvc-pipeline-report -->"  # lets CI find and update its own comment
PLOTS_DIR = Path("reports/plots")
GATE_STAGE = "gate"  # a failed gate leaves its stage unlocked; its verdict is current all the same


def dvc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], capture_output=True, text=True)


def base_problem(base: str, metrics_dir: str) -> str | None:
    """Why metrics cannot be compared with `base`, or None when they can."""
    if subprocess.run(["git", "rev-parse", "--verify", "--quiet", base + "^{commit}"], capture_output=True).returncode:
        return (
            f"The base revision `{base}` is not in this checkout (a shallow clone?): run "
            f"`git fetch origin {base.removeprefix('origin/')}` to compare. Current values only."
        )
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", base, "--", metrics_dir], capture_output=True, text=True
    )
    if not files.stdout.strip():
        return f"The base `{base}` has no metrics yet: every value below is new."
    return None


def reproduction_warning() -> list[str]:
    """A warning when the workspace does not match dvc.lock: then the values below were not reproduced."""
    status = dvc("status", "--json")
    try:
        stale = sorted(set(json.loads(status.stdout or "{}")) - {GATE_STAGE})
    except ValueError:
        stale = []
    if not stale:
        return []
    return [
        f"> ⚠️ **Not reproduced**: `dvc status` lists {', '.join(f'`{name}`' for name in stale)} as changed, so "
        "the values below are the last committed ones, not this revision's. Did `dvc repro` fail? Its log says "
        "why; a missing `data/raw` file in CI means no DVC remote holds the data (`dvc remote add`, `dvc push`)."
    ]


def gate_section(gate: dict) -> list[str]:
    verdict = "PASSED" if gate.get("passed") else "FAILED"
    lines = [f"## Gate: {verdict}", ""]
    failed = [check for check in gate.get("checks", []) if not check["passed"]]
    lines += [f"- ❌ {check['name']}: value {check['value']}, threshold {check['threshold']}" for check in failed]
    lines.append(f"{gate.get('checks_total', 0) - len(failed)} of {gate.get('checks_total', 0)} checks passed.")
    return lines


def metrics_section(base: str, problem: str | None) -> list[str]:
    lines = [f"## Metrics against `{base}`", ""]
    if problem and "not in this checkout" in problem:
        return [*lines, problem, "", dvc("metrics", "show", "--md").stdout.strip()]
    table = dvc("metrics", "diff", base, "--all", "--md").stdout.strip()
    return [*lines, *([problem, ""] if problem else []), table or "No metrics found."]


def params_section(base: str, problem: str | None) -> list[str]:
    lines = [f"## Params against `{base}`", ""]
    if problem and "not in this checkout" in problem:
        return [*lines, "Not compared: the base revision is missing."]
    table = dvc("params", "diff", base, "--md").stdout.strip()
    return [*lines, table or "No param changed."]


def validation_section(validation: dict) -> list[str]:
    failed = [check for check in validation.get("checks", []) if not check["passed"]]
    summary = "passed" if validation.get("passed") else "FAILED"
    lines = [
        "## Data validation",
        "",
        f"{summary}: {validation.get('checks_total', 0) - len(failed)} of "
        f"{validation.get('checks_total', 0)} checks passed.",
    ]
    return lines + [
        f"- ❌ {check['name']} ({check.get('column') or 'dataset'}): {check.get('detail') or check['value']}"
        for check in failed
    ]


def plots_section(base: str, problem: str | None) -> list[str]:
    revisions = [] if problem and "not in this checkout" in problem else [base]
    PLOTS_DIR.mkdir(parents=True, exist_ok=True)  # dvc plots diff does not create it
    made = dvc("plots", "diff", *revisions, "--out", str(PLOTS_DIR))
    where = f"`{PLOTS_DIR}/index.html`" if made.returncode == 0 else "not rendered: " + made.stderr.strip()[:200]
    return ["## Plots", "", f"ROC, precision-recall and confusion matrix against `{base}`: {where}"]


def build_report(base: str) -> str:
    params = load_params()
    problem = base_problem(base, str(params.paths.gate.parent))
    sections = [
        [MARKER, "# Pipeline report"],
        reproduction_warning(),
        gate_section(read_json(params.paths.gate)),
        metrics_section(base, problem),
        params_section(base, problem),
        validation_section(read_json(params.paths.validation)),
        plots_section(base, problem),
    ]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"


def main(base: str = "main") -> None:
    print(build_report(base), end="")
