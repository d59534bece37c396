"""What the task decides: how the target is encoded, how a model's answers are read, which metric leads.

`data.task` in params.yaml is binary, multiclass or regression. Every stage asks this module, never the
estimator, what the task means for it, so the stages and the service read a target and a prediction
alike:
- binary: the target as 0/1 against `data.positive_class`; a prediction is a probability of the
  positive class and the label it gives at `evaluate.decision_threshold`.
- multiclass: the target as its labels in text (whole numbers as "3", not "3.0"); a prediction is a
  probability per class and the most probable class.
- regression: the target as float64; a prediction is a number.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .core import Data, PipelineError, Task


def is_classification(task: Task) -> bool:
    return task != "regression"


def encode_target(values: pd.Series, data: Data) -> np.ndarray:
    """The target as the estimator learns it: 0/1, class labels in text, or numbers (see the module doc)."""
    encoders: dict[Task, Callable[[pd.Series, Data], np.ndarray]] = {
        "binary": lambda series, settings: binary_labels(series, settings.positive_class),
        "multiclass": lambda series, _: class_labels(series),
        "regression": lambda series, _: regression_values(series),
    }
    return encoders[data.task](values, data)


def binary_labels(values: pd.Series, positive_class: Any) -> np.ndarray:
    """1 where the target equals the positive class, else 0; numeric targets compare as numbers.

    A positive class the data never holds, or a target of one class, would train a model that
    predicts one answer and scores undefined metrics, so both are refused.
    """
    if pd.api.types.is_numeric_dtype(values):
        try:
            labels = (values == float(positive_class)).to_numpy(dtype=int)
        except ValueError:
            labels = np.zeros(len(values), dtype=int)
    else:
        labels = (values.astype(str) == str(positive_class)).to_numpy(dtype=int)
    if len(labels) and labels.min() == labels.max():
        found = sorted(str(label) for label in values.dropna().unique())[:10]
        raise PipelineError(
            f"params.yaml: 'data.positive_class' is {positive_class!r}, which makes every row of "
            f"'{values.name}' {'positive' if labels[0] else 'negative'} (labels in the data: {found}): "
            "set it to the label that counts as positive"
        )
    return labels


def class_labels(values: pd.Series) -> np.ndarray:
    """Each value's label in text; a fractional number is no class, so it is refused with the fix."""
    if pd.api.types.is_numeric_dtype(values):
        present = values.dropna()
        fractional = present[present != present.round()]
        if not fractional.empty:
            raise PipelineError(
                f"data.task is multiclass, but the target '{values.name}' holds fractional numbers "
                f"(e.g. {fractional.iloc[0]}): classes are labels or whole numbers; for a quantity set "
                "data.task: regression in params.yaml"
            )
        return values.astype("int64").astype(str).to_numpy(dtype=object)
    return values.astype(str).to_numpy(dtype=object)


def class_label(value: Any) -> str:
    """One class label in text, as `class_labels` writes it: 2.0 and 2 are "2"."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def regression_values(values: pd.Series) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(values):
        raise PipelineError(
            f"data.task is regression, but the target '{values.name}' holds labels, not numbers: declare it "
            "numeric in schema.yaml, or set data.task to binary or multiclass in params.yaml"
        )
    return values.to_numpy(dtype="float64")


@dataclass(frozen=True)
class Predictions:
    """A model's answers for some rows, in the form the task gives them."""

    values: np.ndarray  # binary 0/1; multiclass class labels (text); regression numbers
    probabilities: np.ndarray | None  # rows x classes, columns in `classes` order; None for regression
    classes: list[Any]  # the model's classes (binary [0, 1]); [] for regression

    @property
    def positive_probabilities(self) -> np.ndarray:
        """Binary: each row's probability of the positive class."""
        assert self.probabilities is not None
        return self.probabilities[:, 1]


def joined_predictions(parts: list[Predictions]) -> Predictions:
    """Predictions of consecutive row blocks (e.g. a split's partitions) as those of all their rows, in order."""
    blocks = [part.probabilities for part in parts if part.probabilities is not None]
    probabilities = np.vstack(blocks) if blocks else None
    return Predictions(np.concatenate([part.values for part in parts]), probabilities, parts[0].classes)


def predict(model: Pipeline, features: pd.DataFrame, task: Task, threshold: float) -> Predictions:
    """The model's answers: one scoring path for evaluate, batch scoring and the service."""
    if task == "regression":
        return Predictions(np.asarray(model.predict(features), dtype="float64"), None, [])
    probabilities = model.predict_proba(features)
    classes = list(model.classes_)
    if task == "binary":
        values = (probabilities[:, 1] >= threshold).astype(int)
    else:
        values = np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
    return Predictions(values, probabilities, classes)
