"""How much a model's quality drops when its input is perturbed as real data drifts or breaks.

Three seeded perturbations of the test features: Gaussian noise on numeric columns (scaled to each
column's spread), values blanked to missing, and categories swapped for another seen category.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.utils import resample

from .files import rounded
from .params import Robustness


def add_numeric_noise(frame: pd.DataFrame, scale: float, rng: np.random.Generator) -> pd.DataFrame:
    noisy = frame.copy()
    for column in frame.select_dtypes("number").columns:
        spread = float(frame[column].std()) or 1.0
        noisy[column] = frame[column] + rng.normal(0.0, scale * spread, size=len(frame))
    return noisy


def inject_missing(frame: pd.DataFrame, rate: float, rng: np.random.Generator) -> pd.DataFrame:
    blanked = frame.copy()
    for column in frame.columns:
        blanked[column] = frame[column].mask(rng.random(len(frame)) < rate)
    return blanked


def swap_categories(frame: pd.DataFrame, rate: float, rng: np.random.Generator) -> pd.DataFrame:
    swapped = frame.copy()
    for column in frame.select_dtypes("category").columns:
        categories = frame[column].cat.categories
        if len(categories) < 2:
            continue
        chosen = rng.random(len(frame)) < rate
        replacement = pd.Categorical(rng.choice(categories, size=int(chosen.sum())), categories=categories)
        values = swapped[column].copy()
        values[chosen] = replacement
        swapped[column] = values
    return swapped


def robustness_report(
    score: Callable[[pd.DataFrame, np.ndarray], float],
    features: pd.DataFrame,
    labels: np.ndarray,
    settings: Robustness,
    seed: int,
) -> dict:
    """The metric on clean and perturbed features, each drop from clean, and the largest drop.

    On a seeded sample of at most `max_rows` rows: four scorings of the whole test set would cost more
    than the rest of evaluate at 10M rows, and the drop is a difference of two scores on the same rows.
    """
    if len(features) > settings.max_rows:
        features, labels = resample(
            features, labels, n_samples=settings.max_rows, replace=False, stratify=labels, random_state=seed
        )
    perturbations = {
        "numeric_noise": lambda rng: add_numeric_noise(features, settings.noise_scale, rng),
        "missing_values": lambda rng: inject_missing(features, settings.missing_rate, rng),
        "category_swap": lambda rng: swap_categories(features, settings.swap_rate, rng),
    }
    clean = score(features, labels)
    perturbed = {name: score(make(np.random.default_rng(seed)), labels) for name, make in perturbations.items()}
    drops = {name: rounded(clean - value) for name, value in perturbed.items()}
    return {
        "clean": rounded(clean),
        "perturbed": {name: rounded(value) for name, value in perturbed.items()},
        "drop": drops,
        "max_drop": max(drops.values()),
    }
