"""Stage 2: check the processed data against the schema; bad data stops the pipeline here."""

from .checks import Check, failure_lines, report
from .errors import PipelineError
from .files import read_parquet, write_json
from .params import load_params, param, path_param
from .schema import check_column, check_dataset, check_row_count, load_schema


def validation_checks(frames: dict, schema, target: str) -> list[Check]:
    checks = [check_row_count(sum(len(frame) for frame in frames.values()), schema)]
    for label, frame in frames.items():
        checks += check_dataset(frame, schema, target, label)
        for name, spec in schema.columns.items():
            if name in frame.columns:
                checks += check_column(frame[name], spec, label)
    return checks


def main() -> None:
    params = load_params()
    schema = load_schema(path_param(params, "schema"))
    frames = {"train": read_parquet(path_param(params, "train")), "test": read_parquet(path_param(params, "test"))}
    checks = validation_checks(frames, schema, param(params, "data.target"))
    write_json(report(checks), path_param(params, "validation"))
    failures = failure_lines(checks)
    if failures:
        raise PipelineError(f"validation failed: {len(failures)} of {len(checks)} checks\n  " + "\n  ".join(failures))
    print(f"validate: all {len(checks)} checks passed")
