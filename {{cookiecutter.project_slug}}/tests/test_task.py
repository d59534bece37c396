"""The task (binary, multiclass, regression): targets, predictions, contract checks, the split and the params."""

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core import Data, PipelineError, Task, failure_lines
from {{ cookiecutter.package_name }}.model import build_pipeline, make_estimator
from {{ cookiecutter.package_name }}.preprocess import propose_task, split
from {{ cookiecutter.package_name }}.schema import target_checks
from {{ cookiecutter.package_name }}.task import binary_labels, class_label, encode_target, predict


def data(task: Task, positive_class: str | int | None = None) -> Data:
    return Data(task=task, target="y", positive_class=positive_class, csv_delimiter=",")


# --- Targets
def test_binary_labels_compare_numbers_as_numbers_and_text_as_text():
    assert binary_labels(pd.Series([0.0, 1.0, 1.0]), 1).tolist() == [0, 1, 1]
    assert binary_labels(pd.Series(["bad", "good"], dtype="category"), "good").tolist() == [0, 1]


@pytest.mark.parametrize("positive_class", [7, "yes"])
def test_a_positive_class_the_data_never_holds_is_refused(positive_class):
    with pytest.raises(PipelineError, match=r"'data.positive_class' is .* every row of 'risk' negative"):
        binary_labels(pd.Series([0.0, 1.0, 1.0], name="risk"), positive_class)


def test_multiclass_targets_are_text_labels_with_whole_numbers_written_whole():
    assert encode_target(pd.Series([2.0, 0.0, 1.0]), data("multiclass")).tolist() == ["2", "0", "1"]
    labels = pd.Series(["b", "a", "c"], dtype="category")
    assert encode_target(labels, data("multiclass")).tolist() == ["b", "a", "c"]
    assert [class_label(value) for value in (2.0, np.float64(3.0), "x", 2.5)] == ["2", "3", "x", "2.5"]


def test_a_fractional_multiclass_target_is_refused_with_the_fix():
    with pytest.raises(PipelineError, match=r"multiclass, but the target 'y' holds fractional .*data.task: regression"):
        encode_target(pd.Series([1.0, 2.5], name="y"), data("multiclass"))


def test_regression_targets_are_numbers_and_labels_are_refused():
    assert encode_target(pd.Series([1, 2]), data("regression")).dtype == np.float64
    with pytest.raises(PipelineError, match=r"regression, but the target 'y' holds labels"):
        encode_target(pd.Series(["a", "b"], name="y", dtype="category"), data("regression"))


def test_positive_class_belongs_to_binary_tasks_only():
    with pytest.raises(ValueError, match="a binary task needs data.positive_class"):
        data("binary")
    with pytest.raises(ValueError, match="data.positive_class is for binary tasks; remove it"):
        data("regression", positive_class=1)


# --- Predictions
def fitted(task: Task, target: np.ndarray) -> tuple:
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"x": rng.normal(size=len(target)), "z": rng.normal(size=len(target))})
    name = "ridge" if task == "regression" else "logistic_regression"
    model = build_pipeline(["x", "z"], [], make_estimator(name, {}, seed=0, task=task)).fit(features, target)
    return model, features


def test_binary_predictions_are_the_positive_probability_at_the_threshold():
    target = np.array([0, 1] * 30)
    model, features = fitted("binary", target)
    answers = predict(model, features, "binary", threshold=0.3)
    assert answers.classes == [0, 1]
    assert np.array_equal(answers.positive_probabilities, model.predict_proba(features)[:, 1])
    assert np.array_equal(answers.values, (answers.positive_probabilities >= 0.3).astype(int))


def test_multiclass_predictions_are_the_most_probable_class_with_every_probability():
    target = np.array(["a", "b", "c"] * 20, dtype=object)
    model, features = fitted("multiclass", target)
    answers = predict(model, features, "multiclass", threshold=0.5)
    assert answers.classes == ["a", "b", "c"]
    assert answers.probabilities is not None and answers.probabilities.shape == (60, 3)
    assert answers.values.tolist() == model.predict(features).tolist()


def test_regression_predictions_are_numbers_without_probabilities():
    target = np.arange(60, dtype=float)
    model, features = fitted("regression", target)
    answers = predict(model, features, "regression", threshold=0.5)
    assert answers.probabilities is None and answers.classes == []
    assert np.array_equal(answers.values, model.predict(features))


# --- The contract's target checks
@pytest.mark.parametrize(
    ("task", "values", "failure"),
    [
        ("binary", [0, 1, 2, 1], r"target has two classes \(value 3, threshold 2\).*data.task: multiclass"),
        ("binary", [1, 1, 1], r"target has two classes .*one class"),
        ("multiclass", [1.0, 2.5, 3.0], r"target holds class labels .*fractional.*data.task: regression"),
        ("multiclass", [4, 4, 4], r"target has at least two classes .*one class"),
        ("regression", [3.5, 3.5], r"target varies .*nothing to learn"),
    ],
)
def test_a_target_that_does_not_fit_the_task_fails_a_check_naming_the_task_and_the_fix(task, values, failure):
    failures = failure_lines(target_checks(pd.Series(values, name="y", dtype=float), task, "raw"))
    assert len(failures) == 1
    assert pd.Series(failures).str.contains(failure).all(), failures


def test_a_regression_target_of_labels_fails_the_numeric_check():
    labels = pd.Series(["low", "high"], name="y", dtype="category")
    failures = failure_lines(target_checks(labels, "regression", "raw"))
    assert len(failures) == 1 and "set data.task to binary or multiclass" in failures[0]


@pytest.mark.parametrize(("task", "values"), [("binary", [0, 1]), ("multiclass", [0, 1, 2]), ("regression", [0.5, 2])])
def test_a_target_that_fits_the_task_passes(task, values):
    assert failure_lines(target_checks(pd.Series(values * 3, name="y", dtype=float), task, "raw")) == []


# --- The split
def test_a_regression_split_is_seeded_and_unstratified():
    frame = pd.DataFrame({"x": range(100), "y": np.linspace(0, 1, 100)})
    train, test = split(frame, "y", test_size=0.2, seed=7, task="regression")
    again, _ = split(frame, "y", test_size=0.2, seed=7, task="regression")
    assert (len(train), len(test)) == (80, 20) and train.index.tolist() == again.index.tolist()


def test_a_multiclass_split_keeps_every_class_in_its_share():
    frame = pd.DataFrame({"x": range(90), "y": ["a"] * 60 + ["b"] * 20 + ["c"] * 10})
    _, test = split(frame, "y", test_size=0.2, seed=7, task="multiclass")
    assert test["y"].value_counts().to_dict() == {"a": 12, "b": 4, "c": 2}


def test_a_class_too_small_to_split_is_named_with_the_fix():
    frame = pd.DataFrame({"x": range(41), "y": ["a"] * 20 + ["b"] * 20 + ["c"]})
    with pytest.raises(PipelineError, match=r"class 'c' of target 'y' has 1 row: the stratified split needs"):
        split(frame, "y", test_size=0.2, seed=7, task="multiclass")


# --- infer-schema's proposal
@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["good", "bad", "good"], "binary"),
        (["0", "1", "1"], "binary"),
        (["setosa", "virginica", "versicolor"], "multiclass"),
        (["1", "2", "3", "2"], "multiclass"),
        (["1.5", "2.25", "3"], "regression"),
        ([str(value) for value in range(40)], "regression"),
    ],
)
def test_infer_schema_proposes_the_task_the_target_looks_like(values, task):
    assert propose_task(pd.Series(values))[0] == task
