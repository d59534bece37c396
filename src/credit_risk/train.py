"""Stage 3: fit one Pipeline (preprocessing + estimator) on the train split and save it.

Also logs a learning curve in DVCLive's format, for `dvc plots` and DVC Studio: the task's main metric
(ROC AUC, macro F1 or R², `core.MAIN_METRIC`), cross-validated on the training split at growing
training-set sizes. A gap between the training and validation curves
that does not close says the model needs more data or less capacity.
"""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import learning_curve
from sklearn.pipeline import Pipeline

from .core import (
    MAIN_METRIC,
    LearningCurve,
    PipelineError,
    Task,
    load_params,
    read_parquet,
    read_report,
    rounded,
    sample_positions,
    write_text,
)
from .model import build_pipeline, make_estimator, save_model
from .schema import check_params, load_schema
from .search import cross_validation, tuned
from .task import encode_target, is_classification


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


# --- The stage
def main() -> None:
    params = load_params()
    paths, target, settings = params.paths, params.data.target, params.train
    check_params(params, load_schema(paths.contract))
    if not read_report(paths.validation).passed:
        raise PipelineError(f"validate did not pass: fix the data before training (see {paths.validation})")
    params = params.model_copy(update={"train": tuned(params)})  # train.search's best candidate, or as they are
    settings = params.train
    estimator = make_estimator(settings.estimator, settings.hyperparameters, settings.seed, params.data.task)
    frame = read_parquet(paths.train)
    labels = encode_target(frame[target], params.data)
    features = frame.drop(columns=[target, *settings.exclude_columns], errors="ignore")
    model = build_pipeline(
        numeric=features.select_dtypes("number").columns.tolist(),
        categorical=features.select_dtypes("category").columns.tolist(),
        estimator=estimator,
    )
    model.fit(features, labels)
    save_model(model, paths.model)
    curve = settings.learning_curve
    log_learning_curve(model, features, labels, curve, settings.seed, params.data.task, paths.learning_curve)
    print(f"train: {settings.estimator} on {len(frame)} rows, {features.shape[1]} features")
