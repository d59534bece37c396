"""The data contract (schema.yaml): column types and constraints, business rules, and their checks.

The check functions are pure: they take a DataFrame and return `Check` records; `contract_checks`
runs the whole contract (dataset, columns, rules) on named parts of the data.

Business rules are row-wise boolean expressions over columns (e.g. `age >= 18`), evaluated
vectorised. An expression may use column names, numbers, strings, comparisons, arithmetic,
`and`/`or`/`not` (or `&`, `|`, `~`) and parentheses, nothing else: no calls, attributes or
subscripts, so a schema file cannot run code. Its cost is bounded too, since pandas computes constant
parts with Python's unbounded integers (`9 ** 9 ** 9` would never finish): see RULE_LIMITS. Missing
values never break a rule; the type and missing-value checks own them.
"""

import ast
import math
from dataclasses import dataclass
from math import inf
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .core import EXAMPLE_ROWS, Check, Params, PipelineError, Task, examples, rounded, validated


# --- Partition profiles
# Every check of the contract reads a profile: a summary of one partition of the data (counts, moments, the first
# bad rows) that merges with the next partition's. The local engine profiles the whole frame as one partition;
# the Dask engine profiles each partition on the workers and merges them in a tree. One implementation, two engines.
@dataclass(frozen=True)
class BadRows:
    """The rows that break one check: how many, and the first EXAMPLE_ROWS of them in row order, as text."""

    count: int = 0
    first: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: pd.Series) -> "BadRows":
        return cls(len(values), tuple(str(value) for value in values.head(EXAMPLE_ROWS)))

    def merged(self, later: "BadRows") -> "BadRows":
        return BadRows(self.count + later.count, (self.first + later.first)[:EXAMPLE_ROWS])

    def examples(self) -> str:
        return examples(pd.Series(self.first, dtype=object))


@dataclass(frozen=True)
class Moments:
    """Count, mean, sum of squared deviations (m2), minimum and maximum of the present values."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.nan
    high: float = math.nan

    @classmethod
    def of(cls, present: pd.Series) -> "Moments":
        if present.empty:
            return cls()
        mean = float(present.mean())
        return cls(len(present), mean, float(((present - mean) ** 2).sum()), float(present.min()), float(present.max()))

    def merged(self, later: "Moments") -> "Moments":
        """Chan, Golub and LeVeque's pairwise update: stable where summing squares would cancel."""
        if not later.count or not self.count:
            return later if not self.count else self
        count = self.count + later.count
        delta = later.mean - self.mean
        return Moments(
            count,
            self.mean + delta * later.count / count,
            self.m2 + later.m2 + delta**2 * self.count * later.count / count,
            min(self.low, later.low),
            max(self.high, later.high),
        )

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count)  # population spread (ddof 0), as the contract's std_max means


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    dtype: str
    type_ok: bool
    rows: int
    nulls: int
    moments: Moments | None  # numeric columns
    bad: dict[str, BadRows]  # by rule: whole numbers, minimum, maximum, allowed values
    values: pd.Series | None  # the present values of a `unique` column: a repeat may lie in another partition

    def merged(self, later: "ColumnProfile") -> "ColumnProfile":
        return ColumnProfile(
            self.name,
            self.dtype,
            self.type_ok and later.type_ok,
            self.rows + later.rows,
            self.nulls + later.nulls,
            self.moments.merged(later.moments) if self.moments and later.moments else None,
            {rule: bad.merged(later.bad[rule]) for rule, bad in self.bad.items()},
            pd.concat([self.values, later.values], ignore_index=True)
            if self.values is not None and later.values is not None
            else None,
        )


@dataclass(frozen=True)
class TargetProfile:
    name: str
    dtype: str
    numeric: bool
    distinct: np.ndarray  # sorted distinct present values
    fractional: BadRows  # numbers that are not class labels

    def merged(self, later: "TargetProfile") -> "TargetProfile":
        return TargetProfile(
            self.name,
            self.dtype,
            self.numeric,
            np.union1d(self.distinct, later.distinct),
            self.fractional.merged(later.fractional),
        )


@dataclass(frozen=True)
class Profile:
    """One named part of the data (raw, train, test), or one partition of it."""

    rows: int
    columns: tuple[str, ...]
    target: TargetProfile | None
    column_profiles: dict[str, ColumnProfile]
    rules: dict[str, BadRows]

    def merged(self, later: "Profile") -> "Profile":
        return Profile(
            self.rows + later.rows,
            self.columns,
            self.target.merged(later.target) if self.target and later.target else self.target,
            {name: column.merged(later.column_profiles[name]) for name, column in self.column_profiles.items()},
            {name: bad.merged(later.rules[name]) for name, bad in self.rules.items()},
        )


