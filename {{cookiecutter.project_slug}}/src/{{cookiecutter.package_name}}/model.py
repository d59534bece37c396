"""The trained artifact: one scikit-learn Pipeline holding preprocessing and estimator together.

Evaluation and serving load this one object, so they transform data exactly as training did.
"""

from pathlib import Path
from typing import Any, Literal, Self

import joblib
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .core import LOCK_FILE, Data, PipelineError, Task, file_md5, locked_outputs, require, write_with
from .task import encode_target, is_classification

# train.estimator's choices, by the kind of answer they learn
CLASSIFIERS: dict[str, type[BaseEstimator]] = {
    "random_forest": RandomForestClassifier,
    "logistic_regression": LogisticRegression,
    "gradient_boosting": GradientBoostingClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "lightgbm": LGBMClassifier,
}
REGRESSORS: dict[str, type[BaseEstimator]] = {
    "random_forest": RandomForestRegressor,
    "ridge": Ridge,
    "gradient_boosting": GradientBoostingRegressor,
    "hist_gradient_boosting": HistGradientBoostingRegressor,
    "lightgbm": LGBMRegressor,
}
LIGHTGBM = (LGBMClassifier, LGBMRegressor)
# Estimators that bin numbers and split on label codes themselves (see `_number_preparation`, `_label_encoder`)
HISTOGRAM_GRADIENT_BOOSTING = (HistGradientBoostingClassifier, HistGradientBoostingRegressor, *LIGHTGBM)
# LightGBM's settings that are not the user's choice: silent, and the same model bytes from the same data
LIGHTGBM_FIXED = {"verbose": -1, "deterministic": True}


def make_estimator(name: str, hyperparameters: dict[str, Any], seed: int, task: Task) -> BaseEstimator:
    """The task's estimator with its hyper-parameters checked by scikit-learn itself, before any data is read."""
    from sklearn.utils._param_validation import InvalidParameterError

    choices = CLASSIFIERS if is_classification(task) else REGRESSORS
    if name not in choices:
        raise PipelineError(
            f"params.yaml: 'train.estimator' is {name!r}, which does not fit data.task {task}: "
            f"use one of {sorted(choices)}"
        )
    estimator_class = choices[name]
    accepted = estimator_class().get_params()
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        raise PipelineError(
            f"train.{name} has unknown hyper-parameters {unknown}; "
            f"{estimator_class.__name__} accepts {sorted(accepted)}"
        )
    seeded = {"random_state": seed} if "random_state" in accepted else {}
    fixed = LIGHTGBM_FIXED if issubclass(estimator_class, LIGHTGBM) else {}
    estimator = estimator_class(**{**fixed, **seeded, **hyperparameters})
    if hasattr(estimator, "_parameter_constraints"):  # LightGBM declares none: it checks its values when it fits
        try:
            estimator._validate_params()
        except InvalidParameterError as error:
            raise PipelineError(f"params.yaml: 'train.{name}': {error}") from None
    return estimator


def build_pipeline(numeric: list[str], categorical: list[str], estimator: BaseEstimator) -> Pipeline:
    """Numbers prepared for the estimator, labels encoded (unseen labels ignored), then the estimator."""
    features = ColumnTransformer(
        [
            ("numeric", _number_preparation(estimator), numeric),
            ("categorical", _label_encoder(estimator, len(numeric), len(categorical)), categorical),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("features", features), ("estimator", estimator)])


