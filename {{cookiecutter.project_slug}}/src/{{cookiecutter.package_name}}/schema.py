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
from math import inf
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .core import Check, Params, PipelineError, Task, examples, rounded, validated

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
    checks = []
    for name, expression in sorted(rules.items()):
        used = sorted(parse_rule(name, expression, set(frame.columns)))
        broken = frame.loc[~rule_holds(frame, name, expression), used]
        example = examples(broken[used].astype(str).agg(", ".join, axis=1)) if len(broken) else ""
        checks.append(
            Check(
                f"{label}: rule {name}: {expression}",
                broken.empty,
                len(broken),
                0,
                detail=f"{len(broken)} rows break it, e.g. {example}" if len(broken) else "",
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


def check_dataset(frame: pd.DataFrame, schema: Schema, target: str, task: Task, label: str) -> list[Check]:
    """Required columns and a target that fits the task, for one named part of the data."""
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
    return [*checks, *target_checks(frame[target], task, label)]


def target_checks(values: pd.Series, task: Task, label: str) -> list[Check]:
    """The target fits data.task: two classes for binary, class labels for multiclass, numbers for regression."""
    name = str(values.name)
    distinct = int(values.nunique(dropna=True))
    numeric = pd.api.types.is_numeric_dtype(values)
    if task == "binary":
        fix = "" if distinct == 2 else f"data.task is binary; {_task_hint(distinct, numeric)}"
        return [Check(f"{label}: target has two classes", distinct == 2, distinct, 2, column=name, detail=fix)]
    if task == "multiclass":
        present = values.dropna()
        fractional = present[present != present.round()] if numeric else present.iloc[:0]
        return [
            Check(
                f"{label}: target holds class labels",
                fractional.empty,
                len(fractional),
                0,
                column=name,
                detail=""
                if fractional.empty
                else (
                    f"data.task is multiclass but {len(fractional)} rows hold fractional numbers, e.g. "
                    f"{examples(fractional)}: for a quantity set data.task: regression in params.yaml"
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
            str(values.dtype),
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
    name = str(series.name)
    type_ok = (
        pd.api.types.is_numeric_dtype(series) if spec.is_numeric else isinstance(series.dtype, pd.CategoricalDtype)
    )
    checks = [Check(f"{label}: type {spec.type}", type_ok, str(series.dtype), spec.type, column=name)]
    if not type_ok:
        return checks

    def bad_rows(rule: str, bad: pd.Series, value: float | None, threshold: float, fix: str = "") -> Check:
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
                rounded(missing_rate),
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
        Check(f"{label}: {rule}", passed, rounded(value), limit, column=str(present.name))
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
    checks = check_row_count(sum(len(frame) for frame in frames.values()), schema)
    for label, frame in frames.items():
        checks += check_dataset(frame, schema, target, task, label)
        for name, spec in schema.columns.items():
            if name in frame.columns:
                checks += check_column(frame[name], spec, label)
        checks += check_rules(frame, schema.rules, label)
    return checks
