"""Per-group fairness of a classifier's decisions.

For each sensitive column: selection rate, true and false positive rates per group, the demographic
parity difference (largest gap in selection rate) and the equalized odds difference (the larger of the
largest gaps in true and false positive rate). These are fairlearn's definitions, and the project's
tests check the figures against fairlearn's own functions; they are computed here with one pandas
group-by, because fairlearn's MetricFrame walks the rows in Python (the README's Performance section
has the figures).

Awkward groups, and where this differs from fairlearn on purpose:
- Missing values in a sensitive column form a group of their own, named "missing" (fairlearn refuses
  them; replacing them with a label, as here, is what it asks for).
- A group with no actual positives has no true positive rate, and one with no actual negatives no false
  positive rate (0/0). fairlearn reports 0 for such a rate (scikit-learn's confusion matrix, normalised),
  which would claim that the model misses every positive of a group that had none, and widen the
  equalized odds gap with it, so a small or one-class group could fail the gate on a rate nobody
  measured. Here an undefined rate is recorded as null and left out of the gap: the gap in true positive
  rate is taken over the groups that have positives, the gap in false positive rate over those with
  negatives. That is fairlearn's own equalized odds difference computed on the groups where each rate
  exists, and it equals fairlearn's figure whenever every rate is defined. A gap needs two groups with the
  rate; with fewer it is 0. No figure is ever NaN, which JSON cannot hold.
- A group of one row is kept: its rates are exact for that row, and the gate reads the gap as it is.
"""

import numpy as np
import pandas as pd

from .files import rounded

MISSING_GROUP = "missing"


def group_rates(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> pd.DataFrame:
    """Rows, selection rate, true and false positive rate of each group (NaN where a group has no such rows)."""
    frame = pd.DataFrame(
        {
            "group": groups.astype("string").fillna(MISSING_GROUP).to_numpy(),
            "predicted": np.asarray(y_pred, dtype=float),
            "actual": np.asarray(y_true, dtype=int),
        }
    )
    by_group = frame.groupby("group", sort=True)
    rates = pd.DataFrame({"rows": by_group.size(), "selection_rate": by_group["predicted"].mean()})
    for name, actual in (("true_positive_rate", 1), ("false_positive_rate", 0)):
        rates[name] = frame[frame["actual"] == actual].groupby("group")["predicted"].mean()
    return rates


def group_fairness(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict:
    """Per-group rates and the two gap measures for one sensitive column; undefined rates are null."""
    rates = group_rates(y_true, y_pred, groups)
    gap = (rates.max() - rates.min()).fillna(0.0)  # over the groups where each rate is defined
    return {
        "groups": {
            str(group): {"rows": int(row["rows"]), **{name: _rounded(row[name]) for name in rates.columns[1:]}}
            for group, row in rates.iterrows()
        },
        "demographic_parity_difference": _rounded(gap["selection_rate"]),
        "equalized_odds_difference": _rounded(max(gap["true_positive_rate"], gap["false_positive_rate"])),
    }


def fairness_report(y_true: np.ndarray, y_pred: np.ndarray, frame: pd.DataFrame, sensitive: list[str]) -> dict:
    """Fairness per sensitive column, and the largest gap of any kind over all of them."""
    per_column = {column: group_fairness(y_true, y_pred, frame[column]) for column in sensitive}
    gaps = [
        report[gap]
        for report in per_column.values()
        for gap in ("demographic_parity_difference", "equalized_odds_difference")
    ]
    return {"by_column": per_column, "max_gap": max(gaps, default=0.0)}


def _rounded(value) -> float | None:
    return None if pd.isna(value) else rounded(value)