def profile(frame: pd.DataFrame, schema: "Schema", target: str) -> Profile:
    """The summary of one partition that every contract check reads; runs on a Dask worker too."""
    return Profile(
        len(frame),
        tuple(map(str, frame.columns)),
        target_profile(frame[target]) if target in frame.columns else None,
        {name: column_profile(frame[name], spec) for name, spec in schema.columns.items() if name in frame.columns},
        rule_profiles(frame, schema.rules),
    )


def merged_profile(first: Profile, later: Profile) -> Profile:
    return first.merged(later)


# --- Business rules
ALLOWED_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.And,
    ast.Or,
    ast.Not,
    ast.BitAnd,
    ast.BitOr,
    ast.Invert,
    ast.USub,
    ast.UAdd,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.List,
    ast.Tuple,
)
MAX_CHARACTERS = 1000
MAX_NODES = 200
MAX_NUMBER = 1e15  # largest literal magnitude
MAX_STRING = 200  # longest literal string
MAX_EXPONENT = 10  # `**` takes a literal exponent of at most this magnitude, and a base holding a column
RULE_LIMITS = (
    f"a rule has at most {MAX_CHARACTERS} characters and {MAX_NODES} syntax nodes, numbers up to "
    f"{MAX_NUMBER:.0e}, strings up to {MAX_STRING} characters and only in comparisons, and `**` only as "
    f"<expression with a column> ** <number from -{MAX_EXPONENT} to {MAX_EXPONENT}>"
)


def parse_rule(name: str, expression: str, columns: set[str]) -> set[str]:
    """The columns a rule reads; an error naming the rule if it is not a safe, bounded expression over columns."""

    def refuse(problem: str) -> PipelineError:
        return PipelineError(f"schema.yaml rule '{name}': {problem} in {expression[:100]!r}")

    if len(expression) > MAX_CHARACTERS:
        raise refuse(f"longer than {MAX_CHARACTERS} characters; {RULE_LIMITS}")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise refuse(f"not an expression ({error.msg})") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise refuse(f"more than {MAX_NODES} syntax nodes; {RULE_LIMITS}")
    for node in nodes:
        if not isinstance(node, ALLOWED_NODES):
            raise refuse(
                f"{type(node).__name__} is not allowed; use column names, numbers, comparisons, arithmetic "
                "and and/or/not"
            )
        problem = _unbounded(node)
        if problem:
            raise refuse(f"{problem}; {RULE_LIMITS}")
    used = {node.id for node in nodes if isinstance(node, ast.Name)}
    unknown = sorted(used - columns)
    if unknown:
        raise refuse(f"unknown columns {unknown}")
    return used


