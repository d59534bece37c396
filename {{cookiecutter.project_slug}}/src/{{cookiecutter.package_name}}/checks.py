"""One record for every pass/fail check, shared by validate and gate, and how it is reported."""

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

EXAMPLES_SHOWN = 3


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: Any = None
    threshold: Any = None
    column: str | None = None
    detail: str = ""

    def line(self) -> str:
        """One line a person reads: what failed, the value against its threshold, and how to fix it."""
        where = f"column '{self.column}': " if self.column else ""
        measured = "" if self.value is None else f" (value {self.value}, threshold {self.threshold})"
        detail = f" - {self.detail}" if self.detail else ""
        return f"{where}{self.name}{measured}{detail}"


def report(checks: Iterable[Check]) -> dict[str, Any]:
    """The JSON body of a metrics file: overall verdict, counts, and every check."""
    checks = list(checks)
    failed = [check for check in checks if not check.passed]
    return {
        "passed": not failed,
        "checks_total": len(checks),
        "checks_failed": len(failed),
        "checks": [asdict(check) for check in checks],
    }


def failure_lines(checks: Iterable[Check]) -> list[str]:
    return [check.line() for check in checks if not check.passed]


def examples(values: "pd.Series") -> str:
    """A few distinct values of a column, sorted, for a message that shows what broke a check."""
    shown = sorted({str(value) for value in values.head(100)})[:EXAMPLES_SHOWN]
    return ", ".join(repr(value) for value in shown)
