"""The pandas-free core every command shares: errors and exit statuses, typed params, files, checks.

- Errors: `PipelineError` is the one exception for problems a user can cause and fix; the exit
  statuses say what happened.
- Files: every write goes to an unnamed temporary file in the target's folder, which is given the
  target's name only when it is complete, so a stage killed part-way (even by SIGKILL) leaves neither
  a truncated file nor a temporary one behind. DVC deletes a stage's outputs before running it, so a
  stage that fails puts back, from DVC's cache, the outputs dvc.lock records for it
  (`restore_outputs`). Git and DVC run through one wrapper, `run_tool`.
- Checks: one record for every pass/fail check, shared by validate and gate, and how it is reported.
- Records: the JSON files one command writes and another reads (a check report, the production
  baseline), typed like the params, so a missing key is an error that names it, not a silent default.
- Params: params.yaml, typed. `load_params()` checks the whole file before a stage does any work, so
  a mistake is one line naming the key, the value and what is allowed, never a traceback half-way
  through a run. Keys that name columns are checked against the data contract by
  `schema.check_params`.

pandas, NumPy and scikit-learn are imported only inside the functions that need them: the gate
imports this module and nothing heavier.
"""

import errno
import hashlib
import json
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# --- Errors and exit statuses
PASSED = 0  # the command did its work; for the gate, every check passed
GATE_FAILED = 1  # the gate ran and a check failed: the candidate may not replace production
USER_ERROR = 2  # bad data, params, contract, files or remote: the message names the problem and its fix
INTERNAL_ERROR = 3  # a bug: the traceback is printed, to be reported
INTERRUPTED = 130  # Ctrl-C, as shells report it


class PipelineError(Exception):
    """Bad data, bad params, a missing file or remote: the message names the problem and its fix.

    The command line prints the message without a traceback and exits with USER_ERROR.
    """


class ChecksFailed(PipelineError):
    """A stage ran to the end and its verdict is a failure, written to its report (validate's checks).

    Its outputs are that report, so they are kept as written rather than restored.
    """


# --- Files
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
    """A Parquet file, or a folder of part.<n>.parquet files (the Dask engine's splits) in their numbers' order."""
    import pandas as pd  # here, not at the top: the gate reads only JSON and starts sooner without it

    parts = parquet_parts(path)
    if len(parts) == 1:
        return pd.read_parquet(parts[0], columns=columns)
    return pd.concat([pd.read_parquet(part, columns=columns) for part in parts], ignore_index=True)


def parquet_parts(path: Path) -> list[Path]:
    """A processed split's files in row order: the file itself, or a folder's part.<n>.parquet by number."""
    if not require(path).is_dir():
        return [path]
    parts = sorted(path.glob("part.*.parquet"), key=lambda part: int(part.name.split(".")[1]))
    if not parts:
        raise PipelineError(f"{path} holds no part.<n>.parquet files: run `dvc repro` to write it again")
    return parts


def write_parquet(frame: "pd.DataFrame", path: Path) -> None:
    with replaced_atomically(path) as handle:
        frame.to_parquet(handle, index=False)


def sample_positions(size: int, rows: int, seed: int, strata: "np.ndarray | None" = None) -> "np.ndarray":
    """Sorted positions of a seeded sample, without replacement, of `rows` of `size` rows (all if fewer).

    With `strata` (a label per row: a class, in any type), every stratum keeps its share of the
    sample, rounded by largest remainder so that the shares add up to `rows`. The one sampler behind
    the split, the drift samples, the reference, the learning curve and the robustness check.
    """
    import numpy as np  # here: the gate never samples

    if rows >= size:
        return np.arange(size)
    generator = np.random.default_rng(seed)
    if strata is None:
        return np.sort(generator.choice(size, size=rows, replace=False))
    # 0/1 labels are their own codes; sorting millions of them for np.unique would cost a second at 10M rows
    codes = strata if strata.dtype.kind in "iu" else np.unique(strata, return_inverse=True)[1]
    counts = np.bincount(codes)
    exact = counts * rows / size
    quota = np.floor(exact).astype(int)
    quota[np.argsort(quota - exact, kind="stable")[: rows - quota.sum()]] += 1
    chosen = [
        generator.choice(np.flatnonzero(codes == code), size=take, replace=False)
        for code, take in enumerate(quota)
        if take
    ]
    return np.sort(np.concatenate(chosen))


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