def _unbounded(node: ast.AST) -> str | None:
    """Why evaluating this node could take unbounded time or memory, or None."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            return f"a number of {len(str(int(abs(value))))} digits is too large"
        if isinstance(value, str) and len(value) > MAX_STRING:
            return "a string is too long"
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        operands = [node.left, node.right] if isinstance(node, ast.BinOp) else [node.operand]
        if any(isinstance(operand, ast.Constant) and isinstance(operand.value, str) for operand in operands):
            return "a string is used in arithmetic"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        exponent = _literal_number(node.right)
        if exponent is None or abs(exponent) > MAX_EXPONENT:
            return f"`**` needs a literal exponent from -{MAX_EXPONENT} to {MAX_EXPONENT}"
        if not any(isinstance(inner, ast.Name) for inner in ast.walk(node.left)):
            return "`**` of a constant; write the number itself"
    return None


def _literal_number(node: ast.AST) -> float | None:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def rule_holds(frame: pd.DataFrame, name: str, expression: str) -> pd.Series:
    """Whether the rule holds on each row; a row missing one of its columns holds (see the module's doc)."""
    complete = frame[sorted(parse_rule(name, expression, set(frame.columns)))].dropna()
    typed = complete.astype({c: "object" for c in complete.select_dtypes("category").columns})
    holds = cast(pd.Series, typed.eval(expression, engine="python"))  # a rule names columns: one value per row
    return holds.astype(bool).reindex(frame.index, fill_value=True)


def check_rules(frame: pd.DataFrame, rules: dict[str, str], label: str) -> list[Check]:
    return rule_checks(rule_profiles(frame, rules), rules, label)


def rule_profiles(frame: pd.DataFrame, rules: dict[str, str]) -> dict[str, "BadRows"]:
    """Each rule's broken rows in one partition: how many, and the first ones as the message shows them."""
    profiles = {}
    for name, expression in sorted(rules.items()):
        used = sorted(parse_rule(name, expression, set(frame.columns)))
        broken = frame.loc[~rule_holds(frame, name, expression), used]
        profiles[name] = BadRows.of(broken.astype(str).agg(", ".join, axis=1)) if len(broken) else BadRows()
    return profiles


def rule_checks(profiles: dict[str, "BadRows"], rules: dict[str, str], label: str) -> list[Check]:
    checks = []
    for name, expression in sorted(rules.items()):
        broken = profiles[name]
        checks.append(
            Check(
                f"{label}: rule {name}: {expression}",
                not broken.count,
                broken.count,
                0,
                detail=f"{broken.count} rows break it, e.g. {broken.examples()}" if broken.count else "",
            )
        )
    return checks


# --- The contract
INFER_HINT = "run the infer-schema command and review its draft if the change is intended"
Label = str | int | float | bool


class ContractPart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(ContractPart):
    type: Literal["numeric", "integer", "categorical"]
    nullable: bool = False
    max_missing_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    min: float | None = None
    max: float | None = None
    allowed: Annotated[tuple[Label, ...], Field(min_length=1)] | None = None
    unique: bool = False
    mean_min: float | None = None
    mean_max: float | None = None
    std_max: Annotated[float, Field(ge=0)] | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in ("numeric", "integer")

    @model_validator(mode="after")
    def _satisfiable(self) -> "ColumnSpec":
        """A contract no data could meet is a mistake in the contract, reported as one, not as bad data."""
        problems = [
            *self._numeric_only(),
            *_ordered("min", self.min, "max", self.max),
            *_ordered("mean_min", self.mean_min, "mean_max", self.mean_max),
            *_ordered("min", self.min, "mean_max", self.mean_max),
            *_ordered("mean_min", self.mean_min, "max", self.max),
            *self._label_problems(),
        ]
        if not self.nullable and self.max_missing_rate:
            problems.append(
                f"nullable: false allows no missing values but max_missing_rate allows {self.max_missing_rate}: "
                "set nullable: true, or remove max_missing_rate"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _numeric_only(self) -> list[str]:
        bounds = ("min", "max", "mean_min", "mean_max", "std_max")
        given = [name for name in bounds if getattr(self, name) is not None]
        return [f"{given} apply to numeric and integer columns only"] if given and not self.is_numeric else []

    def _label_problems(self) -> list[str]:
        """Allowed values of a numeric column must be numbers that its other bounds admit."""
        if not self.is_numeric or self.allowed is None:
            return []
        text = [value for value in self.allowed if isinstance(value, str | bool)]
        if text:
            return [f"allowed values {text} are not numbers, but the column is {self.type}"]
        numbers = [float(value) for value in self.allowed]
        low, high = self.min if self.min is not None else -inf, self.max if self.max is not None else inf
        outside = [value for value in numbers if not low <= value <= high]
        fractional = [value for value in numbers if self.type == "integer" and not value.is_integer()]
        return [
            *([f"allowed values {outside} lie outside min/max"] if outside else []),
            *([f"allowed values {fractional} are not whole numbers, but the column is integer"] if fractional else []),
        ]


def _ordered(low_name: str, low: float | None, high_name: str, high: float | None) -> list[str]:
    if low is None or high is None or low <= high:
        return []
    return [f"{low_name} {low} is above {high_name} {high}: no value can meet both"]


class Dataset(ContractPart):
    min_rows: Annotated[int, Field(ge=1)] = 1
    max_rows: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _satisfiable(self) -> "Dataset":
        problems = _ordered("min_rows", self.min_rows, "max_rows", self.max_rows)
        if problems:
            raise ValueError(problems[0])
        return self


class Schema(ContractPart):
    dataset: Dataset = Dataset()
    rules: dict[str, str] = {}
    columns: Annotated[dict[str, ColumnSpec], Field(min_length=1)]

    def read_dtypes(self) -> dict[str, str]:
        """The dtype each column is read and stored as: float for numbers, category for labels."""
        return {name: "float64" if spec.is_numeric else "category" for name, spec in self.columns.items()}


def load_schema(path: Path) -> Schema:
    """The data contract, checked: types, satisfiable bounds, and rules that are safe and bounded."""
    if not path.is_file():
        raise PipelineError(f"{path} not found: restore it from git or draft one with the infer-schema command")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from None
    schema = validated(Schema, raw, path)
    for name, expression in schema.rules.items():
        parse_rule(name, expression, set(schema.columns))
    return schema


def check_params(params: Params, schema: Schema) -> None:
    """Keys that name columns or labels must name ones the data contract declares."""
    columns = schema.columns
    problems = []
    named = [
        ("data.target", [params.data.target]),
        ("train.exclude_columns", params.train.exclude_columns),
        ("evaluate.fairness.sensitive", params.evaluate.fairness.sensitive),
    ]
    for key, names in named:
        unknown = [name for name in names if name not in columns]
        if unknown:
            problems.append(f"'{key}' names {unknown}, not columns of {params.paths.contract} ({sorted(columns)})")
    target = columns.get(params.data.target)
    if target is not None:
        problems += _target_type_problems(params, target)
    if target is not None and target.allowed is not None and params.data.positive_class is not None:
        allowed = {label_key(label, target.is_numeric) for label in target.allowed}
        if label_key(params.data.positive_class, target.is_numeric) not in allowed:
            problems.append(
                f"'data.positive_class' is {params.data.positive_class!r}, not one of the allowed values "
                f"{list(target.allowed)} of the target '{params.data.target}' in {params.paths.contract}"
            )
    if problems:
        raise PipelineError("\n  ".join(f"params.yaml: {problem}" for problem in problems))


def _target_type_problems(params: Params, target: ColumnSpec) -> list[str]:
    """A contract type the task cannot learn from: labels to regress, or fractions to classify."""
    task, name, contract = params.data.task, params.data.target, params.paths.contract
    if task == "regression" and not target.is_numeric:
        return [
            f"'data.task' is regression but {contract} declares the target '{name}' {target.type}: set data.task "
            "to binary or multiclass, or declare the target numeric"
        ]
    if task == "multiclass" and target.type == "numeric":
        return [
            f"'data.task' is multiclass but {contract} declares the target '{name}' numeric (fractions): declare "
            "it integer or categorical, or set data.task: regression"
        ]
    return []


def refuse_columns_outside(schema: Schema, path: Path, names: list[str]) -> None:
    """Rows to score may hold only columns the contract declares: another one is a mistake, named."""
    unknown = [name for name in names if name not in schema.columns]
    if unknown:
        raise PipelineError(
            f"{path}: columns {unknown} are not in the data contract ({sorted(schema.columns)}); drop them, "
            "or add them to schema.yaml and re-train"
        )


def label_key(value: Any, numeric: bool) -> float | str | None:
    """A label as the data stores it: a number for a numeric column (1 == 1.0), text otherwise."""
    if not numeric:
        return str(value)
    try:
        return float(value)
    except ValueError:
        return None


def check_row_count(rows: int, schema: Schema) -> list[Check]:
    checks = [
        Check(
            "dataset: row count >= min_rows",
            rows >= schema.dataset.min_rows,
            rows,
            schema.dataset.min_rows,
            detail="" if rows >= schema.dataset.min_rows else "too few rows to train and evaluate on",
        ),
    ]
    if schema.dataset.max_rows is not None:
        checks.append(
            Check(
                "dataset: row count <= max_rows",
                rows <= schema.dataset.max_rows,
                rows,
                schema.dataset.max_rows,
                detail="" if rows <= schema.dataset.max_rows else "more rows than expected: duplicated input?",
            )
        )
    return checks


def dataset_checks(part: Profile, schema: Schema, target: str, task: Task, label: str) -> list[Check]:
    """Required columns and a target that fits the task, for one named part of the data."""
    missing = sorted(set(schema.columns) - set(part.columns))
    checks = [
        Check(
            f"{label}: required columns present",
            not missing,
            len(missing),
            0,
            detail=f"missing {missing}; {INFER_HINT}" if missing else "",
        )
    ]
    if part.target is None:
        return [
            *checks,
            Check(
                f"{label}: target present",
                False,
                column=target,
                detail="set data.target in params.yaml to the label column",
            ),
        ]
    return [*checks, *target_profile_checks(part.target, task, label)]


def target_profile(values: pd.Series) -> TargetProfile:
    present = values.dropna()
    numeric = pd.api.types.is_numeric_dtype(values)
    if numeric:
        distinct = np.sort(pd.unique(present.to_numpy(dtype=float)))  # hashing, not sorting, the millions of rows
        fractional = BadRows.of(present[present != present.round()])
    else:
        # a categorical's distinct values are its used categories: no pass over millions of strings
        labels = (
            present.cat.categories[np.flatnonzero(np.bincount(present.cat.codes, minlength=1))]
            if isinstance(present.dtype, pd.CategoricalDtype)
            else present.unique()
        )
        distinct = np.unique(np.asarray(labels, dtype=str))
        fractional = BadRows()
    return TargetProfile(str(values.name), str(values.dtype), numeric, distinct, fractional)


def target_checks(values: pd.Series, task: Task, label: str) -> list[Check]:
    return target_profile_checks(target_profile(values), task, label)


def target_profile_checks(target: TargetProfile, task: Task, label: str) -> list[Check]:
    """The target fits data.task: two classes for binary, class labels for multiclass, numbers for regression."""
    name, numeric, distinct = target.name, target.numeric, len(target.distinct)
    if task == "binary":
        fix = "" if distinct == 2 else f"data.task is binary; {_task_hint(distinct, numeric)}"
        return [Check(f"{label}: target has two classes", distinct == 2, distinct, 2, column=name, detail=fix)]
    if task == "multiclass":
        fractional = target.fractional
        return [
            Check(
                f"{label}: target holds class labels",
                not fractional.count,
                fractional.count,
                0,
                column=name,
                detail=""
                if not fractional.count
                else (
                    f"data.task is multiclass but {fractional.count} rows hold fractional numbers, e.g. "
                    f"{fractional.examples()}: for a quantity set data.task: regression in params.yaml"
                ),
            ),
            Check(
                f"{label}: target has at least two classes",
                distinct >= 2,
                distinct,
                2,
                column=name,
                detail="" if distinct >= 2 else f"data.task is multiclass; {_task_hint(distinct, numeric)}",
            ),
        ]
    return [
        Check(
            f"{label}: target is numeric",
            numeric,
            target.dtype,
            "numeric",
            column=name,
            detail=""
            if numeric
            else (
                "data.task is regression but the target holds labels: set data.task to binary or multiclass in "
                "params.yaml, or declare the target numeric in schema.yaml"
            ),
        ),
        Check(
            f"{label}: target varies",
            distinct >= 2,
            distinct,
            2,
            column=name,
            detail="" if distinct >= 2 else "data.task is regression, but every row has one value: nothing to learn",
        ),
    ]


def _task_hint(distinct: int, numeric: bool) -> str:
    """What a target with this many distinct values needs instead."""
    if distinct < 2:
        return "the data holds one class: add rows of the other classes"
    quantity = " (or data.task: regression for a quantity)" if numeric else ""
    return f"the target has {distinct} classes: set data.task: multiclass in params.yaml{quantity}"


def check_column(series: pd.Series, spec: ColumnSpec, label: str) -> list[Check]:
    """Type, missing values, range, allowed values, uniqueness and statistics of one column."""
    return column_checks(column_profile(series, spec), spec, label)


def column_profile(series: pd.Series, spec: ColumnSpec) -> ColumnProfile:
    name, dtype = str(series.name), str(series.dtype)
    type_ok = (
        pd.api.types.is_numeric_dtype(series) if spec.is_numeric else isinstance(series.dtype, pd.CategoricalDtype)
    )
    if not type_ok:
        return ColumnProfile(name, dtype, False, len(series), 0, None, {}, None)
    present = series.dropna()
    bad = {}
    if spec.type == "integer":
        bad["whole numbers"] = BadRows.of(present[present != present.round()])
    if spec.min is not None:
        bad["minimum"] = BadRows.of(present[present < spec.min])
    if spec.max is not None:
        bad["maximum"] = BadRows.of(present[present > spec.max])
    if spec.allowed is not None:
        bad["allowed values"] = BadRows.of(present[~present.isin(_allowed_values(spec))])
    return ColumnProfile(
        name,
        dtype,
        True,
        len(series),
        int(series.isna().sum()),
        Moments.of(present) if spec.is_numeric else None,
        bad,
        present.reset_index(drop=True) if spec.unique else None,
    )


def column_checks(column: ColumnProfile, spec: ColumnSpec, label: str) -> list[Check]:
    name = column.name
    checks = [Check(f"{label}: type {spec.type}", column.type_ok, column.dtype, spec.type, column=name)]
    if not column.type_ok:
        return checks

    def bad_rows(rule: str, bad: BadRows, value: float | None, threshold: float, fix: str = "") -> Check:
        detail = f"{bad.count} rows, e.g. {bad.examples()}{'; ' + fix if fix else ''}" if bad.count else ""
        return Check(f"{label}: {rule}", not bad.count, value, threshold, column=name, detail=detail)

    missing_rate = column.nulls / column.rows if column.rows else 0.0
    moments = column.moments or Moments()
    if not spec.nullable:
        nulls = column.nulls
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
                rounded(missing_rate),
                spec.max_missing_rate,
                column=name,
            )
        )
    if spec.type == "integer":
        fractional = column.bad["whole numbers"]
        checks.append(bad_rows("whole numbers", fractional, fractional.count, 0))
    if spec.min is not None:
        checks.append(bad_rows("minimum", column.bad["minimum"], _number(moments.low), spec.min))
    if spec.max is not None:
        checks.append(bad_rows("maximum", column.bad["maximum"], _number(moments.high), spec.max))
    if spec.allowed is not None:
        unseen = column.bad["allowed values"]
        checks.append(bad_rows("allowed values", unseen, unseen.count, 0, f"add them to 'allowed' or {INFER_HINT}"))
    if spec.unique and column.values is not None:
        repeated = BadRows.of(column.values[column.values.duplicated()])
        checks.append(bad_rows("unique values", repeated, repeated.count, 0))
    checks += _statistics(moments, name, spec, label)
    return checks


