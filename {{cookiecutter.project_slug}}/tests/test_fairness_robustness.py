import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from {{ cookiecutter.package_name }}.fairness import fairness_report
from {{ cookiecutter.package_name }}.params import Robustness
from {{ cookiecutter.package_name }}.robustness import add_numeric_noise, inject_missing, robustness_report, swap_categories

FEATURES = pd.DataFrame({"amount": np.arange(200, dtype=float), "colour": pd.Categorical(["red", "blue"] * 100)})


def test_equal_treatment_has_no_gap_and_unequal_treatment_shows_it():
    y_true = np.array([1, 0] * 50)
    groups = pd.DataFrame({"sex": ["f"] * 50 + ["m"] * 50})
    fair = fairness_report(y_true, y_true, groups, ["sex"])
    assert fair["max_gap"] == 0.0
    biased = fairness_report(y_true, np.array([0] * 50 + [1] * 50), groups, ["sex"])
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
    gaps = fairness_report(y_true, y_pred, frame, ["group"])["by_column"]["group"]
    expected_parity = demographic_parity_difference(y_true, y_pred, sensitive_features=frame["group"])
    expected_odds = equalized_odds_difference(y_true, y_pred, sensitive_features=frame["group"])
    assert gaps["demographic_parity_difference"] == pytest.approx(expected_parity, abs=1e-6)
    assert gaps["equalized_odds_difference"] == pytest.approx(expected_odds, abs=1e-6)


def test_perturbations_change_the_data_as_asked_and_are_seeded():
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    noisy = add_numeric_noise(FEATURES, 0.1, rng())
    assert not noisy["amount"].equals(FEATURES["amount"])
    assert noisy["amount"].equals(add_numeric_noise(FEATURES, 0.1, rng())["amount"])
    assert inject_missing(FEATURES, 0.5, rng()).isna().mean().between(0.35, 0.65).all()
    swapped = swap_categories(FEATURES, 1.0, rng())
    assert set(swapped["colour"].cat.categories) == {"blue", "red"}
    assert (swapped["colour"] != FEATURES["colour"]).any()


def test_largest_drop_is_reported():
    settings = Robustness(metric="roc_auc", seed=0, noise_scale=0.1, missing_rate=0.5, swap_rate=0.5, max_rows=1000)
    labels = np.zeros(len(FEATURES))
    report = robustness_report(lambda frame, _: 1.0 - frame.isna().mean().mean(), FEATURES, labels, settings, seed=0)
    assert report["clean"] == 1.0
    assert report["max_drop"] == report["drop"]["missing_values"] > 0.3


def test_a_large_test_set_is_perturbed_on_a_seeded_sample_with_its_own_labels():
    settings = Robustness(metric="roc_auc", seed=0, noise_scale=0.1, missing_rate=0.1, swap_rate=0.1, max_rows=50)
    labels = FEATURES["amount"].to_numpy() * 2
    calls = []

    def score(frame, frame_labels):
        calls.append((frame.index.tolist(), frame_labels.tolist()))
        return 1.0

    robustness_report(score, FEATURES, labels, settings, seed=0)
    robustness_report(score, FEATURES, labels, settings, seed=0)
    rows, clean_labels = calls[0]
    assert len(rows) == 50 and clean_labels == [2.0 * row for row in rows]
    assert all(call == calls[0] for call in calls)
