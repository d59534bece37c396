"""The trained artifact: one scikit-learn Pipeline holding preprocessing and estimator together.

Evaluation and serving load this one object, so they transform data exactly as training did.
"""

import hashlib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .errors import PipelineError
from .files import require, write_with

LOCK_FILE = Path("dvc.lock")
ESTIMATORS = {
    "random_forest": RandomForestClassifier,
    "logistic_regression": LogisticRegression,
    "gradient_boosting": GradientBoostingClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
}


def make_estimator(name: str, hyperparameters: dict[str, Any], seed: int):
    if name not in ESTIMATORS:
        raise PipelineError(f"train.estimator '{name}' is unknown: choose one of {', '.join(ESTIMATORS)}")
    estimator_class = ESTIMATORS[name]
    accepted = estimator_class().get_params()
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        raise PipelineError(
            f"train.{name} has unknown hyper-parameters {unknown}; "
            f"{estimator_class.__name__} accepts {sorted(accepted)}"
        )
    seeded = {"random_state": seed} if "random_state" in accepted else {}
    return estimator_class(**{**seeded, **hyperparameters})


def build_pipeline(numeric: list[str], categorical: list[str], estimator) -> Pipeline:
    """Impute and scale numbers, impute and one-hot encode labels (unseen labels ignored), then fit."""
    features = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("features", features), ("estimator", estimator)])


def save_model(model: Pipeline, path: Path) -> None:
    write_with(lambda partial: joblib.dump(model, partial), path)


def load_model(path: Path, lock_file: Path = LOCK_FILE) -> Pipeline:
    """Unpickle the model only once its md5 matches the one DVC recorded in dvc.lock.

    Unpickling runs code, so a file that is not the one the pipeline produced is refused unread.
    """
    expected = recorded_md5(path, lock_file)
    actual = file_md5(require(path))
    if actual != expected:
        raise PipelineError(
            f"{path} does not match the md5 recorded for it in {lock_file} ({actual} != {expected}): it was "
            f"replaced or tampered with. Restore it with `dvc checkout {path}`, or re-train with `dvc repro`"
        )
    return joblib.load(path)


def recorded_md5(path: Path, lock_file: Path = LOCK_FILE) -> str:
    lock = yaml.safe_load(require(lock_file).read_text()) or {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs", []):
            if Path(out["path"]) == path:
                return out["md5"]
    raise PipelineError(f"{lock_file} records no hash for {path}: produce it with `dvc repro` before loading it")


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def binary_labels(values: pd.Series, positive_class) -> np.ndarray:
    """1 where the target equals the positive class, else 0; numeric targets compare as numbers."""
    if pd.api.types.is_numeric_dtype(values):
        return (values == float(positive_class)).to_numpy(dtype=int)
    return (values.astype(str) == str(positive_class)).to_numpy(dtype=int)