def write_with(save: Callable[[IO[bytes]], object], path: Path) -> None:
    """Write `path` with a library's own save function (e.g. joblib.dump into a file), atomically."""
    with replaced_atomically(path) as handle:
        save(handle)


def write_text(path: Path, text: str) -> None:
    write_with(lambda handle: handle.write(text.encode()), path)


def file_md5(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def locked_outputs(stage: str | None = None, lock_file: Path = LOCK_FILE) -> dict[Path, str]:
    """The md5 that dvc.lock records for each output of `stage` (of every stage when None)."""
    if not lock_file.is_file():
        return {}
    return outputs_in_lock(lock_file.read_text(), stage)


def outputs_in_lock(text: str, stage: str | None = None) -> dict[Path, str]:
    """The md5 of each output of `stage` (every stage when None) in a dvc.lock's text, e.g. one at a git tag."""
    stages = (yaml.safe_load(text) or {}).get("stages") or {}
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


def run_tool(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
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


# --- Checks
EXAMPLES_SHOWN = 3


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: Any = None
    threshold: Any = None
    column: str | None = None
    detail: str = ""

    def line(self) -> str:
        """One line a person reads: what failed, the value against its threshold, and how to fix it."""
        where = f"column '{self.column}': " if self.column else ""
        measured = "" if self.value is None else f" (value {self.value}, threshold {self.threshold})"
        detail = f" - {self.detail}" if self.detail else ""
        return f"{where}{self.name}{measured}{detail}"


def report(checks: Iterable[Check]) -> dict[str, Any]:
    """The JSON body of a metrics file: overall verdict, counts, and every check."""
    checks = list(checks)
    failed = [check for check in checks if not check.passed]
    return {
        "passed": not failed,
        "checks_total": len(checks),
        "checks_failed": len(failed),
        "checks": [asdict(check) for check in checks],
    }


def failure_lines(checks: Iterable[Check]) -> list[str]:
    return [check.line() for check in checks if not check.passed]


EXAMPLE_ROWS = 100  # the first rows that break a check, of which `examples` shows a few


def examples(values: "pd.Series") -> str:
    """A few distinct values of a column, sorted, for a message that shows what broke a check."""
    shown = sorted({str(value) for value in values.head(EXAMPLE_ROWS)})[:EXAMPLES_SHOWN]
    return ", ".join(repr(value) for value in shown)


# --- Params
PARAMS_FILE = Path("params.yaml")
Model = TypeVar("Model", bound=BaseModel)

Fraction = Annotated[float, Field(ge=0, le=1)]
OpenFraction = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0)]
ByteSize = Annotated[str, Field(pattern=r"^\d+(\.\d+)?\s*[kKMGT]i?B$")]  # as Dask writes them: 64MB, 500kB, 4GiB
Task = Literal["binary", "multiclass", "regression"]
# Metrics where smaller is better: the gate's comparison and the report's marks turn around for them. Here, not
# in task.py, so that the gate reads it without importing pandas and scikit-learn.
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape", "log_loss", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"})
# The metric each task is judged by first: the learning curve's and the default robustness metric. Each is
# also a scikit-learn scorer name and a key of evaluate's metrics. Here too, so the report imports nothing heavier.
MAIN_METRIC: dict[Task, str] = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "r2"}
# Each task's headline metrics: evaluate's summary line names them, and the report marks a change in one better
# or worse by its own direction (LOWER_IS_BETTER) even where no gate check reads it.
HEADLINE_METRICS: dict[Task, tuple[str, ...]] = {
    "binary": ("accuracy", "f1", "roc_auc"),
    "multiclass": ("accuracy", "f1_macro", "f1_weighted", "roc_auc_ovr", "log_loss"),
    "regression": ("mae", "rmse", "r2", "mape"),
}


