"""Synthetic data shaped like the sample, at any number of rows, for the scale benchmark.

A smoothed bootstrap: whole rows of the sample are drawn with replacement, so the columns, types,
categories, missing values and the target's relationship with the features are the sample's own; then
the wide numeric columns get seeded noise (a few percent of their spread, kept whole and within the
sample's range), so the rows are not mere copies.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

JITTERED_MIN_DISTINCT = 20  # integer columns with fewer distinct values (job, the target) are codes: no noise
NOISE_SHARE_OF_STD = 0.05


def synthesize(sample: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    drawn = sample.iloc[rng.integers(0, len(sample), size=rows)].reset_index(drop=True)
    for name in sample.select_dtypes("number").columns:
        values = sample[name].dropna()
        if values.nunique() < JITTERED_MIN_DISTINCT:
            continue
        noisy = drawn[name] + rng.normal(0.0, NOISE_SHARE_OF_STD * values.std(), size=rows)
        drawn[name] = noisy.round().clip(values.min(), values.max()).astype(sample[name].dtype)
    return drawn


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Arrow's multi-threaded CSV writer: pandas' own takes minutes at 10M rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pa_csv.write_csv(table, path, write_options=pa_csv.WriteOptions(quoting_style="needed"))
