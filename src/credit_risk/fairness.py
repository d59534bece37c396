"""Per-group fairness of a classifier's decisions, measured with fairlearn.

For each sensitive column: selection rate and true positive rate per group, the demographic parity
difference (largest gap in selection rate) and the equalized odds difference (largest gap in true or
false positive rate).
"""

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    selection_rate,
    true_positive_rate,
)

DIGITS = 6


def group_fairness(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict:
    """Per-group rates and the two gap measures for one sensitive column."""
    groups = groups.astype("string").fillna("missing")
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    sizes = groups.value_counts()
    by_group = {
        str(group): {"rows": int(sizes[group]), **{name: _rounded(value) for name, value in row.items()}}
        for group, row in frame.by_group.iterrows()
    }
    return {
        "groups": dict(sorted(by_group.items())),
        "demographic_parity_difference": _rounded(
            demographic_parity_difference(y_true, y_pred, sensitive_features=groups)
        ),
        "equalized_odds_difference": _rounded(equalized_odds_difference(y_true, y_pred, sensitive_features=groups)),
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


def _rounded(value) -> float:
    return round(float(value), DIGITS)