class Section(BaseModel):
    """A section of params.yaml: unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Paths(Section):
    raw: Path
    contract: Path = Field(alias="schema")
    train: Path
    test: Path
    model: Path
    learning_curve: Path
    search: Path
    validation: Path
    evaluation: Path
    latency: Path
    fairness: Path
    robustness: Path
    predictions: Path
    gate: Path
    baseline: Path
    reference: Path
    drift_report: Path
    plots: Path
    monitoring: Path
    canary_decision: Path
    incoming: Path


class Data(Section):
    task: Task
    target: Annotated[str, Field(min_length=1)]
    positive_class: str | int | float | None = None  # binary only
    csv_delimiter: Annotated[str, Field(pattern=r"^(auto|.)$")]  # one character, or auto: sniffed
    csv_decimal: Literal[".", ","] = "."

    @model_validator(mode="after")
    def _positive_class_fits_the_task(self) -> "Data":
        if self.task == "binary" and self.positive_class is None:
            raise ValueError("a binary task needs data.positive_class: the target's label that counts as positive")
        if self.task != "binary" and self.positive_class is not None:
            raise ValueError(f"data.positive_class is for binary tasks; remove it for data.task: {self.task}")
        return self


class ValidateSettings(Section):
    drift_psi_max: Positive
    drifted_share_max: Fraction
    psi_bins: Annotated[int, Field(ge=2, le=1000)]
    sample_rows: Annotated[int, Field(ge=10)]
    reference_rows: Annotated[int, Field(ge=10)]
    seed: Seed


class Split(Section):
    test_size: OpenFraction
    seed: Seed


class LearningCurve(Section):
    train_sizes: Annotated[list[Annotated[float, Field(gt=0, le=1)]], Field(min_length=1)]
    folds: Annotated[int, Field(ge=2, le=20)]
    max_rows: Annotated[int, Field(ge=20)]


Hyperparameters = dict[str, Any]
Estimator = Literal[
    "hist_gradient_boosting", "random_forest", "logistic_regression", "gradient_boosting", "ridge", "lightgbm"
]
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
# The keys of `train` a search may vary: the estimator, its seed, its features, and each estimator's
# hyper-parameters as `<estimator>.<name>` (learning_curve and search itself change no model)
SEARCHABLE = ("estimator", "seed", "exclude_columns")


class Search(Section):
    """Hyper-parameter search: each candidate is `train` with some keys replaced, scored by cross-validation."""

    method: Literal["none", "grid", "random"]
    space: dict[str, Annotated[list[Any], Field(min_length=1)]]  # dotted `train.*` keys -> values to try
    candidates: Count  # random: how many draws from the space (a grid tries every combination)
    folds: Annotated[int, Field(ge=2, le=20)]
    max_rows: Annotated[int, Field(ge=20)]  # a seeded sample (stratified when classifying) keeps the search cheap
    seed: Seed

    @field_validator("space")
    @classmethod
    def _keys_are_train_keys(cls, space: dict[str, list[Any]]) -> dict[str, list[Any]]:
        wrong = sorted(key for key in space if not _searchable(key))
        if wrong:
            raise ValueError(
                f"{wrong} are not train keys a search can vary: use {list(SEARCHABLE)} or "
                "<estimator>.<hyper-parameter>, e.g. hist_gradient_boosting.learning_rate"
            )
        return space


def _searchable(key: str) -> bool:
    section, _, name = key.partition(".")
    return key in SEARCHABLE or (section in ESTIMATORS and bool(name) and "." not in name)


class Compute(Section):
    """Where the stages run. `engine` and `partition_size` can change what a stage writes, so dvc.yaml lists them;
    the cluster's address and the local cluster's size cannot, so changing them re-runs nothing."""

    engine: Literal["local", "dask"]
    scheduler: str  # a Dask scheduler's address, e.g. tcp://10.0.0.5:8786 (DASK_SCHEDULER_ADDRESS overrides it)
    partition_size: ByteSize  # raw CSV bytes per partition (dask)
    local_workers: Annotated[int, Field(ge=1, le=256)]  # with no address: a LocalCluster of this many workers,
    worker_memory: ByteSize  # each limited to this much memory


class Train(Section):
    estimator: Estimator
    seed: Seed
    exclude_columns: list[str]
    learning_curve: LearningCurve
    search: Search
    random_forest: Hyperparameters = {}
    logistic_regression: Hyperparameters = {}
    gradient_boosting: Hyperparameters = {}
    hist_gradient_boosting: Hyperparameters = {}
    ridge: Hyperparameters = {}
    lightgbm: Hyperparameters = {}

    @property
    def hyperparameters(self) -> Hyperparameters:
        """The chosen estimator's hyper-parameters, as params.yaml gives them."""
        return getattr(self, self.estimator)


