"""Stage 2: check the processed splits against the data contract and the production reference.

Writes every check to metrics/validation.json; a failed check stops the pipeline before training.

Drift is measured against the reference, the data the production model was trained on, on every column
it holds: the features, and the target when `promote` kept it (a shift in the classes' shares, or in the
quantity to predict, is drift too). PSI (population stability index) per column, vectorised over the
full current data: numeric columns in the reference's quantile bins, categorical columns by category,
missing values as a bin of their own. Evidently's drift tests run on bounded, seeded samples and give
the share of drifted columns and the HTML report people read; Evidently is imported only when there is
a reference.
"""

import os
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .core import (
    Check,
    ChecksFailed,
    ValidateSettings,
    failure_lines,
    load_params,
    read_parquet,
    report,
    rounded,
    sample_positions,
    write_json,
    write_text,
)
from .schema import check_params, contract_checks, load_schema

# --- Drift
EPSILON = 1e-4  # stands in for an empty bin, so the logarithm stays finite


def psi(reference: pd.Series, current: pd.Series, bins: int) -> float:
    """Population stability index of one column; 0.1 is a small shift, 0.2 a significant one."""
    if pd.api.types.is_numeric_dtype(reference):
        edges = np.unique(np.nanquantile(reference.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        cuts: list[float] = edges.tolist()
        ref_codes = pd.cut(reference, cuts, labels=False).fillna(-1)
        cur_codes = pd.cut(current, cuts, labels=False).fillna(-1)
    else:
        ref_codes = reference.astype("string").fillna("<missing>")
        cur_codes = current.astype("string").fillna("<missing>")
    ref_share = ref_codes.value_counts(normalize=True)
    cur_share = cur_codes.value_counts(normalize=True)
    keys = ref_share.index.union(cur_share.index)
    expected = ref_share.reindex(keys, fill_value=0).to_numpy().clip(EPSILON)
    actual = cur_share.reindex(keys, fill_value=0).to_numpy().clip(EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_checks(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], bins: int, limit: float
) -> list[Check]:
    checks = []
    for column in columns:
        score = rounded(psi(reference[column], current[column], bins))
        checks.append(
            Check(
                "drift: PSI",
                score <= limit,
                score,
                limit,
                column=column,
                detail=""
                if score <= limit
                else "the distribution moved since the production model's "
                "training data; retrain and review, or raise validate.drift_psi_max knowingly",
            )
        )
    return checks


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame, report_path: Path, seed: int) -> float:
    """Evidently's DataDriftPreset on the two samples: writes the HTML report, returns the drifted share."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # no telemetry, so a closed network never slows a stage
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with seeded_ids(seed):
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        html = snapshot.get_html_str(as_iframe=False)
    write_text(report_path, html)
    counts = [m["value"] for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("DriftedColumnsCount")]
    return rounded(counts[0]["share"]) if counts else 0.0


NO_REFERENCE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Data drift: no reference yet</title></head>
<body><h1>Data drift: no reference yet</h1>
<p>Drift is measured against the data the production model was trained on, and no model has been
promoted yet. <code>promote</code> keeps a sample of the promoted model's training data as the reference;
the next <code>dvc repro</code> compares the data with it here.</p></body></html>
"""


def write_no_reference_page(report_path: Path) -> None:
    write_text(report_path, NO_REFERENCE_PAGE)


@contextmanager
def seeded_ids(seed: int) -> Iterator[None]:
    """Evidently names its widgets with random UUIDs (uuid4, and time-based uuid7); seeded ones give the
    same HTML bytes for the same data, so DVC sees an unchanged report. Evidently's own demo does the same.
    """
    import uuid6

    rng = random.Random(seed)
    originals = uuid.uuid4, uuid6.uuid7
    uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)
    uuid6.uuid7 = lambda: uuid6.UUID(int=rng.getrandbits(128), version=7)
    try:
        yield
    finally:
        uuid.uuid4, uuid6.uuid7 = originals


# --- The stage
def drift_checks(
    current: pd.DataFrame, reference: pd.DataFrame, settings: ValidateSettings, report_path: Path
) -> list[Check]:
    """PSI on all rows and Evidently on samples, against the reference. With no reference there is nothing
    to compare: Evidently is not even imported, and the report page says why it is empty.
    """
    seed = settings.seed
    if reference.empty:
        write_no_reference_page(report_path)
        return [Check("drift: reference present", True, detail="no reference: no model has been promoted yet")]
    columns = [column for column in reference.columns if column in current.columns]
    shared = [
        frame.iloc[sample_positions(len(frame), settings.sample_rows, seed)][columns] for frame in (reference, current)
    ]
    share = evidently_drift(shared[0], shared[1], report_path, seed)
    return [
        *psi_checks(reference, current, columns, settings.psi_bins, settings.drift_psi_max),
        Check(
            "drift: share of drifted columns (Evidently)",
            share <= settings.drifted_share_max,
            share,
            settings.drifted_share_max,
        ),
    ]


def main() -> None:
    params = load_params()
    paths, target = params.paths, params.data.target
    schema = load_schema(paths.contract)
    check_params(params, schema)
    frames = {"train": read_parquet(paths.train), "test": read_parquet(paths.test)}
    checks = contract_checks(frames, schema, target, params.data.task)
    current = pd.concat(frames.values(), ignore_index=True)
    checks += drift_checks(current, read_parquet(paths.reference), params.validation, paths.drift_report)
    write_json(report(checks), paths.validation)
    failures = failure_lines(checks)
    if failures:
        raise ChecksFailed(
            f"validation failed: {len(failures)} of {len(checks)} checks (all in {paths.validation}, drift in "
            f"{paths.drift_report}; training did not run, the model is unchanged)\n  " + "\n  ".join(failures)
        )
    print(f"validate: all {len(checks)} checks passed")
