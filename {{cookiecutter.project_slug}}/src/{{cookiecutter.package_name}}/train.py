"""Stage 3: fit one Pipeline (preprocessing + estimator) on the train split and save it.

Also logs a learning curve with DVCLive, for `dvc plots` and DVC Studio: cross-validated ROC AUC on
the training split at growing training-set sizes. A gap between the training and validation curves
that does not close says the model needs more data or less capacity.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, learning_curve
from sklearn.pipeline import Pipeline
from sklearn.utils import resample

from .core import LearningCurve, PipelineError, load_params, read_parquet, read_report, rounded
from .model import binary_labels, build_pipeline, make_estimator, save_model
from .schema import check_params, load_schema


# --- Learning curve
def log_learning_curve(
    model: Pipeline, features: pd.DataFrame, labels: np.ndarray, settings: LearningCurve, seed: int, directory: Path
) -> None:
    """One DVCLive step per training-set size: train and validation ROC AUC, and the size itself.

    The curve's many fits use a stratified sample of at most `max_rows` rows: its shape is a diagnosis,
    and the full data would make it cost several times the training run itself.
    """
    from dvclive import Live  # imported here: only training logs curves

    if len(features) > settings.max_rows:
        features, labels = resample(
            features, labels, n_samples=settings.max_rows, replace=False, stratify=labels, random_state=seed
        )
    sizes, train_scores, validation_scores = learning_curve(
        model,
        features,
        labels,
        train_sizes=settings.train_sizes,
        cv=StratifiedKFold(n_splits=settings.folds, shuffle=True, random_state=seed),
        scoring="roc_auc",
    )
    with Live(dir=str(directory), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for size, train, validation in zip(sizes, train_scores, validation_scores, strict=True):
            live.log_metric("train_rows", int(size))
            live.log_metric("train/roc_auc", rounded(train.mean()))
            live.log_metric("validation/roc_auc", rounded(validation.mean()))
            live.next_step()


# --- The stage
def main() -> None:
    params = load_params()
    paths, target, settings = params.paths, params.data.target, params.train
    check_params(params, load_schema(paths.contract))
    estimator = make_estimator(settings.estimator, settings.hyperparameters, settings.seed)
    if not read_report(paths.validation).passed:
        raise PipelineError(f"validate did not pass: fix the data before training (see {paths.validation})")
    frame = read_parquet(paths.train)
    labels = binary_labels(frame[target], params.data.positive_class)
    features = frame.drop(columns=[target, *settings.exclude_columns], errors="ignore")
    model = build_pipeline(
        numeric=features.select_dtypes("number").columns.tolist(),
        categorical=features.select_dtypes("category").columns.tolist(),
        estimator=estimator,
    )
    model.fit(features, labels)
    save_model(model, paths.model)
    log_learning_curve(model, features, labels, settings.learning_curve, settings.seed, paths.learning_curve)
    print(f"train: {settings.estimator} on {len(frame)} rows, {features.shape[1]} features")
