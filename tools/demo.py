"""Bake a project with the default answers into build/, run its whole pipeline, show the results.

What a new user sees after `cookiecutter <template>` and `dvc repro`; the exit status is the gate's.
"""

import json
import shutil
import subprocess
import sys

from tools.bakery import ROOT_BUILD, VENV_BIN, bake_project

HEADLINE = {
    "metrics/evaluation.json": ["accuracy", "precision", "recall", "f1", "roc_auc"],
    "metrics/latency.json": ["latency_p99_ms"],
    "metrics/fairness.json": ["max_gap"],
    "metrics/robustness.json": ["max_drop"],
}


def main() -> int:
    shutil.rmtree(ROOT_BUILD, ignore_errors=True)
    project = bake_project(ROOT_BUILD)
    print(f"Baked {project.path} with the default answers.\n\n$ dvc repro", flush=True)
    status = subprocess.run([str(VENV_BIN / "dvc"), "repro"], cwd=project.path, env=project.env).returncode
    print("\nMetrics (all of them: `dvc metrics show` in the project):")
    for name, keys in HEADLINE.items():
        values = json.loads((project.path / name).read_text())
        print(f"  {name:<26}" + "  ".join(f"{key} {values[key]}" for key in keys))
    gate = json.loads((project.path / "metrics" / "gate.json").read_text())
    print(f"\nGate: {'PASSED' if gate['passed'] else 'FAILED'} ({gate['checks_total']} checks)")
    for check in gate["checks"]:
        mark = "ok  " if check["passed"] else "FAIL"
        print(f"  {mark} {check['name']}: {check['value']}" + (f" - {check['detail']}" if check["detail"] else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
