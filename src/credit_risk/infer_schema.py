"""Draft schema.yaml from a CSV, as TensorFlow Data Validation infers a schema: types, missing values,
ranges, categories and statistics as the data has them now, with room to spare. Review it, then commit.
"""

import math
from pathlib import Path

import pandas as pd
import yaml

from .errors import PipelineError
from .params import load_params, path_param

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


def main(data: str | None = None, output: str | None = None) -> None:
    params = load_params()
    source = Path(data) if data else path_param(params, "raw")
    target = Path(output) if output else path_param(params, "schema")
    if not source.exists():
        raise PipelineError(f"{source} not found: pass --data with the CSV to describe")
    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=True, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise PipelineError(f"{source}: not a readable UTF-8 CSV ({error})") from None
    header = (
        f"# Drafted by infer-schema from {source} ({len(frame)} rows). REVIEW BEFORE COMMITTING:\n"
        "# tighten or loosen ranges, categories, missing rates and means to what the data may be, not what it is.\n"
    )
    target.write_text(header + yaml.safe_dump(infer(frame), sort_keys=False, allow_unicode=True))
    print(f"infer-schema: wrote {target} for {frame.shape[1]} columns; review it before committing")
