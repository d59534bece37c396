"""Draft schema.yaml from a CSV, as TensorFlow Data Validation infers a schema: types, missing values,
ranges, categories and statistics as the data has them now, with room to spare. Review it, then commit.
"""

import math
from pathlib import Path

import pandas as pd
import yaml

from .errors import PipelineError
from .files import write_with
from .params import load_params
from .raw_data import sniff

CATEGORY_LIMIT = 50  # a text column with more distinct values is kept categorical without a closed list
MISSING_MARGIN = 1.5  # the allowed missing rate is the observed one times this (rounded up)
MEAN_MARGIN = 0.25  # the mean may move by this fraction of the spread before the check fails


def column_spec(values: pd.Series) -> dict:
    missing = float(values.isna().mean())
    spec: dict = {"nullable": missing > 0}
    if missing > 0:
        spec["max_missing_rate"] = min(1.0, math.ceil(missing * MISSING_MARGIN * 100) / 100)
    numbers = pd.to_numeric(values, errors="coerce")
    if values.notna().any() and numbers.notna().sum() == values.notna().sum():
        present = numbers.dropna()
        whole = bool((present == present.round()).all())
        mean, std = float(present.mean()), float(present.std(ddof=0))
        return {
            "type": "integer" if whole else "numeric",
            **spec,
            "min": _round(present.min(), floor=True),
            "max": _round(present.max(), floor=False),
            "mean_min": _round(mean - MEAN_MARGIN * std, floor=True),
            "mean_max": _round(mean + MEAN_MARGIN * std, floor=False),
        }
    categories = sorted(values.dropna().astype(str).str.strip().unique())
    if len(categories) <= CATEGORY_LIMIT:
        spec["allowed"] = categories
    return {"type": "categorical", **spec}


def _round(value: float, floor: bool) -> float | int:
    rounded = math.floor(value * 100) / 100 if floor else math.ceil(value * 100) / 100
    return int(rounded) if rounded == int(rounded) else rounded


def infer(frame: pd.DataFrame) -> dict:
    return {
        "dataset": {"min_rows": max(1, len(frame) // 2)},
        "columns": {str(name): column_spec(frame[name]) for name in frame.columns},
    }


def main(data: str | None = None, output: str | None = None, force: bool = False) -> None:
    params = load_params()
    source = Path(data) if data else params.paths.raw
    target = Path(output) if output else params.paths.contract
    dialect = sniff(source, params.data.csv_delimiter)  # refuses what is not a CSV with rows: empty, binary, ...
    if len(dialect.header) < 2:
        raise PipelineError(
            f"{source}: one column ({dialect.header[0][:40]!r}) is no data set to learn from: is "
            f"data.csv_delimiter ({dialect.delimiter!r}) the file's delimiter?"
        )
    try:
        frame = pd.read_csv(
            source, sep=dialect.delimiter, dtype=str, keep_default_na=True, encoding=dialect.encoding
        ).rename(columns=str.strip)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise PipelineError(f"{source}: not a readable CSV ({error})") from None
    written = target if force or not target.exists() else target.with_suffix(".draft" + target.suffix)
    header_comment = (
        f"# Drafted by infer-schema from {source} ({len(frame)} rows). REVIEW BEFORE COMMITTING:\n"
        "# tighten or loosen ranges, categories, missing rates and means to what the data may be, not what it is.\n"
    )
    draft = header_comment + yaml.safe_dump(infer(frame), sort_keys=False, allow_unicode=True)
    write_with(lambda handle: handle.write(draft.encode()), written)
    kept = "" if written == target else f" ({target} exists and was kept: compare, then move the draft over it)"
    print(f"infer-schema: wrote {written} for {frame.shape[1]} columns; review it before committing{kept}")
