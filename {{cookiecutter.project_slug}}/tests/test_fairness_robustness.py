import json
from functools import partial

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn import metrics as skm
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline

from {{ cookiecutter.package_name }}.core import PipelineError, Robustness, sample_positions
from {{ cookiecutter.package_name }}.evaluate import (
    MISSING_GROUP,
    add_numeric_noise,
    class_fairness,
    error_fairness,
    fairness_report,
    group_fairness,
    inject_missing,
    robustness_report,
    robustness_scorer,
    swap_categories,
    within_rules,
)
from {{ cookiecutter.package_name }}.schema import ColumnSpec, Schema, rule_holds

FEATURES = pd.DataFrame({"amount": np.arange(200, dtype=float), "colour": pd.Categorical(["red", "blue"] * 100)})
CONTRACT = Schema(
    columns={
        "amount": ColumnSpec(type="numeric", nullable=True, min=0),
        "colour": ColumnSpec(type="categorical", nullable=True),
    }
)


def test_equal_treatment_has_no_gap_and_unequal_treatment_shows_it():
    y_true = np.array([1, 0] * 50)
    groups = pd.DataFrame({"sex": ["f"] * 50 + ["m"] * 50})
    fair = fairness_report("binary", y_true, y_true, groups, ["sex"], [0, 1])
    assert fair["max_gap"] == 0.0
    biased = fairness_report("binary", y_true, np.array([0] * 50 + [1] * 50), groups, ["sex"], [0, 1])
    assert biased["by_column"]["sex"]["demographic_parity_difference"] == pytest.approx(1.0)
    assert biased["by_column"]["sex"]["groups"]["m"] == {
        "rows": 50,
        "selection_rate": 1.0,
        "true_positive_rate": 1.0,
        "false_positive_rate": 1.0,
    }


def test_gaps_are_fairlearns_own_measures():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    frame = pd.DataFrame({"group": rng.choice(["a", "b", "c"], 500, p=[0.5, 0.3, 0.2])})
    gaps = fairness_report("binary", y_true, y_pred, frame, ["group"], [0, 1])["by_column"]["group"]
    expected_parity = demographic_parity_difference(y_true, y_pred, sensitive_features=frame["group"])
    expected_odds = equalized_odds_difference(y_true, y_pred, sensitive_features=frame["group"])
    assert gaps["demographic_parity_difference"] == pytest.approx(expected_parity, abs=1e-6)
    assert gaps["equalized_odds_difference"] == pytest.approx(expected_odds, abs=1e-6)


