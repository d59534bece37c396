import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.preprocess import clean, split


def test_labels_are_trimmed_merged_and_blank_ones_missing_and_rows_without_target_dropped():
    frame = pd.DataFrame(
        {
            "housing": pd.Categorical([" own", "own", "  ", "rent ", None]),
            "risk": [1.0, 0.0, 1.0, np.nan, 0.0],
        }
    )
    cleaned = clean(frame, "risk")
    assert cleaned["housing"].cat.categories.tolist() == ["own", "rent"]
    assert cleaned["housing"].tolist()[:2] == ["own", "own"]
    assert cleaned["housing"].isna().tolist() == [False, False, True, True]  # blank and missing
    assert len(cleaned) == 4 and cleaned.index.tolist() == [0, 1, 2, 3]


def test_split_is_stratified_and_seeded():
    frame = pd.DataFrame({"x": range(100), "risk": [1] * 70 + [0] * 30})
    train, test = split(frame, "risk", test_size=0.2, seed=7, task="binary")
    assert (len(train), len(test)) == (80, 20)
    assert test["risk"].mean() == pytest.approx(0.7)
    again, _ = split(frame, "risk", test_size=0.2, seed=7, task="binary")
    assert train.index.tolist() == again.index.tolist()
