"""Cold installs of the generated project's runtime lock into fresh virtual environments, pip against uv.

Neither may use a cache, so both download every file from the package index and check its hash:

    python -m benchmarks.install
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bakery import TEMPLATE, VENV_BIN

LOCK = TEMPLATE / "{{cookiecutter.project_slug}}" / "requirements.lock"
INSTALLERS = {
    "pip": lambda python: [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", "--no-deps", "-r"],
    "uv": lambda python: [
        str(VENV_BIN / "uv"),
        "pip",
        "install",
        "--quiet",
        "--no-cache",
        "--python",
        str(python),
        "-r",
    ],
}


def cold_install(installer: str, scratch: Path) -> float:
    venv = scratch / installer
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip" if installer == "uv" else "--upgrade-deps", str(venv)],
        check=True,
    )
    python = venv / "bin" / "python"
    start = time.perf_counter()
    subprocess.run([*INSTALLERS[installer](python), str(LOCK)], check=True)
    seconds = time.perf_counter() - start
    subprocess.run([str(python), "-c", "import dvc, evidently, pandas, sklearn"], check=True)
    return seconds


def main() -> None:
    packages = sum(1 for line in LOCK.read_text().splitlines() if line[:1].isalnum())
    with tempfile.TemporaryDirectory() as scratch:
        for installer in INSTALLERS:
            seconds = cold_install(installer, Path(scratch))
            print(f"{installer}: cold install of {packages} pinned packages, hashes checked, in {seconds:.1f} s")


if __name__ == "__main__":
    main()
