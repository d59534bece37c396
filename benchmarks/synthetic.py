"""Synthetic data shaped like a task's example, at any number of rows, for the benchmarks.

A smoothed bootstrap: whole rows of the sample are drawn with replacement, so the columns, types,
categories, missing values and the target's relationship with the features are the sample's own; then
the wide numeric columns get seeded noise (a few percent of their spread, kept to the sample's decimal
places and within its range), so the rows are not mere copies. A row whose noise breaks one of the
contract's business rules (diabetes: s2 + s3 < s1) keeps its drawn values, which the sample's row holds.
One function serves every task's example: German credit (binary), wine (multiclass: 13 numeric
features, 3 cultivars) and diabetes (regression: 10 numeric features with `sex` 1/2, a numeric target
that gets the same noise).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from tools.example_data import RAW_DATA

from credit_risk.schema import rule_holds

JITTERED_MIN_DISTINCT = 20  # numeric columns with fewer distinct values (job, sex, a class code) are codes: no noise
NOISE_SHARE_OF_STD = 0.05
MAX_DECIMALS = 6  # the finest resolution kept for a float column; the examples use at most 4 (diabetes' s5)
# The example data the template ships for each answer to its `task` prompt, in its data/raw/.
EXAMPLES = {"binary": "german_credit.csv", "multiclass": "wine.csv", "regression": "diabetes.csv"}


def example(task: str) -> pd.DataFrame:
    """The sample the template ships for `task`, as pandas reads its CSV."""
    return pd.read_csv(RAW_DATA / EXAMPLES[task])


def decimal_places(values: pd.Series) -> int:
    """The fewest decimal places that hold every value (0 for whole numbers, even stored as floats)."""
    for places in range(MAX_DECIMALS):
        if np.allclose(values, values.round(places), rtol=0.0, atol=1e-9):
            return places
    return MAX_DECIMALS


def synthesize(sample: pd.DataFrame, rows: int, seed: int, rules: dict[str, str] | None = None) -> pd.DataFrame:
    """`rows` rows shaped like `sample`; `rules` (the contract's, name: expression) hold on every row."""
    rng = np.random.default_rng(seed)
    drawn = sample.iloc[rng.integers(0, len(sample), size=rows)].reset_index(drop=True)
    jittered = drawn.copy()
    for name in sample.select_dtypes("number").columns:
        values = sample[name].dropna()
        if values.nunique() < JITTERED_MIN_DISTINCT:
            continue
        noisy = drawn[name] + rng.normal(0.0, NOISE_SHARE_OF_STD * values.std(), size=rows)
        kept = noisy.round(decimal_places(values)).clip(values.min(), values.max())
        jittered[name] = kept.astype(sample[name].dtype)
    holds = np.ones(rows, dtype=bool)
    for name, expression in (rules or {}).items():
        holds &= rule_holds(jittered, name, expression).to_numpy()
    jittered.loc[~holds] = drawn.loc[~holds]
    return jittered


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Arrow's multi-threaded CSV writer: pandas' own takes minutes at 10M rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pa_csv.write_csv(table, path, write_options=pa_csv.WriteOptions(quoting_style="needed"))