PER_DATASET = {"max_missing_rate": None, "unique": False, "mean_min": None, "mean_max": None, "std_max": None}


def check_rows(frame: pd.DataFrame, schema: Schema, columns: list[str], label: str) -> list[Check]:
    """The constraints each single row must meet (type, missing values, range, allowed values) on `columns`:
    a batch of rows to score is not a dataset, so rates, uniqueness and statistics are not asked of it.
    """
    return [
        check
        for name in columns
        for check in check_column(frame[name], schema.columns[name].model_copy(update=PER_DATASET), label)
    ]


def _statistics(moments: Moments, name: str, spec: ColumnSpec, label: str) -> list[Check]:
    if not spec.is_numeric or not moments.count:
        return []
    mean, std = moments.mean, moments.std
    bounds = [
        ("mean >= mean_min", mean, spec.mean_min, mean >= (spec.mean_min if spec.mean_min is not None else mean)),
        ("mean <= mean_max", mean, spec.mean_max, mean <= (spec.mean_max if spec.mean_max is not None else mean)),
        ("spread <= std_max", std, spec.std_max, std <= (spec.std_max if spec.std_max is not None else std)),
    ]
    return [
        Check(f"{label}: {rule}", passed, rounded(value), limit, column=name)
        for rule, value, limit, passed in bounds
        if limit is not None
    ]


