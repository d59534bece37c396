import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.fairness import fairness_report
from {{ cookiecutter.package_name }}.robustness import add_numeric_noise, inject_missing, robustness_report, swap_categories

FEATURES = pd.DataFrame({"amount": np.arange(200, dtype=float), "colour": pd.Categorical(["red", "blue"] * 100)})


def test_equal_treatment_has_no_gap_and_unequal_treatment_shows_it():
    y_true = np.array([1, 0] * 50)
    groups = pd.DataFrame({"sex": ["f"] * 50 + ["m"] * 50})
    fair = fairness_report(y_true, y_true, groups, ["sex"])
    assert fair["max_gap"] == 0.0
    biased = fairness_report(y_true, np.array([0] * 50 + [1] * 50), groups, ["sex"])
    assert biased["by_column"]["sex"]["demographic_parity_difference"] == pytest.approx(1.0)
    assert biased["by_column"]["sex"]["groups"]["m"] == {"rows": 50, "selection_rate": 1.0, "true_positive_rate": 1.0}


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
    settings = {"noise_scale": 0.1, "missing_rate": 0.5, "swap_rate": 0.5}
    report = robustness_report(lambda frame: 1.0 - frame.isna().mean().mean(), FEATURES, settings, seed=0)
    assert report["clean"] == 1.0
    assert report["max_drop"] == report["drop"]["missing_values"] > 0.3
