"""Stage 2: check the processed splits against the data contract and the production reference.

Writes every check to metrics/validation.json; a failed check stops the pipeline before training.

Drift is measured against the reference, the data the production model was trained on, on every column
it holds: the features, and the target when `promote` kept it (a shift in the classes' shares, or in the
quantity to predict, is drift too). PSI (population stability index) per column, vectorised over the
full current data: numeric columns in the reference's quantile bins, categorical columns by category,
missing values as a bin of their own. Evidently's drift tests run on bounded, seeded samples and give
the share of drifted columns and the HTML report people read; Evidently is imported only when there is
a reference.

With `compute.engine: dask` the splits are read in partitions on the cluster: the contract from merged
partition profiles (schema.py), PSI from the partitions' bin counts added up, Evidently on the same seeded
sample of rows gathered from the partitions that hold them. Same checks as the local engine on the same rows.
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
    Params,
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
from .schema import Schema, check_params, contract_checks, load_schema, partition_profiles, profile_contract_checks

# --- Drift
EPSILON = 1e-4  # stands in for an empty bin, so the logarithm stays finite


Cuts = list[float] | None  # a numeric column's bin edges from the reference; None: a categorical's categories


def psi(reference: pd.Series, current: pd.Series, bins: int) -> float:
    """Population stability index of one column; 0.1 is a small shift, 0.2 a significant one."""
    cuts = reference_cuts(reference, bins)
    return psi_from_counts(bin_counts(reference, cuts), bin_counts(current, cuts))


def reference_cuts(reference: pd.Series, bins: int) -> Cuts:
    """The reference's quantile bin edges, open at both ends, for a numeric column; None for labels."""
    if not pd.api.types.is_numeric_dtype(reference):
        return None
    edges = np.unique(np.nanquantile(reference.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    cuts: list[float] = edges.tolist()
    return cuts


def bin_counts(values: pd.Series, cuts: Cuts) -> pd.Series:
    """Rows per bin (or category), missing values in a bin of their own: counts of partitions add up."""
    if cuts is not None:
        return pd.cut(values, cuts, labels=False).fillna(-1).value_counts()
    return values.astype("string").fillna("<missing>").value_counts()


def psi_from_counts(reference: pd.Series, current: pd.Series) -> float:
    """The PSI formula on the two columns' bin counts."""
    ref_share, cur_share = reference / reference.sum(), current / current.sum()
    keys = ref_share.index.union(cur_share.index)
    expected = ref_share.reindex(keys, fill_value=0).to_numpy().clip(EPSILON)
    actual = cur_share.reindex(keys, fill_value=0).to_numpy().clip(EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def frame_bin_counts(frame: pd.DataFrame, cuts: dict[str, Cuts]) -> dict[str, pd.Series]:
    """Each column's bin counts in one frame or partition (runs on a Dask worker)."""
    return {column: bin_counts(frame[column], column_cuts) for column, column_cuts in cuts.items()}


def summed_counts(partitions: list[dict[str, pd.Series]]) -> dict[str, pd.Series]:
    """The partitions' bin counts added up, per column: the whole data's counts."""
    return {
        column: pd.concat([counts[column] for counts in partitions]).groupby(level=0).sum() for column in partitions[0]
    }


def psi_checks(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], bins: int, limit: float
) -> list[Check]:
    cuts = {column: reference_cuts(reference[column], bins) for column in columns}
    return psi_count_checks(frame_bin_counts(reference, cuts), frame_bin_counts(current, cuts), limit)


def psi_count_checks(reference: dict[str, pd.Series], current: dict[str, pd.Series], limit: float) -> list[Check]:
    checks = []
    for column, counts in reference.items():
        score = rounded(psi_from_counts(counts, current[column]))
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
    if reference.empty:
        return drift_checks_from(reference, {}, {}, current.iloc[:0], settings, report_path)
    columns = [column for column in reference.columns if column in current.columns]
    cuts = {column: reference_cuts(reference[column], settings.psi_bins) for column in columns}
    sample = current.iloc[sample_positions(len(current), settings.sample_rows, settings.seed)][columns]
    return drift_checks_from(reference, cuts, frame_bin_counts(current, cuts), sample, settings, report_path)


def drift_checks_from(
    reference: pd.DataFrame,
    cuts: dict[str, Cuts],
    current_counts: dict[str, pd.Series],
    current_sample: pd.DataFrame,
    settings: ValidateSettings,
    report_path: Path,
) -> list[Check]:
    """The drift checks from the current data's bin counts (on the reference's cuts) and its seeded sample of
    `sample_rows`: what either engine computes from its rows."""
    seed = settings.seed
    if reference.empty:
        write_no_reference_page(report_path)
        return [Check("drift: reference present", True, detail="no reference: no model has been promoted yet")]
    reference_sample = reference.iloc[sample_positions(len(reference), settings.sample_rows, seed)][list(cuts)]
    share = evidently_drift(reference_sample, current_sample, report_path, seed)
    return [
        *psi_count_checks(frame_bin_counts(reference, cuts), current_counts, settings.drift_psi_max),
        Check(
            "drift: share of drifted columns (Evidently)",
            share <= settings.drifted_share_max,
            share,
            settings.drifted_share_max,
        ),
    ]


def validate_locally(params: Params, schema: Schema) -> list[Check]:
    paths = params.paths
    frames = {"train": read_parquet(paths.train), "test": read_parquet(paths.test)}
    checks = contract_checks(frames, schema, params.data.target, params.data.task)
    current = pd.concat(frames.values(), ignore_index=True)
    return checks + drift_checks(current, read_parquet(paths.reference), params.validation, paths.drift_report)


def validate_on_cluster(params: Params, schema: Schema) -> list[Check]:
    """The stage on the current Dask client: one pass over the splits' partitions gives their contract profiles,
    row counts and bin counts on the reference's cuts (the reference is a sample, read here); Evidently then
    reads the seeded sample's rows, gathered from the partitions that hold them. The current data is train's
    partitions then test's, as the local engine concatenates them, so both engines sample the same rows."""
    import dask
    import dask.dataframe as dd
    from dask import delayed

    from .compute import read_partitions, rows_at_positions

    paths, settings, target = params.paths, params.validation, params.data.target
    splits = {"train": read_partitions(paths.train), "test": read_partitions(paths.test)}
    parts = {label: frame.to_delayed() for label, frame in splits.items()}
    current = parts["train"] + parts["test"]
    reference = read_parquet(paths.reference)
    columns = [column for column in reference.columns if column in splits["train"].columns]
    cuts = {column: reference_cuts(reference[column], settings.psi_bins) for column in columns}
    profiles, lengths, counts = dask.compute(
        {label: partition_profiles(label_parts, schema, target) for label, label_parts in parts.items()},
        [delayed(len)(part) for part in current],
        [delayed(frame_bin_counts)(part, cuts) for part in current],
    )
    checks = profile_contract_checks(profiles, schema, target, params.data.task)
    if reference.empty:
        return checks + drift_checks_from(reference, {}, {}, pd.DataFrame(), settings, paths.drift_report)
    positions = sample_positions(sum(lengths), settings.sample_rows, settings.seed)
    whole = dd.concat(list(splits.values()))  # train's partitions then test's, as `current` above
    current_sample = rows_at_positions(whole, lengths, positions)[columns].reset_index(drop=True)
    drift = drift_checks_from(reference, cuts, summed_counts(counts), current_sample, settings, paths.drift_report)
    return checks + drift


def main() -> None:
    params = load_params()
    paths = params.paths
    schema = load_schema(paths.contract)
    check_params(params, schema)
    if params.compute.engine == "dask":
        from .compute import dask_client

        with dask_client(params.compute):
            checks = validate_on_cluster(params, schema)
    else:
        checks = validate_locally(params, schema)
    write_json(report(checks), paths.validation)
    failures = failure_lines(checks)
    if failures:
        raise ChecksFailed(
            f"validation failed: {len(failures)} of {len(checks)} checks (all in {paths.validation}, drift in "
            f"{paths.drift_report}; training did not run, the model is unchanged)\n  " + "\n  ".join(failures)
        )
    print(f"validate: all {len(checks)} checks passed")
