"""Stage 3: fit one Pipeline (preprocessing + estimator) on the train split and save it.

Also logs a learning curve in DVCLive's format, for `dvc plots` and DVC Studio: the task's main metric
(ROC AUC, macro F1 or R², `core.MAIN_METRIC`), cross-validated on the training split at growing
training-set sizes. A gap between the training and validation curves
that does not close says the model needs more data or less capacity.

`compute.engine: dask` trains LightGBM across the cluster's workers (`fit_on_cluster`) and saves the same
kind of artifact as the local engine: one local scikit-learn Pipeline, preprocessing and model together.
Two runs on the same cluster write the same model file. It is not bitwise the local engine's model when the
train split has several partitions: each worker finds the bins of its features from its own rows (on the
800-row sample in two partitions, test ROC AUC 0.764 against 0.771 locally); on one partition it is.
"""

import json
import pickle
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import learning_curve
from sklearn.pipeline import Pipeline

from .core import (
    MAIN_METRIC,
    Data,
    LearningCurve,
    Params,
    PipelineError,
    Task,
    load_params,
    read_parquet,
    read_report,
    rounded,
    sample_positions,
    write_text,
)
from .model import features_and_labels, make_estimator, save_model, training_pipeline
from .schema import check_params, load_schema
from .search import cross_validation, tuned
from .task import is_classification

if TYPE_CHECKING:
    from distributed import Client, Future


# --- Learning curve
def log_learning_curve(
    model: Pipeline,
    features: pd.DataFrame,
    labels: np.ndarray,
    settings: LearningCurve,
    seed: int,
    task: Task,
    directory: Path,
) -> None:
    """One step per training-set size: the task's main metric on the training and validation folds, and the size.

    The curve's many fits use a sample of at most `max_rows` rows (stratified by class when classifying):
    its shape is a diagnosis, and the full data would make it cost several times the training run itself.
    """
    classifying = is_classification(task)
    kept = sample_positions(len(features), settings.max_rows, seed, labels if classifying else None)
    features, labels = features.iloc[kept], labels[kept]
    metric = MAIN_METRIC[task]
    sizes, train_scores, validation_scores = learning_curve(
        model,
        features,
        labels,
        train_sizes=settings.train_sizes,
        cv=cross_validation(task, settings.folds, seed),
        scoring=metric,
    )
    steps = [
        {
            "train_rows": int(size),
            f"train/{metric}": rounded(train.mean()),
            f"validation/{metric}": rounded(validation.mean()),
        }
        for size, train, validation in zip(sizes, train_scores, validation_scores, strict=True)
    ]
    write_dvclive_steps(steps, directory)


def write_dvclive_steps(steps: list[dict[str, float]], directory: Path) -> None:
    """The files DVCLive writes for these steps, byte for byte (a test compares them with DVCLive's own).

    One TSV per metric under plots/metrics/ (a "/" in a name is a folder), read by `dvc plots`, the VS
    Code extension and DVC Studio; the last step, nested by the same folders, as metrics.json. Written
    here rather than by DVCLive, which imports DVC and opens the repository to write them: about 1 s of
    every training run, a tenth of the sample's whole `dvc repro`.
    """
    shutil.rmtree(directory, ignore_errors=True)  # a metric dropped from the steps leaves no stale file
    for name in steps[0]:
        lines = [f"step\t{name.rsplit('/', 1)[-1]}"] + [f"{step}\t{values[name]}" for step, values in enumerate(steps)]
        write_text(directory / "plots" / "metrics" / f"{name}.tsv", "\n".join(lines) + "\n")
    summary: dict[str, Any] = {}
    for name, value in steps[-1].items():
        *folders, leaf = name.split("/")
        nested = summary
        for folder in folders:
            nested = nested.setdefault(folder, {})
        nested[leaf] = value
    summary["step"] = len(steps) - 1
    write_text(directory / "metrics.json", json.dumps(summary, indent=4) + "\n")


@dataclass(frozen=True)
class Fitted:
    model: Pipeline
    rows: int
    curve_features: pd.DataFrame  # the learning curve's rows: all of them (local), or its sample (dask)
    curve_labels: np.ndarray


def fit_here(params: Params, estimator: BaseEstimator) -> Fitted:
    frame = read_parquet(params.paths.train)
    features, labels = features_and_labels(frame, params.data, params.train.exclude_columns)
    model = training_pipeline(features, estimator)
    model.fit(features, labels)
    return Fitted(model, len(frame), features, labels)


