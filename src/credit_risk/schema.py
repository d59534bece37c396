"""The data contract (schema.yaml): column types and constraints, and the checks that enforce it.

The check functions are pure: they take a DataFrame and return `Check` records.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .checks import Check
from .errors import PipelineError

TYPES = ("numeric", "integer", "categorical")
EXAMPLES_SHOWN = 3
INFER_HINT = "run the infer-schema command and review its draft if the change is intended"


@dataclass(frozen=True)
class ColumnSpec:
    type: str
    nullable: bool = False
    max_missing_rate: float | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple | None = None
    unique: bool = False
    mean_min: float | None = None
    mean_max: float | None = None
    std_max: float | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in ("numeric", "integer")


@dataclass(frozen=True)
class Schema:
    columns: dict[str, ColumnSpec]
    min_rows: int = 1
    max_rows: int | None = None
    rules: dict[str, str] = field(default_factory=dict)

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
    dataset = raw.get("dataset") or {}
    return Schema(
        columns={str(name): _column_spec(path, str(name), spec) for name, spec in columns.items()},
        min_rows=int(dataset.get("min_rows", 1)),
        max_rows=dataset.get("max_rows"),
        rules={str(name): str(rule) for name, rule in (raw.get("rules") or {}).items()},
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


def examples(values: pd.Series) -> str:
    shown = sorted({str(value) for value in values.head(100)})[:EXAMPLES_SHOWN]
    return ", ".join(repr(value) for value in shown)


def check_row_count(rows: int, schema: Schema) -> list[Check]:
    checks = [
        Check(
            "dataset: row count >= min_rows",
            rows >= schema.min_rows,
            rows,
            schema.min_rows,
            detail="" if rows >= schema.min_rows else "too few rows to train and evaluate on",
        ),
    ]
    if schema.max_rows is not None:
        checks.append(
            Check(
                "dataset: row count <= max_rows",
                rows <= schema.max_rows,
                rows,
                schema.max_rows,
                detail="" if rows <= schema.max_rows else "more rows than expected: duplicated input?",
            )
        )
    return checks


def check_dataset(frame: pd.DataFrame, schema: Schema, target: str, label: str) -> list[Check]:
    """Required columns and a usable target, for one named part of the data."""
    missing = sorted(set(schema.columns) - set(frame.columns))
    checks = [
        Check(
            f"{label}: required columns present",
            not missing,
            len(missing),
            0,
            detail=f"missing {missing}; {INFER_HINT}" if missing else "",
        )
    ]
    if target not in frame.columns:
        return [
            *checks,
            Check(
                f"{label}: target present",
                False,
                column=target,
                detail="set data.target in params.yaml to the label column",
            ),
        ]
    classes = frame[target].nunique(dropna=True)
    return [
        *checks,
        Check(
            f"{label}: target has two classes",
            classes == 2,
            int(classes),
            2,
            column=target,
            detail="" if classes == 2 else "a binary classifier needs both classes in the data",
        ),
    ]


def check_column(series: pd.Series, spec: ColumnSpec, label: str) -> list[Check]:
    """Type, missing values, range, allowed values, uniqueness and statistics of one column."""
    name = series.name
    type_ok = (
        pd.api.types.is_numeric_dtype(series) if spec.is_numeric else isinstance(series.dtype, pd.CategoricalDtype)
    )
    checks = [Check(f"{label}: type {spec.type}", type_ok, str(series.dtype), spec.type, column=name)]
    if not type_ok:
        return checks

    def bad_rows(rule: str, bad: pd.Series, value, threshold, fix: str = "") -> Check:
        detail = f"{len(bad)} rows, e.g. {examples(bad)}{'; ' + fix if fix else ''}" if len(bad) else ""
        return Check(f"{label}: {rule}", bad.empty, value, threshold, column=name, detail=detail)

    missing_rate = float(series.isna().mean()) if len(series) else 0.0
    present = series.dropna()
    if not spec.nullable:
        nulls = int(series.isna().sum())
        checks.append(
            Check(
                f"{label}: no missing values",
                nulls == 0,
                nulls,
                0,
                column=name,
                detail="" if not nulls else "fill or drop them, or set nullable: true in schema.yaml",
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
    if spec.type == "integer":
        fractional = present[present != present.round()]
        checks.append(bad_rows("whole numbers", fractional, len(fractional), 0))
    if spec.min is not None:
        below = present[present < spec.min]
        checks.append(bad_rows("minimum", below, _number(present.min()), spec.min))
    if spec.max is not None:
        above = present[present > spec.max]
        checks.append(bad_rows("maximum", above, _number(present.max()), spec.max))
    if spec.allowed is not None:
        unseen = present[~present.isin(_allowed_values(spec))]
        checks.append(bad_rows("allowed values", unseen, len(unseen), 0, f"add them to 'allowed' or {INFER_HINT}"))
    if spec.unique:
        repeated = present[present.duplicated()]
        checks.append(bad_rows("unique values", repeated, len(repeated), 0))
    checks += _statistics(present, spec, label)
    return checks


def _statistics(present: pd.Series, spec: ColumnSpec, label: str) -> list[Check]:
    if not spec.is_numeric or present.empty:
        return []
    mean, std = float(present.mean()), float(present.std(ddof=0))
    bounds = [
        ("mean >= mean_min", mean, spec.mean_min, mean >= (spec.mean_min if spec.mean_min is not None else mean)),
        ("mean <= mean_max", mean, spec.mean_max, mean <= (spec.mean_max if spec.mean_max is not None else mean)),
        ("spread <= std_max", std, spec.std_max, std <= (spec.std_max if spec.std_max is not None else std)),
    ]
    return [
        Check(f"{label}: {rule}", passed, round(value, 6), limit, column=present.name)
        for rule, value, limit, passed in bounds
        if limit is not None
    ]


def _number(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _allowed_values(spec: ColumnSpec) -> list:
    """Allowed values in the column's stored form: numbers as floats, labels as text."""
    return [float(value) for value in spec.allowed] if spec.is_numeric else [str(value) for value in spec.allowed]
