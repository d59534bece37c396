"""The data contract refuses contradictions as mistakes in schema.yaml, and infer-schema never loses one."""

from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.core import PipelineError
from {{ cookiecutter.package_name }}.preprocess import infer_schema
from {{ cookiecutter.package_name }}.schema import load_schema

PROJECT = Path(__file__).resolve().parents[1]


def write_schema(tmp_path: Path, column: str, spec: dict | None = None, **top: object) -> Path:
    schema = yaml.safe_load((PROJECT / "schema.yaml").read_text())
    if spec is not None:
        schema["columns"][column] = spec
    schema.update(top)
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(schema))
    return path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "integer", "min": 50, "max": 18}, "'columns.age': min 50.0 is above max 18.0"),
        ({"type": "numeric", "mean_min": 40, "mean_max": 30}, "mean_min 40.0 is above mean_max 30.0"),
        ({"type": "numeric", "max": 10, "mean_min": 40}, "mean_min 40.0 is above max 10.0"),
        ({"type": "integer", "max_missing_rate": 0.3}, "nullable: false allows no missing values"),
        ({"type": "categorical", "min": 1}, "['min'] apply to numeric and integer columns only"),
        ({"type": "integer", "allowed": [1, "two"]}, "allowed values ['two'] are not numbers"),
        ({"type": "integer", "allowed": [1, 2.5]}, "allowed values [2.5] are not whole numbers"),
        ({"type": "integer", "min": 18, "allowed": [5, 20]}, "allowed values [5.0] lie outside min/max"),
        ({"type": "text"}, "'columns.age.type' is 'text': Input should be 'numeric', 'integer' or 'categorical'"),
        ({"type": "numeric", "min": "abc"}, "'columns.age.min' is 'abc': Input should be a valid number"),
        ({"type": "numeric", "maximum": 3}, "'columns.age.maximum' is not a known key"),
        ({"type": "numeric", "std_max": -1}, "'columns.age.std_max' is -1"),
    ],
)
def test_a_contract_no_data_could_meet_is_a_schema_error(tmp_path, spec, message):
    with pytest.raises(PipelineError) as raised:
        load_schema(write_schema(tmp_path, "age", spec))
    assert message in str(raised.value)


def test_row_bounds_and_rules_are_checked_when_the_contract_is_read(tmp_path):
    with pytest.raises(PipelineError, match="min_rows 900 is above max_rows 100"):
        load_schema(write_schema(tmp_path, "age", dataset={"min_rows": 900, "max_rows": 100}))
    with pytest.raises(PipelineError, match="rule 'huge': `\\*\\*` needs a literal exponent"):
        load_schema(write_schema(tmp_path, "age", rules={"huge": "age < 9 ** 9 ** 9"}))


@pytest.mark.parametrize("content", [b"", b"\x00\x01 not yaml \xff", b"columns: [a, b]\n", b"- a list\n"])
def test_an_unreadable_schema_is_refused_with_its_name(tmp_path, content):
    path = tmp_path / "schema.yaml"
    path.write_bytes(content)
    with pytest.raises(PipelineError, match="schema.yaml"):
        load_schema(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00" * 64, "binary file, not a CSV"),
        (b"PK\x03\x04" + bytes(range(256)), "binary file, not a CSV"),
        (b"age,city\n", "a header but no data rows"),
        (b"one column only\n1\n2\n", "no delimiter among"),
        (None, "a folder, not a CSV file"),
    ],
)
def test_infer_schema_refuses_what_is_not_a_csv_with_rows_and_keeps_the_schema(project_copy, content, message):
    source = project_copy / "input.csv"
    if content is None:
        source.mkdir()
    else:
        source.write_bytes(content)
    before = (project_copy / "schema.yaml").read_bytes()
    with pytest.raises(PipelineError, match=message):
        infer_schema(data=str(source))
    assert (project_copy / "schema.yaml").read_bytes() == before
    assert sorted(path.name for path in project_copy.glob("schema*")) == ["schema.yaml"]


def test_infer_schema_writes_a_draft_beside_an_existing_schema_unless_forced(project_copy):
    before = (project_copy / "schema.yaml").read_bytes()
    infer_schema()
    assert (project_copy / "schema.yaml").read_bytes() == before
    draft = project_copy / "schema.draft.yaml"
    assert draft.read_text().startswith("# Drafted by infer-schema")
    infer_schema(force=True)
    assert (project_copy / "schema.yaml").read_bytes() == draft.read_bytes()
    load_schema(project_copy / "schema.yaml")
