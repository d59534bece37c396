"""Stage 2: check the processed splits against the data contract and the production reference.

Writes every check to metrics/validation.json; a failed check stops the pipeline before training.
"""

import pandas as pd

from .checks import Check, failure_lines, report
from .contract import contract_checks
from .drift import evidently_drift, psi_checks, sample
from .errors import PipelineError
from .files import read_parquet, write_json
from .params import load_params, param, path_param
from .schema import load_schema


def drift_checks(current: pd.DataFrame, reference: pd.DataFrame, settings: dict, report_path) -> list[Check]:
    """PSI on all rows and Evidently on samples, against the reference; the HTML report either way."""
    seed = settings["seed"]
    if reference.empty:
        current_sample = sample(current, settings["sample_rows"], seed)
        evidently_drift(current_sample, current_sample, report_path, seed)
        return [Check("drift: reference present", True, detail="no reference: no model has been promoted yet")]
    columns = [column for column in reference.columns if column in current.columns]
    shared = [sample(frame[columns], settings["sample_rows"], seed) for frame in (reference, current)]
    share = evidently_drift(*shared, report_path, seed)
    return [
        *psi_checks(reference, current, columns, settings["psi_bins"], settings["drift_psi_max"]),
        Check(
            "drift: share of drifted columns (Evidently)",
            share <= settings["drifted_share_max"],
            share,
            settings["drifted_share_max"],
        ),
    ]


def main() -> None:
    params = load_params()
    schema = load_schema(path_param(params, "schema"))
    frames = {"train": read_parquet(path_param(params, "train")), "test": read_parquet(path_param(params, "test"))}
    checks = contract_checks(frames, schema, param(params, "data.target"))
    current = pd.concat(frames.values(), ignore_index=True).drop(columns=[param(params, "data.target")])
    reference = read_parquet(path_param(params, "reference"))
    checks += drift_checks(current, reference, param(params, "validate"), path_param(params, "drift_report"))
    write_json(report(checks), path_param(params, "validation"))
    failures = failure_lines(checks)
    if failures:
        raise PipelineError(f"validation failed: {len(failures)} of {len(checks)} checks\n  " + "\n  ".join(failures))
    print(f"validate: all {len(checks)} checks passed")
