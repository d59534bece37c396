"""Business rules: row-wise boolean expressions over columns (e.g. `age >= 18`), evaluated vectorised.

An expression may use column names, numbers, strings, comparisons, arithmetic, `and`/`or`/`not`
(or `&`, `|`, `~`) and parentheses, nothing else: no calls, attributes or subscripts, so a schema
file cannot run code. Its cost is bounded too, since pandas computes constant parts with Python's
unbounded integers (`9 ** 9 ** 9` would never finish): see RULE_LIMITS. Missing values never break a
rule; the type and missing-value checks own them.
"""

import ast

import pandas as pd

from .checks import Check, examples
from .errors import PipelineError

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