def features_and_labels(frame: pd.DataFrame, data: Data, excluded: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The columns the model learns from (all but the target and `train.exclude_columns`) and the encoded target."""
    labels = encode_target(frame[data.target], data)
    return frame.drop(columns=[data.target, *excluded], errors="ignore"), labels


def training_pipeline(features: pd.DataFrame, estimator: BaseEstimator) -> Pipeline:
    """The unfitted Pipeline for these features: numbers and labels (categorical columns) told apart by dtype."""
    return build_pipeline(
        numeric=features.select_dtypes("number").columns.tolist(),
        categorical=features.select_dtypes("category").columns.tolist(),
        estimator=estimator,
    )


def _number_preparation(estimator: BaseEstimator) -> Pipeline | Literal["passthrough"]:
    """Median-imputed and scaled; or untouched for histogram gradient boosting (scikit-learn's or LightGBM),
    which bins the values and learns where missing ones go by itself, so an imputer would only hide the
    missingness from it.
    """
    if isinstance(estimator, HISTOGRAM_GRADIENT_BOOSTING):
        return "passthrough"
    return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])


def _label_encoder(estimator: BaseEstimator, first_column: int, columns: int) -> "CategoryCodes | Pipeline":
    """One-hot columns; or, for histogram gradient boosting, which splits on categories itself, one code per
    label: a third of the features at the sample's width, so it fits faster for the same accuracy.

    scikit-learn's takes at most `max_bins` categories per column; LightGBM any number, so every label of the
    column's categorical dtype gets a code. That also makes the codes a function of the dtype alone, which the
    Dask engine relies on (it fits them on one partition: see train.py).
    """
    codes = list(range(first_column, first_column + columns))
    if isinstance(estimator, LIGHTGBM):
        # the alias LightGBM's own Dataset uses: the name `categorical_feature` is a fit argument, not a parameter
        estimator.set_params(categorical_column=codes)
        return CategoryCodes(max_categories=None)
    if isinstance(estimator, HISTOGRAM_GRADIENT_BOOSTING):
        estimator.set_params(categorical_features=codes)
        return CategoryCodes(max_categories=estimator.max_bins)
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )


class CategoryCodes(TransformerMixin, BaseEstimator):
    """Each label column as the code of its label among those seen in training; missing and unseen labels NaN.

    OrdinalEncoder's job, done by pandas' recoding in C where OrdinalEncoder maps every value in Python
    (see the README's Performance section). Only the `max_categories` most
    frequent labels of a column get codes, the others count as missing, so no column has more categories
    than histogram gradient boosting accepts (None: every label).
    """

    def __init__(self, max_categories: int | None = 255):
        self.max_categories = max_categories

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.categories_ = [
            pd.Index(sorted(X[name].value_counts(sort=True).index[: self.max_categories])) for name in X.columns
        ]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        columns = zip(X.columns, self.categories_, strict=True)
        codes = np.column_stack([pd.Categorical(X[name], categories=known).codes for name, known in columns])
        codes = codes.astype(float)
        codes[codes < 0] = np.nan
        return codes

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return self.feature_names_in_


def save_model(model: Pipeline, path: Path) -> None:
    write_with(lambda handle: joblib.dump(model, handle), path)


def load_model(path: Path, lock_file: Path = LOCK_FILE) -> Pipeline:
    """Unpickle the model only once its md5 matches the one DVC recorded in dvc.lock.

    Unpickling runs code, so a file that is not the one the pipeline produced is refused unread.
    """
    verified_md5(path, lock_file)
    return joblib.load(path)


def verified_md5(path: Path, lock_file: Path = LOCK_FILE) -> str:
    """The model file's md5, once it is the one dvc.lock records; an error saying how to restore it if not."""
    expected = recorded_md5(path, lock_file)
    actual = file_md5(require(path))
    if actual != expected:
        raise PipelineError(
            f"{path} does not match the md5 recorded for it in {lock_file} ({actual} != {expected}): it was "
            f"replaced or tampered with. Restore it with `dvc checkout {path}`, or re-train with `dvc repro`"
        )
    return actual


def recorded_md5(path: Path, lock_file: Path = LOCK_FILE) -> str:
    md5 = locked_outputs(lock_file=require(lock_file)).get(path)
    if md5 is None:
        raise PipelineError(f"{lock_file} records no hash for {path}: produce it with `dvc repro` before loading it")
    return md5
