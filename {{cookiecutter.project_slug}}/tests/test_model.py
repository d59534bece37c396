import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core import PipelineError
from {{ cookiecutter.package_name }}.model import (
    CLASSIFIERS,
    REGRESSORS,
    CategoryCodes,
    build_pipeline,
    make_estimator,
)
from {{ cookiecutter.package_name }}.train import write_dvclive_steps


def frame(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    amount = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "amount": np.where(np.arange(rows) % 7 == 0, np.nan, amount),
            "colour": pd.Categorical(rng.choice(np.array(["red", "blue", None], dtype=object), size=rows)),
        }
    )


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_every_classifier_fits_through_the_same_pipeline(name):
    features = frame()
    labels = (features["amount"].fillna(0) > 0).astype(int).to_numpy()
    model = build_pipeline(["amount"], ["colour"], make_estimator(name, {}, seed=0, task="binary"))
    model.fit(features, labels)
    unseen = pd.DataFrame({"amount": [0.5], "colour": pd.Categorical(["green"])})
    assert model.predict_proba(unseen).shape == (1, 2)


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_every_regressor_fits_through_the_same_pipeline(name):
    features = frame()
    values = features["amount"].fillna(0).to_numpy() * 3 + 1
    model = build_pipeline(["amount"], ["colour"], make_estimator(name, {}, seed=0, task="regression"))
    model.fit(features, values)
    unseen = pd.DataFrame({"amount": [0.5], "colour": pd.Categorical(["green"])})
    assert model.predict(unseen).shape == (1,)


@pytest.mark.parametrize(("name", "task"), [("logistic_regression", "regression"), ("ridge", "multiclass")])
def test_an_estimator_of_another_task_is_refused_with_the_choices(name, task):
    with pytest.raises(PipelineError, match=rf"'train.estimator' is '{name}', which does not fit data.task {task}"):
        make_estimator(name, {}, seed=0, task=task)


def test_histogram_gradient_boosting_sees_numbers_as_they_are_missing_values_included():
    features = frame()
    model = build_pipeline(["amount"], ["colour"], make_estimator("hist_gradient_boosting", {}, seed=0, task="binary"))
    given = model.named_steps["features"].fit_transform(features)[:, 0]
    assert np.array_equal(given, features["amount"].to_numpy(), equal_nan=True)
    scaled = build_pipeline(["amount"], ["colour"], make_estimator("logistic_regression", {}, seed=0, task="binary"))
    assert not np.isnan(scaled.named_steps["features"].fit_transform(features)[:, 0]).any()


def test_category_codes_are_those_of_training_with_missing_and_unseen_labels_as_nan():
    training = pd.DataFrame({"colour": pd.Categorical(["red", "blue", "red", None, "green", "red", "blue"])})
    encoder = CategoryCodes(max_categories=2).fit(training)
    assert encoder.categories_[0].tolist() == ["blue", "red"]  # the two most frequent, in order
    serving = pd.DataFrame({"colour": ["red", "blue", "green", None, "purple"]})  # plain text, as a request sends
    codes = encoder.transform(serving)[:, 0]
    assert codes[:2].tolist() == [1.0, 0.0]
    assert np.isnan(codes[2:]).all()


def test_seed_reaches_the_estimator():
    assert make_estimator("random_forest", {"n_estimators": 5}, seed=7, task="binary").get_params()["random_state"] == 7


def test_unknown_or_invalid_hyper_parameters_are_named_before_any_fit():
    with pytest.raises(PipelineError, match=r"unknown hyper-parameters \['depth'\]"):
        make_estimator("random_forest", {"depth": 3}, seed=0, task="binary")
    with pytest.raises(PipelineError, match=r"'train.random_forest': The 'n_estimators' parameter"):
        make_estimator("random_forest", {"n_estimators": -1}, seed=0, task="binary")


def test_the_learning_curve_files_are_dvclives_own(tmp_path, monkeypatch):
    """train writes DVCLive's files itself (importing DVCLive costs about 1 s a run): byte for byte the same."""
    from dvclive import Live

    monkeypatch.chdir(tmp_path)  # DVCLive looks for a DVC repository from here: none
    steps = [
        {"train_rows": 106, "train/roc_auc": 0.786156, "validation/roc_auc": 0.686185},
        {"train_rows": 213, "train/roc_auc": 0.86716, "validation/roc_auc": 0.701104},
    ]
    with Live(dir="by_dvclive", dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for step in steps:
            for name, value in step.items():
                live.log_metric(name, value)
            live.next_step()
    write_dvclive_steps(steps, tmp_path / "ours")

    def files(root):
        return {path.relative_to(root): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}

    assert files(tmp_path / "ours") == files(tmp_path / "by_dvclive")
    assert len(files(tmp_path / "ours")) == 4


def test_lightgbm_is_seeded_silent_deterministic_and_refuses_unknown_keys_against_its_parameters():
    params = make_estimator("lightgbm", {"num_leaves": 5}, seed=7, task="binary").get_params()
    assert [params[name] for name in ("random_state", "verbose", "deterministic", "num_leaves")] == [7, -1, True, 5]
    with pytest.raises(PipelineError, match=r"train.lightgbm has unknown hyper-parameters \['leaves'\]; LGBMClass"):
        make_estimator("lightgbm", {"leaves": 5}, seed=0, task="binary")


def test_lightgbm_splits_on_labels_as_categories_and_numbers_as_they_are():
    features = frame(400)
    labels = features["colour"].isin(["red"]).astype(int).to_numpy()
    model = build_pipeline(["amount"], ["colour"], make_estimator("lightgbm", {}, seed=0, task="binary"))
    model.fit(features, labels)
    given = model.named_steps["features"].transform(features)
    assert np.array_equal(given[:, 0], features["amount"].to_numpy(), equal_nan=True)
    # LightGBM lists a categorical feature's values (its codes, and -1 for missing); a numeric one only has a range
    numeric_info, label_info = model.named_steps["estimator"].booster_.dump_model()["feature_infos"].values()
    assert numeric_info["values"] == []
    assert {0, 1} <= set(label_info["values"])


def test_lightgbm_classifies_text_labels_of_several_classes():
    features = frame(300)
    labels = np.array(["low", "mid", "high"], dtype=object)[np.digitize(features["amount"].fillna(0), [-0.5, 0.5])]
    model = build_pipeline(["amount"], ["colour"], make_estimator("lightgbm", {}, seed=0, task="multiclass"))
    model.fit(features, labels)
    assert sorted(model.classes_) == ["high", "low", "mid"]
    assert (model.predict(features) == labels).mean() > 0.9
