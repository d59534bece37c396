"""Business rules: row-wise boolean expressions over columns (e.g. `age >= 18`), evaluated vectorised.

An expression may use column names, numbers, strings, comparisons, arithmetic, `and`/`or`/`not`
(or `&`, `|`, `~`) and parentheses, nothing else: no calls, attributes or subscripts, so a schema
file cannot run code. Missing values never break a rule; the type and missing-value checks own them.
"""

import ast

import pandas as pd

from .checks import Check
from .errors import PipelineError
from .schema import examples

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


def parse_rule(name: str, expression: str, columns: set[str]) -> set[str]:
    """The columns a rule reads; an error naming the rule if it is not a safe expression over columns."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise PipelineError(f"schema.yaml rule '{name}': {expression!r} is not an expression ({error.msg})") from None
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED_NODES):
            raise PipelineError(
                f"schema.yaml rule '{name}': {type(node).__name__} is not allowed in {expression!r}; "
                "use column names, numbers, comparisons, arithmetic and and/or/not"
            )
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    unknown = sorted(used - columns)
    if unknown:
        raise PipelineError(f"schema.yaml rule '{name}' uses unknown columns {unknown}")
    return used


def check_rules(frame: pd.DataFrame, rules: dict[str, str], label: str) -> list[Check]:
    checks = []
    for name, expression in sorted(rules.items()):
        used = sorted(parse_rule(name, expression, set(frame.columns)))
        complete = frame[used].dropna()
        holds = complete.astype({c: "object" for c in complete.select_dtypes("category").columns}).eval(
            expression, engine="python"
        )
        broken = complete.loc[~holds.astype(bool)]
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
