import shutil
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's params, schema and sample data in a temporary folder, made the working directory."""
    for name in ("params.yaml", "schema.yaml"):
        shutil.copy(PROJECT / name, tmp_path / name)
    shutil.copytree(PROJECT / "data" / "raw", tmp_path / "data" / "raw")
    monkeypatch.chdir(tmp_path)
    return tmp_path