# --- The Dask engine
def fit_on_cluster(params: Params, estimator: BaseEstimator) -> Fitted:
    """LightGBM trained across the workers, saved as the local engine's kind of Pipeline.

    The preprocessing is fitted on the first partition: LightGBM's label codes are those of each column's
    categorical dtype, which every partition shares (checked on each one), and numbers pass through. Each
    partition is read and transformed on its worker, the i-th one (sorted by address) modulo their count, so
    every run gives LightGBM the same rows on the same machine and, with `deterministic`, the same model. The
    learning curve uses the local engine's seeded sample, gathered to this process.
    """
    import operator

    from dask import delayed

    from .compute import dask_client, gathered_from, read_partitions, rows_at_positions

    settings, data, excluded = params.train, params.data, params.train.exclude_columns
    with dask_client(params.compute) as client:
        frame = read_partitions(params.paths.train)
        parts = frame.to_delayed()
        homes = partition_homes(client, len(parts))
        columns = frame._meta.drop(columns=[data.target, *excluded], errors="ignore")  # the dtypes, no rows
        unfitted = training_pipeline(columns, estimator)
        fitting = delayed(fitted_preparation)(parts[0], unfitted, data, excluded)
        fitted = client.compute(fitting, workers=[homes[0]], allow_other_workers=False)
        (preparation,) = gathered_from(client, [fitted], homes[:1], "the preprocessing was fitted")
        shared = client.scatter(preparation, broadcast=True)
        prepared = [
            client.compute(
                delayed(prepared_partition)(part, shared, data, excluded), workers=[home], allow_other_workers=False
            )
            for part, home in zip(parts, homes, strict=True)
        ]
        # the target, a few bytes a row, comes here for the class check and the learning curve's sample
        label_parts = gathered_from(
            client,
            [_on(client, home, operator.getitem, part, 1) for part, home in zip(prepared, homes, strict=True)],
            homes,
            "the partitions were prepared",
        )
        if is_classification(data.task):
            _require_every_class_on_every_worker(label_parts, homes)
        learner = _fit_lightgbm(client, estimator, prepared, homes)
        model = _canonical(Pipeline([("features", preparation), ("estimator", learner)]))
        labels = np.concatenate(label_parts)
        kept = sample_positions(
            len(labels),
            settings.learning_curve.max_rows,
            settings.seed,
            labels if is_classification(data.task) else None,
        )
        sample = rows_at_positions(frame, [len(part) for part in label_parts], kept)
    features, _ = features_and_labels(sample, data, excluded)
    return Fitted(model, len(labels), features, labels[kept])


def _canonical(model: Pipeline) -> Pipeline:
    """The model once through pickle: parts unpickled from the workers share equal strings in an order that
    varies between runs, and the model file would too; after one round trip it is the same every time."""
    return pickle.loads(pickle.dumps(model))


def partition_homes(client: "Client", partitions: int) -> list[str]:
    """The worker each partition is read and kept on: the i-th of the sorted addresses, modulo their count."""
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    return [workers[number % len(workers)] for number in range(partitions)]


def _on(client: "Client", worker: str, function: Any, *arguments: Any) -> "Future":
    return client.submit(function, *arguments, workers=[worker], allow_other_workers=False)


def _fit_lightgbm(
    client: "Client", estimator: BaseEstimator, prepared: list["Future"], homes: list[str]
) -> BaseEstimator:
    """LightGBM trained on the workers together (data-parallel, over its own network), as one local estimator.

    Each worker stacks its partitions into one block, in partition order, and trains on it; LightGBM's ranks
    follow the sorted worker addresses, so every run gives each rank the same rows and, with `deterministic`,
    the same model. This is what lightgbm.dask's estimators do, except that they rank the workers in the
    order of a set of task keys, which changes from run to run and with it the model (bins are drawn per rank).
    """
    from .compute import finished_on, gathered_from

    workers = list(dict.fromkeys(homes))  # sorted, as `partition_homes` assigns them
    blocks = [
        _on(client, worker, stacked, [part for part, home in zip(prepared, homes, strict=True) if home == worker])
        for worker in workers
    ]
    finished_on(client, blocks, workers, "the partitions were stacked")
    prepared.clear()  # each worker holds its block now: the partitions' copies would only take its memory
    ports = client.run(free_port, workers=workers)
    machines = ",".join(f"{urlparse(worker).hostname}:{ports[worker]}" for worker in workers)
    threads = {address: info["nthreads"] for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}
    network = {
        "tree_learner": "data",
        "machines": machines,
        "num_machines": len(workers),
        "time_out": 120,
        # LightGBM drops the features no leaf of `min_child_samples` rows could split, judging by each machine's
        # own rows: a worker with few of them would drop every feature and the model would learn nothing
        "feature_pre_filter": len(workers) == 1,
    }
    models = gathered_from(
        client,
        [
            _on(
                client,
                worker,
                trained_block,
                block,
                estimator,
                {**network, "local_listen_port": ports[worker], "n_jobs": threads[worker]},
                rank == 0,
            )
            for rank, (worker, block) in enumerate(zip(workers, blocks, strict=True))
        ],
        workers,
        "LightGBM trained",
    )
    model = models[0]
    model.set_params(n_jobs=estimator.get_params()["n_jobs"])  # the saved model predicts with the local default
    return _without_network_settings(model)