def _number(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def _allowed_values(spec: ColumnSpec) -> list[float] | list[str]:
    """Allowed values in the column's stored form: numbers as floats, labels as text."""
    allowed = spec.allowed or ()
    return [float(value) for value in allowed] if spec.is_numeric else [str(value) for value in allowed]


# --- The whole contract
def contract_checks(frames: dict[str, pd.DataFrame], schema: Schema, target: str, task: Task) -> list[Check]:
    """The contract on named parts of the data, each profiled whole, as one partition."""
    return profile_contract_checks(
        {label: profile(frame, schema, target) for label, frame in frames.items()}, schema, target, task
    )


def partition_profiles(parts: list[Any], schema: Schema, target: str) -> Any:
    """The merged profile of delayed partitions, itself delayed (to compute with other results of the same
    partitions, reading them once): each partition profiled on the workers, then merged pairwise in a tree,
    neighbours with neighbours, so first examples stay in row order."""
    from dask import delayed

    level = [delayed(profile)(part, schema, target) for part in parts]
    while len(level) > 1:
        pairs = [level[i : i + 2] for i in range(0, len(level), 2)]
        level = [delayed(merged_profile)(*pair) if len(pair) == 2 else pair[0] for pair in pairs]
    return level[0]


def profile_contract_checks(parts: dict[str, Profile], schema: Schema, target: str, task: Task) -> list[Check]:
    """The whole contract (dataset, columns, rules) from the profiles of named parts of the data."""
    checks = check_row_count(sum(part.rows for part in parts.values()), schema)
    for label, part in parts.items():
        checks += dataset_checks(part, schema, target, task, label)
        for name, spec in schema.columns.items():
            if name in part.column_profiles:
                checks += column_checks(part.column_profiles[name], spec, label)
        checks += rule_checks(part.rules, schema.rules, label)
    return checks
