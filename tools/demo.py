"""Bake a project with the default answers into build/, run its whole pipeline, show the results.

What a new user sees after `cookiecutter <template>` and `dvc repro`; the exit status is the gate's.
"""

import shutil
import subprocess
import sys

from tools.bakery import ROOT_BUILD, VENV_BIN, bake_project


def step(title: str, project, *command: str) -> int:
    print(f"\n$ {' '.join(command)}    # {title}", flush=True)
    return subprocess.run(command, cwd=project.path, env=project.env).returncode


def main() -> int:
    shutil.rmtree(ROOT_BUILD, ignore_errors=True)
    project = bake_project(ROOT_BUILD)
    print(f"Baked {project.path} with the default answers.")
    dvc = str(VENV_BIN / "dvc")
    status = step("run the five stages", project, dvc, "repro")
    step("the metrics, from the files DVC tracks", project, dvc, "metrics", "show")
    verdict = step("the gate's verdict, from metrics/gate.json", project, project.slug, "gate")
    print("\nGate: PASSED" if verdict == 0 else "\nGate: FAILED (see the checks above)")
    return status or verdict


if __name__ == "__main__":
    sys.exit(main())