def free_port() -> int:
    """A port free on this worker's machine for LightGBM to listen on (runs on each worker)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("", 0))
        return int(listener.getsockname()[1])


def trained_block(
    block: tuple[np.ndarray, np.ndarray], estimator: BaseEstimator, network: dict[str, Any], keep: bool
) -> BaseEstimator | None:
    """This worker's share of the training (runs on each worker at once): the model on the first rank, else None."""
    model = clone(estimator).set_params(**network)
    model.fit(*block)
    return model if keep else None


def stacked(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Prepared partitions (features, labels) as one block, in their order."""
    return np.vstack([features for features, _ in parts]), np.concatenate([labels for _, labels in parts])


def fitted_preparation(partition: pd.DataFrame, unfitted: Pipeline, data: Data, excluded: list[str]) -> BaseEstimator:
    """The Pipeline's preprocessing step, fitted on one partition (runs on a worker)."""
    features, labels = features_and_labels(partition, data, excluded)
    return unfitted.named_steps["features"].fit(features, labels)


def prepared_partition(
    partition: pd.DataFrame, preparation: BaseEstimator, data: Data, excluded: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """One partition as LightGBM learns it: the transformed features and the encoded target (runs on a worker).

    Refuses a partition whose labels differ from those the codes were fitted with: its codes would mean
    other labels."""
    features, labels = features_and_labels(partition, data, excluded)
    for name, known in _label_codes(preparation).items():
        if sorted(features[name].cat.categories) != list(known):
            raise PipelineError(
                f"the train split's partitions disagree on the labels of '{name}': run `dvc repro -f preprocess` "
                "so that every partition carries the same categories"
            )
    return preparation.transform(features), labels


def _label_codes(preparation: BaseEstimator) -> dict[str, pd.Index]:
    """Each categorical column's coded labels, in the fitted preprocessing step."""
    for name, transformer, columns in preparation.transformers_:
        if name == "categorical" and len(columns):
            return dict(zip(columns, transformer.categories_, strict=True))
    return {}


NETWORK_SETTINGS = ("machines", "local_listen_port", "num_machines", "time_out")


def _without_network_settings(model: Any) -> Any:
    """The model with the cluster's ports forgotten: LightGBM records, among the settings it was trained with, the
    random ports its workers talked on, which would make every run's model file differ. They play no part in
    predicting. (lightgbm.dask drops them from the estimator's parameters, but not from its attributes or the
    booster's.)"""
    import lightgbm

    for name in NETWORK_SETTINGS:
        model.__dict__.pop(name, None)
        model._other_params.pop(name, None)
    settings = tuple(f"[{name}: " for name in NETWORK_SETTINGS)
    text = model.booster_.model_to_string()
    model._Booster = lightgbm.Booster(
        model_str="\n".join(line for line in text.split("\n") if not line.startswith(settings))
    )
    return model


def _require_every_class_on_every_worker(label_parts: list[np.ndarray], homes: list[str]) -> None:
    """LightGBM's Dask classifier encodes the classes on each worker from its own rows: a worker missing one would
    number them differently, and train on wrong labels."""
    classes = set(np.unique(np.concatenate(label_parts)).tolist())
    for home in sorted(set(homes)):
        held = set().union(*(np.unique(y).tolist() for y, at in zip(label_parts, homes, strict=True) if at == home))
        if held != classes:
            raise PipelineError(
                f"the Dask worker {home} holds no training rows of classes {sorted(classes - held, key=str)}, so "
                "LightGBM would number its classes differently: use fewer workers or a larger compute.partition_size"
            )


# --- The stage
def main() -> None:
    params = load_params()
    paths = params.paths
    check_params(params, load_schema(paths.contract))
    if not read_report(paths.validation).passed:
        raise PipelineError(f"validate did not pass: fix the data before training (see {paths.validation})")
    params = params.model_copy(update={"train": tuned(params)})  # train.search's best candidate, or as they are
    settings = params.train
    estimator = make_estimator(settings.estimator, settings.hyperparameters, settings.seed, params.data.task)
    fitted = fit_on_cluster(params, estimator) if params.compute.engine == "dask" else fit_here(params, estimator)
    save_model(fitted.model, paths.model)
    log_learning_curve(
        fitted.model,
        fitted.curve_features,
        fitted.curve_labels,
        settings.learning_curve,
        settings.seed,
        params.data.task,
        paths.learning_curve,
    )
    width = fitted.curve_features.shape[1]
    print(f"train: {settings.estimator} on {fitted.rows} rows, {width} features")