class Fairness(Section):
    sensitive: list[str]


class Robustness(Section):
    metric: Annotated[str, Field(min_length=1)]
    seed: Seed
    noise_scale: Annotated[float, Field(ge=0, le=10)]
    missing_rate: Fraction
    swap_rate: Fraction
    max_rows: Annotated[int, Field(ge=10)]


class Evaluate(Section):
    decision_threshold: Fraction
    latency_rows: Annotated[int, Field(ge=1, le=100_000)]
    latency_repeats: Annotated[int, Field(ge=1, le=50)]
    fairness: Fairness
    robustness: Robustness


class Comparison(Section):
    metric: Annotated[str, Field(min_length=1)]
    min_ratio: Positive


class DataQuality(Section):
    missing_rate_max: Fraction


class GateFairness(Section):
    # a gap in rates for classification; a gap in MAE, in the target's units, for regression
    max_gap: Annotated[float, Field(ge=0)]


class GateRobustness(Section):
    # in the robustness metric's units: a fraction for a rate or R², the target's units for a neg_* error scorer
    max_drop: Annotated[float, Field(ge=0)]


class Gate(Section):
    performance: dict[str, float]
    comparison: Comparison
    data_quality: DataQuality
    fairness: GateFairness
    robustness: GateRobustness

    @field_validator("performance")
    @classmethod
    def _bounds_are_named(cls, thresholds: dict[str, float]) -> dict[str, float]:
        wrong = sorted(key for key in thresholds if not key.endswith(("_min", "_max")))
        if wrong:
            raise ValueError(f"{wrong}: threshold keys are <metric>_min or <metric>_max, e.g. f1_min")
        return thresholds


class Serve(Section):
    """The model service and batch scoring; read by no DVC stage, so changing them re-runs nothing."""

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)]
    workers: Annotated[int, Field(ge=1, le=64)]
    max_rows: Annotated[int, Field(ge=1, le=100_000)]
    max_body_bytes: Annotated[int, Field(ge=1024)]
    graceful_shutdown_seconds: Annotated[float, Field(ge=0, le=600)]
    prediction_log: Path
    log_url: str
    batch_rows: Annotated[int, Field(ge=1, le=10_000_000)]
    canary_share: Fraction
    routing_seed: Seed