def fairlearn_figures(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict:
    """The figures group_fairness reports, computed with fairlearn, each rate on the groups where it exists.

    A true positive rate exists for a group with actual positives, so it is fairlearn's rate on the rows whose
    truth is positive (a false positive rate likewise on the negative rows); a group missing there has none.
    """
    groups = groups.astype("string").fillna(MISSING_GROUP)  # fairlearn refuses missing values
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    every_row = MetricFrame(
        metrics={"rows": count, "selection_rate": selection_rate},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    figures = every_row.by_group.to_dict("index")
    gaps = {}
    for name, rate, actual in (
        ("true_positive_rate", true_positive_rate, 1),
        ("false_positive_rate", false_positive_rate, 0),
    ):
        rows = y_true == actual
        if not rows.any():
            for group in figures:
                figures[group][name] = None
            gaps[name] = 0.0
            continue
        frame = MetricFrame(
            metrics={name: partial(rate, pos_label=1)},
            y_true=y_true[rows],
            y_pred=y_pred[rows],
            sensitive_features=groups[rows],
        )
        for group in figures:
            figures[group][name] = frame.by_group[name].get(group)
        gaps[name] = frame.difference()[name]
    return {
        "groups": figures,
        "demographic_parity_difference": demographic_parity_difference(y_true, y_pred, sensitive_features=groups),
        "equalized_odds_difference": max(gaps.values()),
    }


def assert_same_figures(ours: dict, expected: dict) -> None:
    assert ours["groups"].keys() == expected["groups"].keys()
    for group, rates in expected["groups"].items():
        for name, value in rates.items():
            expected_value = None if value is None else pytest.approx(value, abs=1e-6)
            assert ours["groups"][group][name] == expected_value, (group, name)
    for gap in ("demographic_parity_difference", "equalized_odds_difference"):
        assert ours[gap] == pytest.approx(expected[gap], abs=1e-6), gap
    json.dumps(ours, allow_nan=False)  # never NaN: JSON has no such number


def test_missing_sensitive_values_are_a_group_of_their_own():
    y_true = np.array([1, 0, 1, 0, 1, 0, 1, 1, 0, 0])
    y_pred = np.array([1, 0, 0, 1, 1, 1, 0, 1, 0, 1])
    groups = pd.Series(["f", "f", "m", "m", None, np.nan, "f", "m", pd.NA, "m"], dtype="object")
    with pytest.raises(ValueError, match="missing values"):
        MetricFrame(metrics=selection_rate, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    ours = group_fairness(y_true, y_pred, groups)
    assert ours["groups"][MISSING_GROUP]["rows"] == 3
    assert_same_figures(ours, fairlearn_figures(y_true, y_pred, groups))
    # every rate is defined here, so the gaps are fairlearn's own functions' figures
    filled = groups.fillna(MISSING_GROUP)
    assert ours["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=filled), abs=1e-6
    )


def test_a_group_with_one_true_class_has_no_rate_for_the_other_and_no_part_in_that_gap():
    y_true = np.array([1, 0, 1, 0, 1, 0] + [0, 0, 0] + [1, 1])
    y_pred = np.array([1, 0, 1, 0, 0, 1] + [0, 1, 0] + [1, 0])
    groups = pd.Series(["a"] * 6 + ["negatives only"] * 3 + ["positives only"] * 2)
    ours = group_fairness(y_true, y_pred, groups)
    assert ours["groups"]["negatives only"]["true_positive_rate"] is None
    assert ours["groups"]["positives only"]["false_positive_rate"] is None
    assert_same_figures(ours, fairlearn_figures(y_true, y_pred, groups))
    # true positive rates 2/3 (a) and 1/2 (positives only); false positive rates 1/3 (a, negatives only).
    # fairlearn's convention, 0 for each undefined rate, makes the gap 2/3 - 0 where the measured one is 1/6.
    assert equalized_odds_difference(y_true, y_pred, sensitive_features=groups) == pytest.approx(2 / 3)
    assert ours["equalized_odds_difference"] == pytest.approx(1 / 6, abs=1e-6)


def test_a_group_of_a_single_row_and_data_with_a_single_class():
    y_true = np.array([1, 0, 1, 0, 1])
    y_pred = np.array([1, 1, 0, 0, 1])
    groups = pd.Series(["a", "a", "a", "a", "lone"])
    ours = group_fairness(y_true, y_pred, groups)
    assert ours["groups"]["lone"] == {
        "rows": 1,
        "selection_rate": 1.0,
        "true_positive_rate": 1.0,
        "false_positive_rate": None,
    }
    assert_same_figures(ours, fairlearn_figures(y_true, y_pred, groups))
    no_positives = group_fairness(np.zeros(5, dtype=int), y_pred, groups)
    assert_same_figures(no_positives, fairlearn_figures(np.zeros(5, dtype=int), y_pred, groups))
    assert {rates["true_positive_rate"] for rates in no_positives["groups"].values()} == {None}


def test_awkward_groups_together_match_fairlearn_and_the_report_takes_the_largest_gap():
    rng = np.random.default_rng(7)
    y_true, y_pred = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    groups = pd.Series(rng.choice(["a", "b", "c"], 300), dtype="object")
    groups[rng.choice(300, 20, replace=False)] = None
    y_true[(groups == "c").to_numpy()] = 1  # no actual negatives in c
    groups[299], y_true[299] = "single", 0
    frame = pd.DataFrame({"group": groups, "sex": pd.Categorical(rng.choice(["female", "male"], 300))})
    report = fairness_report("binary", y_true, y_pred, frame, ["group", "sex"], [0, 1])
    for column in ("group", "sex"):
        assert_same_figures(report["by_column"][column], fairlearn_figures(y_true, y_pred, frame[column]))
    gaps = [figure for column in report["by_column"].values() for name, figure in column.items() if name != "groups"]
    assert report["max_gap"] == max(gaps)


def test_perturbations_change_the_data_as_asked_and_are_seeded():
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    noisy = add_numeric_noise(FEATURES, 0.1, rng(), CONTRACT)
    assert not noisy["amount"].equals(FEATURES["amount"])
    assert noisy["amount"].equals(add_numeric_noise(FEATURES, 0.1, rng(), CONTRACT)["amount"])
    assert inject_missing(FEATURES, 0.5, rng(), CONTRACT).isna().mean().between(0.35, 0.65).all()
    swapped = swap_categories(FEATURES, 1.0, rng(), CONTRACT)
    assert set(swapped["colour"].cat.categories) == {"blue", "red"}
    assert (swapped["colour"] != FEATURES["colour"]).any()


def test_perturbed_data_stays_inside_the_contract():
    """Data the contract refuses never reaches the model, so robustness is measured on data it accepts."""
    features = pd.DataFrame({"age": np.arange(18.0, 68.0), "amount": np.arange(50.0) * 100, "months": 12.0})
    contract = Schema(
        columns={
            "age": ColumnSpec(type="integer", min=18, max=67),
            "amount": ColumnSpec(type="numeric", nullable=True),
            "months": ColumnSpec(type="integer", nullable=True),
        },
        rules={"small_loans_are_short": "amount > 2000 or months <= 12"},
    )
    rng = np.random.default_rng(0)
    noisy = within_rules(add_numeric_noise(features, 3.0, rng, contract), features, contract)
    assert noisy["age"].between(18, 67).all() and (noisy["age"] == noisy["age"].round()).all()
    assert not noisy["age"].equals(features["age"])
    assert rule_holds(noisy, "small_loans_are_short", contract.rules["small_loans_are_short"]).all()
    blanked = inject_missing(features, 0.5, rng, contract)
    assert blanked["age"].notna().all() and blanked["amount"].isna().any()


def test_largest_drop_is_reported():
    settings = Robustness(metric="roc_auc", seed=0, noise_scale=0.1, missing_rate=0.5, swap_rate=0.5, max_rows=1000)
    labels = np.zeros(len(FEATURES))
    score = lambda frame, _: 1.0 - frame.isna().mean().mean()  # noqa: E731
    report = robustness_report(score, FEATURES, labels, settings, seed=0, schema=CONTRACT, stratified=True)
    assert report["clean"] == 1.0
    assert report["max_drop"] == report["drop"]["missing_values"] > 0.3


def test_a_large_test_set_is_perturbed_on_a_seeded_sample_with_its_own_labels():
    settings = Robustness(metric="roc_auc", seed=0, noise_scale=0.1, missing_rate=0.1, swap_rate=0.1, max_rows=50)
    labels = (FEATURES["amount"].to_numpy() > FEATURES["amount"].median()).astype(int)
    calls = []

    def score(frame, frame_labels):
        calls.append((frame.index.tolist(), frame_labels.tolist()))
        return 1.0

    robustness_report(score, FEATURES, labels, settings, seed=0, schema=CONTRACT, stratified=True)
    robustness_report(score, FEATURES, labels, settings, seed=0, schema=CONTRACT, stratified=True)
    rows, clean_labels = calls[0]
    assert len(rows) == 50 and clean_labels == [labels[FEATURES.index.get_loc(row)] for row in rows]
    assert sum(clean_labels) == 25  # stratified: half the rows are positive, as in the full set
    assert all(call == calls[0] for call in calls)


def one_vs_rest_gaps(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, label: str) -> tuple[float, float]:
    """Demographic parity and equalized odds differences of one class against the rest, computed directly."""
    selection, true_positive, false_positive = [], [], []
    for group in np.unique(groups):
        rows = groups == group
        actual, predicted = y_true[rows] == label, y_pred[rows] == label
        selection.append(predicted.mean())
        true_positive.append(predicted[actual].mean())
        false_positive.append(predicted[~actual].mean())
    spread = lambda rates: max(rates) - min(rates)  # noqa: E731
    return spread(selection), max(spread(true_positive), spread(false_positive))


def test_multiclass_fairness_is_each_class_against_the_rest_and_the_largest_gap_over_classes():
    rng = np.random.default_rng(11)
    classes = ["class_0", "class_1", "class_2"]
    y_true, y_pred = rng.choice(classes, 600).astype(object), rng.choice(classes, 600).astype(object)
    groups = rng.choice(["f", "m"], 600)
    frame = pd.DataFrame({"sex": groups})
    report = fairness_report("multiclass", y_true, y_pred, frame, ["sex"], classes)
    column = report["by_column"]["sex"]
    expected = {label: one_vs_rest_gaps(y_true, y_pred, groups, label) for label in classes}
    for label, (parity, odds) in expected.items():
        ours = column["by_class"][label]
        assert ours["demographic_parity_difference"] == pytest.approx(parity, abs=1e-6), label
        assert ours["equalized_odds_difference"] == pytest.approx(odds, abs=1e-6), label
        assert ours["groups"]["f"]["rows"] == int((groups == "f").sum())
    assert column["demographic_parity_difference"] == pytest.approx(max(p for p, _ in expected.values()), abs=1e-6)
    assert column["equalized_odds_difference"] == pytest.approx(max(o for _, o in expected.values()), abs=1e-6)
    assert report["max_gap"] == max(column["demographic_parity_difference"], column["equalized_odds_difference"])
    json.dumps(report, allow_nan=False)


def test_a_class_one_group_lacks_has_no_rate_there_and_no_nan():
    y_true = np.array(["a", "b", "c", "a", "b", "a"], dtype=object)
    y_pred = np.array(["a", "b", "b", "a", "c", "b"], dtype=object)
    groups = pd.Series(["f", "f", "f", "m", "m", "m"])  # no actual c among m
    report = class_fairness(y_true, y_pred, groups, ["a", "b", "c"])
    assert report["by_class"]["c"]["groups"]["m"]["true_positive_rate"] is None
    json.dumps(report, allow_nan=False)


def test_regression_fairness_is_the_gap_between_groups_mean_absolute_errors():
    rng = np.random.default_rng(12)
    y_true = rng.normal(100, 30, 300)
    groups = pd.Series(rng.choice(np.array(["1", "2", None], dtype=object), 300, p=[0.5, 0.4, 0.1]), dtype="object")
    y_pred = y_true + rng.normal(0, 5, 300) + np.where(groups == "2", 10.0, 0.0)  # group 2 predicted worse
    ours = error_fairness(y_true, y_pred, groups)
    named = groups.fillna(MISSING_GROUP).to_numpy()
    expected = {
        group: skm.mean_absolute_error(y_true[named == group], y_pred[named == group]) for group in np.unique(named)
    }
    assert set(ours["groups"]) == set(expected) == {"1", "2", MISSING_GROUP}
    for group, mae in expected.items():
        assert ours["groups"][group] == {"rows": int((named == group).sum()), "mae": pytest.approx(mae, abs=1e-6)}
    assert ours["mae_gap"] == pytest.approx(max(expected.values()) - min(expected.values()), abs=1e-6)
    report = fairness_report("regression", y_true, y_pred, pd.DataFrame({"sex": groups}), ["sex"], [])
    assert report["max_gap"] == ours["mae_gap"] > 5  # in the target's units, not a rate
    assert error_fairness(y_true, y_pred, pd.Series(["1"] * 300))["mae_gap"] == 0.0


NUMERIC_CONTRACT = Schema(
    columns={"x": ColumnSpec(type="numeric", nullable=True), "z": ColumnSpec(type="numeric", nullable=True)}
)


def regression_model() -> tuple[Pipeline, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(13)
    features = pd.DataFrame({"x": rng.normal(0, 1, 400), "z": rng.normal(0, 1, 400)})
    target = 3 * features["x"].to_numpy() - 2 * features["z"].to_numpy() + rng.normal(0, 0.5, 400)
    model = make_pipeline(SimpleImputer(), Ridge()).fit(features, target)
    return model, features, target


@pytest.mark.parametrize("metric", ["r2", "neg_mean_absolute_error"])
def test_robustness_of_a_regression_model_is_the_drop_of_its_scorer_on_an_unstratified_sample(metric):
    model, features, target = regression_model()
    settings = Robustness(metric=metric, seed=0, noise_scale=0.5, missing_rate=0.3, swap_rate=0.1, max_rows=300)
    score = robustness_scorer(metric, "regression")
    report = robustness_report(
        lambda frame, labels: score(model, frame, labels),
        features,
        target,
        settings,
        seed=0,
        schema=NUMERIC_CONTRACT,
        stratified=False,
    )
    kept = sample_positions(len(features), 300, 0)
    predicted = model.predict(features.iloc[kept])
    clean = {
        "r2": skm.r2_score(target[kept], predicted),
        "neg_mean_absolute_error": -skm.mean_absolute_error(target[kept], predicted),
    }[metric]
    assert report["clean"] == pytest.approx(clean, abs=1e-6)
    for name, drop in report["drop"].items():
        assert drop == pytest.approx(report["clean"] - report["perturbed"][name], abs=1e-5)
    assert report["drop"]["numeric_noise"] > 0 and report["drop"]["missing_values"] > 0  # worse, for either sign
    assert report["drop"]["category_swap"] == 0.0  # no categorical column to swap
    assert report["max_drop"] == max(report["drop"].values())


def test_a_scorer_that_does_not_suit_the_task_is_a_clear_error():
    model, features, target = regression_model()
    score = robustness_scorer("roc_auc", "regression")
    with pytest.raises(PipelineError, match=r"'roc_auc' cannot score this regression model.*: use .* e\.g\. r2"):
        score(model, features, target)
    with pytest.raises(PipelineError, match=r"'evaluate.robustness.metric' is 'auc_roc', not a scikit-learn scorer"):
        robustness_scorer("auc_roc", "regression")


def test_groups_coded_as_whole_numbers_are_named_as_whole_numbers():
    """A code such as sex 1/2 arrives as float64 from the data; its groups read "1" and "2", not "1.0"."""
    from {{ cookiecutter.package_name }}.evaluate import group_names

    assert group_names(pd.Series([1.0, 2.0, None])).tolist() == ["1", "2", "missing"]
    assert group_names(pd.Series([0.5, 2.0])).tolist() == ["0.5", "2.0"]
