"""Reading and writing the files stages hand to each other: Parquet data and JSON metrics."""

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import PipelineError


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.exists():
        raise PipelineError(f"{path} not found: run `dvc repro` so the earlier stages write it")
    return pd.read_parquet(path, columns=columns)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def read_json(path: Path) -> Any:
    if not path.exists():
        raise PipelineError(f"{path} not found: run `dvc repro` so the earlier stages write it")
    return json.loads(path.read_text())


def write_json(data: Any, path: Path) -> None:
    """Stable bytes for the same data: sorted keys, fixed indentation, trailing newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