class Monitor(Section):
    """Thresholds of `monitor` (each breach is an alert) and `canary-decide`; read by no DVC stage."""

    min_requests: Count
    error_rate_max: Fraction
    latency_p99_ms_max: Positive
    positive_rate_max_gap: Fraction  # binary
    class_share_max_gap: Fraction  # multiclass
    prediction_mean_max_shift: Positive  # regression, in standard deviations of the evaluation's predictions
    drift_psi_max: Positive
    drifted_share_max: Fraction
    min_labelled: Count
    f1_min: Fraction  # classification (macro F1 for multiclass)
    accuracy_min: Fraction  # classification
    mae_max: Positive | None  # regression, in the target's units; null: not judged
    significance: OpenFraction


class Retrain(Section):
    """When `retrain-check` calls for a retraining; read by no DVC stage."""

    max_age_days: Positive
    min_new_rows: Count
    on_monitor_alert: bool


class Params(Section):
    paths: Paths
    data: Data
    validation: ValidateSettings = Field(alias="validate")
    split: Split
    compute: Compute
    train: Train
    evaluate: Evaluate
    gate: Gate
    serve: Serve
    monitor: Monitor
    retrain: Retrain

    @model_validator(mode="after")
    def _dask_trains_lightgbm(self) -> "Params":
        if self.compute.engine == "dask" and self.train.estimator != "lightgbm":
            raise ValueError(
                f"compute.engine dask trains across the workers with LightGBM, and train.estimator is "
                f"{self.train.estimator}: set train.estimator: lightgbm, or compute.engine: local"
            )
        return self

    @model_validator(mode="after")
    def _dask_searches_lightgbm(self) -> "Params":
        others = sorted({str(name) for name in self.train.search.space.get("estimator", [])} - {"lightgbm"})
        if self.compute.engine == "dask" and self.train.search.method != "none" and others:
            raise ValueError(
                f"compute.engine dask trains LightGBM, and train.search.space.estimator also tries {others}: "
                "search only lightgbm there, or use compute.engine: local"
            )
        return self


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Every param, typed and checked; a PipelineError with one line per mistake otherwise."""
    if not path.is_file():
        raise PipelineError(f"{path} not found: run the command from the project's root folder")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from None
    return validated(Params, raw, path)


def validated(model: type[Model], raw: Any, path: Path) -> Model:
    """`raw` as `model`, or a PipelineError listing each wrong key with its value and what is allowed."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{path} must hold a mapping of keys to values, not {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        lines = [_error_line(path, problem) for problem in error.errors()]
        raise PipelineError("\n  ".join(lines)) from None


def _error_line(path: Path, problem: Any) -> str:
    key = ".".join(str(part) for part in problem["loc"])
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "missing":
        return f"{path}: '{key}' is missing: add it (see the README's param table)"
    if problem["type"] == "extra_forbidden":
        return f"{path}: '{key}' is not a known key: remove it or fix its spelling"
    if problem["type"] == "value_error":  # a check across keys: the message names the values
        return f"{path}: '{key}': {message}" if key else f"{path}: {message}"
    value = repr(problem["input"])
    return f"{path}: '{key}' is {value if len(value) <= 80 else value[:77] + '...'}: {message}"


# --- Records
class Record(BaseModel):
    """A JSON file one command writes and another reads: a missing or mistyped key is an error naming it."""

    model_config = ConfigDict(frozen=True)


class CheckReport(Record):
    """A verdict file of checks (validate's, the gate's), as `report` writes it."""

    passed: bool
    checks_total: int
    checks_failed: int
    checks: list[Check]


class Promotion(Record):
    """production/baseline.json once a model is promoted (`promote` writes it): the production model."""

    artifact: str
    version: str
    model_md5: str
    source_commit: str
    metrics: dict[str, Any]  # evaluate's metrics file as it was at the promotion


def read_report(path: Path) -> CheckReport:
    return validated(CheckReport, read_json(path), path)


def read_baseline(path: Path) -> Promotion | None:
    """The production model's record; None before the first promotion, when the file's metrics are null."""
    raw = read_json(path)
    if isinstance(raw, dict) and "metrics" in raw and raw["metrics"] is None:
        return None
    return validated(Promotion, raw, path)
