"""dvc.yaml declares, for each stage, exactly the source files its command runs.

When a stage module starts importing another module of the package, this test names the line to add
to that stage's `deps`, so that `dvc repro` re-runs the stage when that code changes.
"""

import ast
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "src" / "{{ cookiecutter.package_name }}"
STAGES = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]


def imported_modules(module: Path) -> set[Path]:
    """The package's modules that `module` imports, directly or through one another."""
    found, pending = set(), [module]
    while pending:
        tree = ast.parse(pending.pop().read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [alias.name for alias in node.names]
                for name in names:
                    path = PACKAGE / f"{name}.py"
                    if path.exists() and path not in found:
                        found.add(path)
                        pending.append(path)
    return found


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_list_exactly_the_code_it_runs(stage):
    command = STAGES[stage]["cmd"].split()
    module = PACKAGE / f"{command[1].replace('-', '_')}.py"
    expected = {module, *imported_modules(module)} - {PACKAGE / "__init__.py"}
    declared = {PROJECT / dep for dep in STAGES[stage]["deps"] if dep.startswith("src/")}
    assert sorted(map(str, declared)) == sorted(map(str, expected))
