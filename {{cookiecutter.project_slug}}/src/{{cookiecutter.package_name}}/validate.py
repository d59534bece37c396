"""Stage 2: check the processed splits against the data contract and the production reference.

Writes every check to metrics/validation.json; a failed check stops the pipeline before training.
"""

from pathlib import Path

import pandas as pd

from .checks import Check, failure_lines, report
from .contract import contract_checks
from .drift import evidently_drift, psi_checks, sample, write_no_reference_page
from .errors import ChecksFailed
from .files import read_parquet, write_json
from .params import ValidateSettings, load_params
from .schema import check_params, load_schema


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
    shared = [sample(frame[columns], settings.sample_rows, seed) for frame in (reference, current)]
    share = evidently_drift(*shared, report_path, seed)
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
    checks = contract_checks(frames, schema, target)
    current = pd.concat(frames.values(), ignore_index=True).drop(columns=[target])
    checks += drift_checks(current, read_parquet(paths.reference), params.validation, paths.drift_report)
    write_json(report(checks), paths.validation)
    failures = failure_lines(checks)
    if failures:
        raise ChecksFailed(
            f"validation failed: {len(failures)} of {len(checks)} checks (all in {paths.validation}, drift in "
            f"{paths.drift_report}; training did not run, the model is unchanged)\n  " + "\n  ".join(failures)
        )
    print(f"validate: all {len(checks)} checks passed")
