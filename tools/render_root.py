"""Render the template with its default answers and write the result over the root instance.

The template folder is the single source of truth; the root holds its default rendering so that
`dvc repro` runs here and this repository's CI shows metric diffs on its own pull requests.
Run `python -m tools.render_root` after changing the template; tests/test_root_instance.py fails
when the root and a fresh rendering differ.
"""

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from tools.bakery import bake

ROOT = Path(__file__).resolve().parents[1]
# Rendered files the root does not take: the template repository has its own of these.
NOT_IN_ROOT = (
    "README.md",
    "LICENSE",
    "Makefile",
    ".pre-commit-config.yaml",
    ".cruft.json",
    "tests",
    ".github",
    ".gitlab-ci.yml",
    ".dvc/cache",
    ".git",
)


def render_default(into: Path) -> Path:
    """The template baked with its defaults and no git repository; returns the project folder."""
    result = bake(into, init_git="no")
    if result.returncode != 0:
        sys.exit(f"rendering the template failed:\n{result.stderr}")
    (project,) = [child for child in into.iterdir() if child.is_dir()]
    return project


def instance_files(project: Path) -> list[Path]:
    """Paths, relative to the project, of the rendered files that the root instance holds."""
    files = [path.relative_to(project) for path in project.rglob("*") if path.is_file()]
    return sorted(
        path
        for path in files
        if not any(path == Path(excluded) or Path(excluded) in path.parents for excluded in NOT_IN_ROOT)
    )


def drift(project: Path, root: Path = ROOT) -> list[str]:
    """How the root differs from a fresh rendering: changed or missing files, and stale code files."""
    expected = instance_files(project)
    problems = [
        f"differs: {path}"
        for path in expected
        if not (root / path).is_file() or not filecmp.cmp(project / path, root / path, shallow=False)
    ]
    rendered_code = {path for path in expected if path.parts[0] == "src"}
    stale = sorted(
        path.relative_to(root) for path in (root / "src").rglob("*.py") if path.relative_to(root) not in rendered_code
    )
    return problems + [f"not in the template: {path}" for path in stale]


def restore_missing(project: Path) -> None:
    """Copy only the instance files the root lacks: in a fresh clone, the DVC-tracked sample data."""
    for path in instance_files(project):
        if not (ROOT / path).exists():
            (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(project / path, ROOT / path)
            print(f"restored {path}")


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        project = render_default(Path(scratch) / "out")
        if "--restore-missing" in sys.argv[1:]:
            restore_missing(project)
            return
        for stale in drift(project):
            if stale.startswith("not in the template: "):
                (ROOT / stale.removeprefix("not in the template: ")).unlink()
        for path in instance_files(project):
            (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(project / path, ROOT / path)
        print(f"root instance rendered from the template: {len(instance_files(project))} files")


if __name__ == "__main__":
    main()
