import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }} import validate
from {{ cookiecutter.package_name }}.core import PipelineError
from {{ cookiecutter.package_name }}.preprocess import infer
from {{ cookiecutter.package_name }}.schema import ColumnSpec, check_column, check_rules, parse_rule
from {{ cookiecutter.package_name }}.validate import psi, psi_checks

FRAME = pd.DataFrame(
    {
        "age": [17.0, 30.0, 45.0, np.nan],
        "amount": [100.0, 2000.0, -5.0, 50.0],
        "purpose": pd.Categorical(["car", "car", "tv", "tv"]),
    }
)


def test_rules_count_breaking_rows_and_skip_missing_values():
    (adult, positive) = check_rules(FRAME, {"adult": "age >= 18", "positive": "amount > 0 and amount < 10_000"}, "t")
    assert (adult.passed, adult.value) == (False, 1)
    assert "17.0" in adult.detail
    assert (positive.passed, positive.value) == (False, 1)


def test_rules_on_categories():
    (check,) = check_rules(FRAME, {"known": "purpose in ['car', 'tv']"}, "t")
    assert check.passed


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('true')", "Call is not allowed"),
        ("age.__class__ == 1", "Attribute is not allowed"),
        ("salary > 3", "unknown columns ['salary']"),
        ("age >=", "not an expression"),
        ("age < 9 ** 9 ** 9", "`**` needs a literal exponent from -10 to 10"),
        ("age < 9 ** 9", "`**` of a constant"),
        ("age < 10 ** 5", "`**` of a constant"),
        ("age < 1" + "0" * 400, "is too large"),
        ("purpose == 'x' * 1000000000", "a string is used in arithmetic"),
        (" or ".join(["age > 1"] * 60), "more than 200 syntax nodes"),
        ("age > 1 " * 200, "longer than 1000 characters"),
    ],
)
def test_unsafe_or_broken_rules_are_refused(expression, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        parse_rule("r", expression, set(FRAME.columns))


def test_powers_of_columns_with_small_exponents_are_allowed():
    assert parse_rule("r", "(age / 10) ** 2 >= 0 and amount ** -1 != 0", set(FRAME.columns)) == {"age", "amount"}


def test_statistics_bounds():
    spec = ColumnSpec(type="numeric", mean_min=25, std_max=5)
    checks = check_column(pd.Series([10.0, 20.0, 30.0], name="x"), spec, "t")
    by_rule = {check.name: check.passed for check in checks}
    assert by_rule["t: mean >= mean_min"] is False and by_rule["t: spread <= std_max"] is False


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(size=5000))
    assert psi(reference, pd.Series(rng.normal(size=5000)), bins=10) < 0.02
    assert psi(reference, pd.Series(rng.normal(loc=1.0, size=5000)), bins=10) > 0.2
    labels = pd.Series(["a"] * 90 + ["b"] * 10)
    assert psi(labels, pd.Series(["a"] * 40 + ["c"] * 60), bins=10) > 0.2


def test_psi_checks_name_the_drifted_column():
    reference = pd.DataFrame({"x": np.arange(1000.0), "y": np.arange(1000.0)})
    current = pd.DataFrame({"x": np.arange(1000.0), "y": np.arange(1000.0) + 800})
    checks = psi_checks(reference, current, ["x", "y"], bins=10, limit=0.2)
    assert [(check.column, check.passed) for check in checks] == [("x", True), ("y", False)]


def test_with_no_reference_validate_never_imports_evidently_and_its_page_says_why(tmp_path):
    """Evidently's import is most of validate's time on small data; with nothing to compare it is not paid."""
    script = (
        "import sys, pandas as pd; from pathlib import Path; "
        "from {{ cookiecutter.package_name }}.core import ValidateSettings; "
        "from {{ cookiecutter.package_name }}.validate import drift_checks; "
        "settings = ValidateSettings(drift_psi_max=0.2, drifted_share_max=0.5, psi_bins=10, sample_rows=100, "
        "reference_rows=100, seed=0); "
        "checks = drift_checks(pd.DataFrame({'a': [1.0, 2.0]}), pd.DataFrame(), settings, Path('drift.html')); "
        "print([check.passed for check in checks], 'evidently' in sys.modules)"
    )
    source = {"PYTHONPATH": str(Path(validate.__file__).parents[1])}  # this package, wherever the test runs from
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env={**os.environ, **source}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[True]", "False"]
    assert "no model has been\npromoted yet" in (tmp_path / "drift.html").read_text()


def test_inferred_schema_accepts_the_data_it_came_from():
    raw = pd.DataFrame({"n": ["1", "2", None, "4"], "f": ["0.5", "1.5", "2", "3"], "c": ["a", "b", "a", None]})
    schema = infer(raw)["columns"]
    assert schema["n"]["type"] == "integer" and schema["f"]["type"] == "numeric"
    assert schema["c"] == {"type": "categorical", "nullable": True, "max_missing_rate": 0.38, "allowed": ["a", "b"]}
    typed = pd.DataFrame({"n": pd.to_numeric(raw["n"]), "f": pd.to_numeric(raw["f"]), "c": raw["c"].astype("category")})
    for name, spec in schema.items():
        checks = check_column(typed[name], ColumnSpec(**spec), "raw")
        assert all(check.passed for check in checks), [check for check in checks if not check.passed]
