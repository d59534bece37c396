"""Reading and writing the files stages hand to each other: Parquet data, JSON metrics, the model.

Every write goes to a temporary file beside the target and is renamed over it when complete, so a
stage that is killed part-way never leaves a truncated file where a good one was.
"""

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd


@contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A temporary path to write to; it replaces `path` only if the block finishes without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def require(path: Path) -> Path:
    if not path.exists():
        raise PipelineError(f"{path} not found: run `dvc repro` so the earlier stages write it")
    return path


def read_parquet(path: Path, columns: list[str] | None = None) -> "pd.DataFrame":
    import pandas as pd  # here, not at the top: the gate reads only JSON and starts 0.25 s sooner without it

    return pd.read_parquet(require(path), columns=columns)


def write_parquet(frame: "pd.DataFrame", path: Path) -> None:
    with replaced_atomically(path) as partial:
        frame.to_parquet(partial, index=False)


def read_json(path: Path) -> Any:
    return json.loads(require(path).read_text())


def write_json(data: Any, path: Path) -> None:
    """Stable bytes for the same data: sorted keys, fixed indentation, trailing newline."""
    with replaced_atomically(path) as partial:
        partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_with(save: Callable[[Path], None], path: Path) -> None:
    """Write `path` with a library's own save function (e.g. joblib.dump), atomically."""
    with replaced_atomically(path) as partial:
        save(partial)
