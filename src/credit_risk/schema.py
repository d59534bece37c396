"""The data contract (schema.yaml): column types and constraints, and the checks that enforce it.

The check functions are pure: they take a DataFrame and return `Check` records.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .checks import Check
from .errors import PipelineError

TYPES = ("numeric", "integer", "categorical")
EXAMPLES_SHOWN = 3


@dataclass(frozen=True)
class ColumnSpec:
    type: str
    nullable: bool = False
    max_missing_rate: float | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in ("numeric", "integer")


@dataclass(frozen=True)
class Schema:
    columns: dict[str, ColumnSpec]
    min_rows: int = 1

    def read_dtypes(self) -> dict[str, str]:
        """The dtype each column is read and stored as: float for numbers, category for labels."""
        return {name: "float64" if spec.is_numeric else "category" for name, spec in self.columns.items()}


def load_schema(path: Path) -> Schema:
    if not path.exists():
        raise PipelineError(f"{path} not found: restore it from git or draft one with the infer-schema command")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from None
    columns = raw.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise PipelineError(f"{path} needs a 'columns' mapping from each column name to its type and rules")
    return Schema(
        columns={str(name): _column_spec(path, str(name), spec) for name, spec in columns.items()},
        min_rows=int((raw.get("dataset") or {}).get("min_rows", 1)),
    )


def _column_spec(path: Path, name: str, spec: Any) -> ColumnSpec:
    if not isinstance(spec, dict) or spec.get("type") not in TYPES:
        raise PipelineError(f"{path}: column '{name}' needs 'type' set to one of {', '.join(TYPES)}")
    known = set(ColumnSpec.__dataclass_fields__)
    unknown = sorted(set(spec) - known)
    if unknown:
        raise PipelineError(f"{path}: column '{name}' has unknown keys {unknown}; known keys: {sorted(known)}")
    allowed = spec.get("allowed")
    return ColumnSpec(**{**spec, "allowed": tuple(allowed) if allowed is not None else None})


def _examples(values: pd.Series) -> str:
    shown = sorted({str(value) for value in values.head(100)})[:EXAMPLES_SHOWN]
    return ", ".join(repr(value) for value in shown)


def check_row_count(rows: int, schema: Schema) -> Check:
    enough = rows >= schema.min_rows
    return Check(
        "dataset: row count",
        enough,
        rows,
        schema.min_rows,
        detail="" if enough else "too few rows to train and evaluate on; lower dataset.min_rows only knowingly",
    )


def check_dataset(frame: pd.DataFrame, schema: Schema, target: str, label: str) -> list[Check]:
    """Required columns and a usable target, for one named part of the data."""
    checks = []
    missing = sorted(set(schema.columns) - set(frame.columns))
    checks.append(
        Check(
            f"{label}: required columns present",
            not missing,
            len(missing),
            0,
            detail=f"missing {missing}" if missing else "",
        )
    )
    if target not in frame.columns:
        checks.append(
            Check(
                f"{label}: target present",
                False,
                column=target,
                detail="set data.target in params.yaml to the label column",
            )
        )
        return checks
    classes = frame[target].nunique(dropna=True)
    checks.append(
        Check(
            f"{label}: target has two classes",
            classes == 2,
            int(classes),
            2,
            column=target,
            detail="" if classes == 2 else "a binary classifier needs both classes in the data",
        )
    )
    return checks


def check_column(series: pd.Series, spec: ColumnSpec, label: str) -> list[Check]:
    """Type, missing values, range and allowed values of one column against its spec."""
    name = series.name
    type_ok = (
        pd.api.types.is_numeric_dtype(series) if spec.is_numeric else isinstance(series.dtype, pd.CategoricalDtype)
    )
    checks = [Check(f"{label}: type {spec.type}", type_ok, str(series.dtype), spec.type, column=name)]
    if not type_ok:
        return checks
    missing_rate = float(series.isna().mean()) if len(series) else 0.0
    if not spec.nullable:
        nulls = int(series.isna().sum())
        checks.append(
            Check(
                f"{label}: no missing values",
                nulls == 0,
                nulls,
                0,
                column=name,
                detail="" if nulls == 0 else "fill them, drop the rows, or set nullable: true in schema.yaml",
            )
        )
    if spec.max_missing_rate is not None:
        checks.append(
            Check(
                f"{label}: missing rate",
                missing_rate <= spec.max_missing_rate,
                round(missing_rate, 4),
                spec.max_missing_rate,
                column=name,
            )
        )
    present = series.dropna()
    if spec.type == "integer":
        fractional = present[present != present.round()]
        checks.append(
            Check(
                f"{label}: whole numbers",
                fractional.empty,
                len(fractional),
                0,
                column=name,
                detail=f"e.g. {_examples(fractional)}" if len(fractional) else "",
            )
        )
    if spec.min is not None:
        below = present[present < spec.min]
        checks.append(
            Check(
                f"{label}: minimum",
                below.empty,
                _extreme(present.min()),
                spec.min,
                column=name,
                detail=f"{len(below)} rows below, e.g. {_examples(below)}" if len(below) else "",
            )
        )
    if spec.max is not None:
        above = present[present > spec.max]
        checks.append(
            Check(
                f"{label}: maximum",
                above.empty,
                _extreme(present.max()),
                spec.max,
                column=name,
                detail=f"{len(above)} rows above, e.g. {_examples(above)}" if len(above) else "",
            )
        )
    if spec.allowed is not None:
        unseen = present[~present.isin(_allowed_values(spec))]
        checks.append(
            Check(
                f"{label}: allowed values",
                unseen.empty,
                len(unseen),
                0,
                column=name,
                detail=(
                    f"{len(unseen)} rows hold values not in the schema, e.g. {_examples(unseen)}; "
                    "add them to 'allowed' in schema.yaml if they are intended"
                )
                if len(unseen)
                else "",
            )
        )
    return checks


def _extreme(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _allowed_values(spec: ColumnSpec) -> list:
    """Allowed values in the column's stored form: numbers as floats, labels as text."""
    return [float(value) for value in spec.allowed] if spec.is_numeric else [str(value) for value in spec.allowed]
