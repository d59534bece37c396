"""Broken raw data, every kind a user meets: a clear message, a non-zero exit, nothing later runs or changes."""

import json
from collections.abc import Callable

import pandas as pd
import pytest
from tools.bakery import Project, md5

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

RAW = "data/raw/german_credit.csv"


def edit_lines(text: str, edit: Callable[[str, int], str]) -> str:
    lines = text.splitlines()
    return "\n".join([lines[0], *[edit(line, index) for index, line in enumerate(lines[1:])]]) + "\n"


def set_column(text: str, column: str, value: str | Callable[[str], str], every: int = 1) -> str:
    position = text.splitlines()[0].split(",").index(column)

    def edit(line, index):
        cells = line.split(",")
        if index % every == 0:
            cells[position] = value(cells[position]) if callable(value) else value
        return ",".join(cells)

    return edit_lines(text, edit)


# name: (how to break the sample, what the refusal must name); preprocess refuses before writing anything
BROKEN: dict[str, tuple[Callable[[str], str] | None, str]] = {  # None: a binary file
    "empty file": (lambda text: "", "the file is empty"),
    "header only": (lambda text: text.splitlines()[0] + "\n", "a header but no data rows"),
    "missing column": (
        lambda text: edit_lines(
            text.replace("purpose,", "", 1),
            lambda line, _: ",".join(cell for i, cell in enumerate(line.split(",")) if i != 8),
        ),
        "missing columns ['purpose']",
    ),
    "renamed column": (
        lambda text: text.replace("credit_amount", "amount", 1),
        "missing columns ['credit_amount']",
    ),
    "text in a numeric column": (
        lambda text: set_column(text, "age", "forty", every=97),
        "column 'age' must be integer but 11 rows hold text, e.g. 'forty'",
    ),
    "rows that no delimiter splits evenly": (
        lambda text: text.replace(",", ";", 3),
        "no delimiter among ',', ';', '\\t', '|' splits every line into the same number of fields",
    ),
    "a column named twice": (lambda text: text.replace("job", "age", 1), "the header names column 'age' twice"),
    "bytes that are not UTF-8": (lambda text: text.replace("radio/TV", "radio/T\udcff", 1), "not UTF-8"),
    "not a CSV at all": (None, "binary file, not a CSV"),
    "out-of-range values": (
        lambda text: set_column(text, "age", "150", every=50),
        "column 'age': raw: maximum",
    ),
    "mostly missing column": (
        lambda text: set_column(text, "saving_accounts", "", every=1),
        "column 'saving_accounts': raw: missing rate",
    ),
    "unseen categories": (
        lambda text: set_column(text, "housing", "castle", every=20),
        "rows, e.g. 'castle'; add them to 'allowed'",
    ),
    "single-class target": (lambda text: set_column(text, "risk", "1"), "target has two classes"),
    "fractional integers": (
        lambda text: set_column(text, "duration", "12.5", every=30),
        "column 'duration': raw: whole numbers",
    ),
    "broken business rule": (
        lambda text: set_column(text, "age", lambda _: "17", every=40),
        "raw: rule adult_applicant: age >= 18",
    ),
    "too few rows": (lambda text: "\n".join(text.splitlines()[:101]) + "\n", "dataset: row count"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_raw_data_is_refused_clearly_and_loses_nothing(reproduced_copy, kind):
    assert_broken_raw_data_refused_clearly(reproduced_copy, kind)


def assert_broken_raw_data_refused_clearly(project: Project, kind: str) -> None:
    """One of BROKEN as the project's raw data, then its preprocess: refused in its words before anything is
    written (tests/test_dask_engine.py runs the same on a Dask cluster)."""
    breaker, message = BROKEN[kind]
    raw = project.path / RAW
    raw.chmod(0o644)
    if breaker is None:
        raw.write_bytes((project.path / "models" / "model.joblib").read_bytes()[:4096])
    else:
        raw.write_bytes(breaker(raw.read_text()).encode("utf-8", "surrogateescape"))
    before = project.guarded_state()  # the processed splits too: the Dask engine writes them in partitions
    result = project.command("preprocess", check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert project.guarded_state() == before


@pytest.mark.parametrize("kind", ["unseen categories", "text in a numeric column"])
def test_dvc_repro_stops_before_training_and_keeps_every_output(reproduced_copy, kind):
    project = reproduced_copy
    breaker, message = BROKEN[kind]
    assert breaker is not None
    raw = project.path / RAW
    raw.chmod(0o644)
    raw.write_text(breaker(raw.read_text()))
    before = project.guarded_state()
    result = project.dvc("repro", check=False)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert "Running stage 'validate'" not in result.stdout and "Running stage 'train'" not in result.stdout
    assert "preprocess: kept the last good outputs: restored data/processed/" in result.stderr
    assert project.guarded_state() == before
    assert project.deleted_by_git() == []


def test_the_same_data_exported_in_another_dress_reruns_only_preprocess_with_identical_outputs(reproduced_copy):
    """Excel on a European Windows machine: UTF-8 with a byte-order mark, semicolons, CRLF, quoted header."""
    project = reproduced_copy
    raw = project.path / RAW
    raw.chmod(0o644)
    header, *rows = raw.read_text().splitlines()
    quoted_header = ";".join(f'"{name}"' for name in header.split(","))
    raw.write_bytes(
        "\r\n".join([quoted_header, *[row.replace(",", ";") for row in rows]]).encode("utf-8-sig") + b"\r\n"
    )
    processed = {
        path: md5(project.path / path) for path in ("data/processed/train.parquet", "data/processed/test.parquet")
    }

    result = project.dvc("repro")

    assert project.stages_run(result.stdout) == ["preprocess"]  # its outputs are unchanged, so nothing else runs
    assert {path: md5(project.path / path) for path in processed} == processed


def test_infer_schema_drafts_a_schema_that_the_data_passes(reproduced_copy):
    project = reproduced_copy
    project.command("infer-schema", "--output", "schema.yaml", "--force")
    draft = (project.path / "schema.yaml").read_text()
    assert draft.startswith("# Drafted by infer-schema") and "REVIEW BEFORE COMMITTING" in draft
    project.command("preprocess")
    assert "checks passed" in project.command("validate").stdout


def test_drift_against_the_production_reference_stops_dvc_repro_before_training(reproduced_copy):
    project = reproduced_copy
    # what `promote` keeps of the production model's training data, here from applicants 25 years older
    reference = pd.read_parquet(project.path / "data" / "processed" / "train.parquet").drop(columns=["risk"])
    reference["age"] += 25
    reference.to_parquet(project.path / "production" / "reference.parquet", index=False)
    model = project.path / "models" / "model.joblib"
    model_before = md5(model)

    result = project.dvc("repro", check=False)

    assert result.returncode != 0
    assert "column 'age': drift: PSI (value" in result.stderr
    assert "Running stage 'train'" not in result.stdout
    assert md5(model) == model_before
    checks = json.loads((project.path / "metrics" / "validation.json").read_text())["checks"]
    drifted = {check["column"] for check in checks if check["name"] == "drift: PSI" and not check["passed"]}
    assert drifted == {"age"}
    evidently = next(check for check in checks if check["name"].startswith("drift: share of drifted columns"))
    assert evidently["value"] > 0
    assert (project.path / "reports" / "drift.html").stat().st_size > 100_000
