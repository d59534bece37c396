"""Hyper-parameter search (`train.search`): which `train` settings the final fit uses.

Each candidate is the `train` section with some of its keys replaced (`train.search.space`: every
combination for `grid`, `candidates` seeded draws for `random`), checked as params.yaml is (pydantic, then
the estimator's own checks) before any data is read. Each is scored by cross-validation on the task's main
metric (`core.MAIN_METRIC`, the learning curve's metric and folds) over a seeded sample of the train split,
stratified by class when classifying. The (candidate, fold) fits are independent jobs run through joblib:
on the Dask cluster when `compute.engine` is dask (each job fits a sample-sized model on one worker), on
local processes otherwise. The best mean score wins; of equal ones (as recorded, rounded), the first.

Writes `paths.search` (the method, metric, best score and settings, a DVC metric) and
`<paths.plots>/search.json` (one row per candidate, best first, a DVC plot), with stable bytes: the scores
are rounded and each job's fit is seeded, so the same data and params give the same files on either engine.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from joblib.externals.loky import get_reusable_executor
from pydantic import ValidationError
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, ParameterGrid, ParameterSampler, StratifiedKFold
from sklearn.pipeline import Pipeline

from .compute import dask_client, rows_per_partition
from .core import (
    MAIN_METRIC,
    Compute,
    Params,
    PipelineError,
    Task,
    Train,
    parquet_parts,
    read_parquet,
    rounded,
    sample_positions,
    write_json,
)
from .model import make_estimator, training_pipeline
from .schema import check_params, load_schema
from .task import encode_target, is_classification

PLOT_FILE = "search.json"  # under paths.plots


def cross_validation(task: Task, folds: int, seed: int) -> KFold | StratifiedKFold:
    """The folds of the learning curve and the search: shuffled and seeded, stratified by class when classifying."""
    splitter = StratifiedKFold if is_classification(task) else KFold
    return splitter(n_splits=folds, shuffle=True, random_state=seed)


# --- Candidates
def candidate_overrides(settings: Train) -> list[dict[str, Any]]:
    """Each candidate's replaced keys, in a fixed order: the grid's (scikit-learn's ParameterGrid), or the
    seeded draws without replacement of ParameterSampler (all of the grid when it has fewer combinations)."""
    search = settings.search
    grid = ParameterGrid(search.space)
    if search.method == "grid":
        return list(grid)
    return list(ParameterSampler(search.space, n_iter=min(search.candidates, len(grid)), random_state=search.seed))


def with_overrides(settings: Train, overrides: dict[str, Any]) -> Train:
    """`settings` with the dotted keys of `overrides` replaced (`estimator`, `lightgbm.num_leaves`, ...), checked
    as params.yaml's `train` section is."""
    raw = settings.model_dump(by_alias=True)
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        raw[section] = {**raw[section], name: value} if name else value
    try:
        return Train.model_validate(raw)
    except ValidationError as error:
        problem = error.errors()[0]
        key = ".".join(str(part) for part in problem["loc"])
        raise PipelineError(
            f"params.yaml: 'train.search.space' gives the candidate {overrides}, whose 'train.{key}' is "
            f"{problem['input']!r}: {problem['msg']}; fix or remove that value"
        ) from None


def candidate_model(settings: Train, frame: pd.DataFrame, target: str, task: Task) -> tuple[Pipeline, list[str]]:
    """The Pipeline `settings` train (preprocessing + estimator) for `frame`'s columns, and its feature columns."""
    features = frame.drop(columns=[target, *settings.exclude_columns], errors="ignore")
    estimator = make_estimator(settings.estimator, settings.hyperparameters, settings.seed, task)
    return training_pipeline(features, estimator), features.columns.tolist()


# --- Scoring
def fold_score(
    model: Pipeline, features: pd.DataFrame, labels: np.ndarray, train: np.ndarray, test: np.ndarray, metric: str
) -> float:
    """One job: a fresh copy of `model` fitted on the training fold, scored on the held-out fold.

    A module-level function of the package, so that Dask workers and loky processes import it by name."""
    fitted = clone(model).fit(features.iloc[train], labels[train])
    return float(get_scorer(metric)(fitted, features.iloc[test], labels[test]))


def fold_scores(
    models: list[tuple[Pipeline, list[str]]],
    frame: pd.DataFrame,
    labels: np.ndarray,
    task: Task,
    folds: int,
    seed: int,
    compute: Compute,
) -> np.ndarray:
    """Every candidate's score on every fold, as a (candidates, folds) array, run where `compute` says."""
    splits = list(cross_validation(task, folds, seed).split(np.zeros(len(labels)), labels))
    metric = MAIN_METRIC[task]
    jobs = [
        delayed(fold_score)(model, frame[columns], labels, train, test, metric)
        for model, columns in models
        for train, test in splits
    ]
    scores = _run(jobs, compute)
    return np.asarray(scores, dtype=float).reshape(len(models), len(splits))


def _run(jobs: list[Any], compute: Compute) -> list[float]:
    """The jobs on the Dask cluster (joblib's Dask backend) or on local processes (loky), in the jobs' order."""
    if compute.engine == "dask":
        with dask_client(compute), parallel_config(backend="dask"):
            return list(Parallel()(jobs))
    try:
        with parallel_config(backend="loky", n_jobs=-1):
            return list(Parallel()(jobs))
    finally:
        # the stage leaves with os._exit (see cli.run), which skips joblib's teardown: idle worker processes
        # would keep the stage's output streams open, and `dvc repro` waiting, for loky's 300 s idle timeout
        get_reusable_executor().shutdown(wait=True)


def ranked_table(overrides: list[dict[str, Any]], scores: np.ndarray) -> list[dict[str, Any]]:
    """One row per candidate, best first: rank (equal rounded means share a rank; the earlier candidate
    comes first), its replaced keys, and its mean and standard deviation over the folds."""
    means = [rounded(value) for value in scores.mean(axis=1)]
    order = sorted(range(len(means)), key=lambda index: (-means[index], index))
    rows: list[dict[str, Any]] = []
    for place, index in enumerate(order):
        tied = place > 0 and means[order[place - 1]] == means[index]
        rows.append(
            {
                "rank": rows[-1]["rank"] if tied else place + 1,
                "candidate": index + 1,
                "params": described(overrides[index]),
                "mean_score": means[index],
                "std_score": rounded(scores[index].std()),
            }
        )
    return rows


def described(overrides: dict[str, Any]) -> str:
    """A candidate's replaced keys as one label, e.g. `ridge.alpha=0.1` (the plot's axis)."""
    return ", ".join(f"{key}={value}" for key, value in sorted(overrides.items()))


# --- The search, as train runs it
def tuned(params: Params, progress: Callable[[str], object] = print) -> Train:
    """The `train` settings the final fit uses: params.yaml's as they are (method none), or the best
    candidate's. Writes the search's metric and plot files either way."""
    settings, paths, task = params.train, params.paths, params.data.task
    search = settings.search
    plot = paths.plots / PLOT_FILE
    summary: dict[str, Any] = {"method": search.method, "metric": MAIN_METRIC[task]}
    if search.method == "none":
        write_json({**summary, "candidates": 0, "best_score": None, "best_params": {}}, paths.search)
        write_json([], plot)
        return settings
    overrides = candidate_overrides(settings)
    candidates = [with_overrides(settings, candidate) for candidate in overrides]
    contract = load_schema(paths.contract)
    for candidate in candidates:  # e.g. exclude_columns must name the contract's columns
        check_params(params.model_copy(update={"train": candidate}), contract)
    frame, labels = search_sample(params)
    models = [candidate_model(candidate, frame, params.data.target, task) for candidate in candidates]
    scores = fold_scores(models, frame, labels, task, search.folds, search.seed, params.compute)
    table = ranked_table(overrides, scores)
    best = table[0]["candidate"] - 1
    write_json(
        {
            **summary,
            "candidates": len(candidates),
            "folds": search.folds,
            "sample_rows": len(frame),  # not "rows": evaluate's metrics name the test rows so
            "best_score": table[0]["mean_score"],
            "best_params": overrides[best],
        },
        paths.search,
    )
    write_json(table, plot)
    progress(
        f"train: {search.method} search of {len(candidates)} candidates x {search.folds} folds on {len(frame)} rows "
        f"({params.compute.engine}): best {MAIN_METRIC[task]} {table[0]['mean_score']} with {table[0]['params']}"
    )
    return candidates[best]


def search_sample(params: Params) -> tuple[pd.DataFrame, np.ndarray]:
    """The seeded sample the candidates are scored on, and its encoded target: at most `search.max_rows` rows of
    the train split, stratified by class when classifying, read one partition at a time."""
    path, data, search = params.paths.train, params.data, params.train.search
    classifying = is_classification(data.task)
    target = read_parquet(path, columns=[data.target])[data.target]
    labels = encode_target(target, data)
    kept = sample_positions(len(labels), search.max_rows, search.seed, labels if classifying else None)
    return rows_at(path, kept), labels[kept]


def rows_at(path: Path, positions: np.ndarray) -> pd.DataFrame:
    """The rows at sorted `positions` of a processed split (a file, or a folder of partitions read one by one,
    so the whole split is never in memory at once)."""
    import pyarrow.parquet as pq

    parts = parquet_parts(path)
    lengths = [pq.ParquetFile(part).metadata.num_rows for part in parts]
    chosen = rows_per_partition(positions, lengths)
    pieces = [pd.read_parquet(part).iloc[rows] for part, rows in zip(parts, chosen, strict=True)]
    return pd.concat(pieces, ignore_index=True)
