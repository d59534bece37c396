"""Reading and writing the files stages hand to each other: Parquet data, JSON metrics, the model.

Every write goes to an unnamed temporary file in the target's folder, which is given the target's
name only when it is complete: a stage killed part-way (even by SIGKILL) leaves neither a truncated
file nor a temporary one behind. DVC deletes a stage's outputs before running it, so a stage that
fails puts back, from DVC's cache, the outputs dvc.lock records for it: see `restore_outputs`.
"""

import errno
import hashlib
import json
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from .errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

LOCK_FILE = Path("dvc.lock")
DIGITS = 6  # decimals every recorded figure keeps: finer than any real difference, and stable bytes in git


def rounded(value: float) -> float:
    """A figure as the metrics files record it."""
    return round(float(value), DIGITS)


@contextmanager
def replaced_atomically(path: Path) -> Iterator[IO[bytes]]:
    """A binary file to write; it replaces `path` only if the block finishes without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = _unnamed_file(path.parent)
    if descriptor is None:
        with _named_partial(path) as handle:
            yield handle
        return
    with os.fdopen(descriptor, "wb") as handle:
        yield handle
        handle.flush()
        named = path.with_name(f".{path.name}.{os.getpid()}.partial")
        folder = os.open(path.parent, os.O_RDONLY)
        try:  # a directory descriptor makes Python call linkat(AT_SYMLINK_FOLLOW), which names the unnamed file
            os.link(f"/proc/self/fd/{descriptor}", named, src_dir_fd=folder, follow_symlinks=True)
        finally:
            os.close(folder)
        os.replace(named, path)


def _unnamed_file(folder: Path) -> int | None:
    """A file in `folder` with no name, which vanishes if the process dies; None where the system has none."""
    try:
        return os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o644)
    except AttributeError:  # not Linux
        return None
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):  # a file system without it
            return None
        raise


@contextmanager
def _named_partial(path: Path) -> Iterator[IO[bytes]]:
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def require(path: Path) -> Path:
    if not path.exists():
        raise PipelineError(f"{path} not found: run `dvc repro` so the earlier stages write it")
    return path


def read_parquet(path: Path, columns: list[str] | None = None) -> "pd.DataFrame":
    import pandas as pd  # here, not at the top: the gate reads only JSON and starts sooner without it

    return pd.read_parquet(require(path), columns=columns)


def write_parquet(frame: "pd.DataFrame", path: Path) -> None:
    with replaced_atomically(path) as handle:
        frame.to_parquet(handle, index=False)


def read_json(path: Path) -> Any:
    return json.loads(require(path).read_text())


def write_json(data: Any, path: Path) -> None:
    """Stable bytes for the same data (sorted keys, fixed indentation), and strict JSON: no NaN or Infinity."""
    _refuse_non_finite(data, path, [])
    with replaced_atomically(path) as handle:
        handle.write((json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())


def _refuse_non_finite(data: Any, path: Path, keys: list[str]) -> None:
    if isinstance(data, float) and not math.isfinite(data):
        raise PipelineError(
            f"{path}: '{'.'.join(keys)}' came out {data}, which is not a number: that measure is undefined "
            "for this data (one class in the labels? a constant column?); nothing was written"
        )
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        _refuse_non_finite(value, path, [*keys, str(key)])


def write_with(save: Callable[[IO[bytes]], None], path: Path) -> None:
    """Write `path` with a library's own save function (e.g. joblib.dump into a file), atomically."""
    with replaced_atomically(path) as handle:
        save(handle)


def file_md5(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def locked_outputs(stage: str | None = None, lock_file: Path = LOCK_FILE) -> dict[Path, str]:
    """The md5 that dvc.lock records for each output of `stage` (of every stage when None)."""
    if not lock_file.is_file():
        return {}
    stages = (yaml.safe_load(lock_file.read_text()) or {}).get("stages") or {}
    chosen = [stages.get(stage) or {}] if stage else list(stages.values())
    return {Path(out["path"]): out["md5"] for entry in chosen for out in entry.get("outs", [])}


def restore_outputs(outputs: dict[Path, str]) -> list[Path]:
    """Put back, from DVC's cache, each of a stage's `outputs` (path: md5 in dvc.lock) that no longer
    matches its md5; returns those it restored.

    DVC deletes a stage's outputs before it runs the stage, and records new hashes only when the stage
    succeeds, so after a failure dvc.lock still names the last good outputs. Those that DVC caches are
    copied back; those kept in git (metrics, plots) are declared `persist: true`, so DVC never deletes them.
    """
    from dvc.repo import Repo  # only on the failure path: DVC's import costs half a second

    restored = []
    with Repo(".") as repo:
        cache = repo.cache.local
        for path, md5 in outputs.items():
            if md5.endswith(".dir"):
                restored += _restore_directory(path, Path(cache.oid_to_path(md5)), cache.oid_to_path)
            elif _restore_file(path, md5, Path(cache.oid_to_path(md5))):
                restored.append(path)
    return restored


def _restore_directory(directory: Path, manifest: Path, cached: Callable[[str], str]) -> list[Path]:
    if not manifest.is_file():
        return []
    entries = json.loads(manifest.read_text())
    wanted = {directory / entry["relpath"] for entry in entries}
    if directory.is_dir():
        for stray in [path for path in directory.rglob("*") if path.is_file() and path not in wanted]:
            stray.unlink()  # written by the failed run: not part of the last good output
    changed = [_restore_file(directory / e["relpath"], e["md5"], Path(cached(e["md5"]))) for e in entries]
    return [directory] if any(changed) else []


def _restore_file(path: Path, md5: str, cached: Path) -> bool:
    """Copy the cached object to `path` unless `path` already holds it; False when nothing was copied."""
    if not cached.is_file() or (path.is_file() and file_md5(path) == md5):
        return False
    with replaced_atomically(path) as handle, cached.open("rb") as source:
        shutil.copyfileobj(source, handle)
    return True


def run_tool(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """A git or dvc command with its output captured; with `check`, a failure is a PipelineError quoting it."""
    try:
        result = subprocess.run(list(args), capture_output=True, text=True)
    except FileNotFoundError:
        raise PipelineError(
            f"`{args[0]}` is not on PATH: activate the project's environment (`. .venv/bin/activate`) first"
        ) from None
    if check and result.returncode != 0:
        raise PipelineError(f"{' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
    return result


def git(*args: str) -> str:
    return run_tool("git", *args).stdout


def dvc(*args: str) -> str:
    return run_tool("dvc", *args).stdout
