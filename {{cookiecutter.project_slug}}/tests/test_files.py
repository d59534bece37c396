import re
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core import PipelineError, sample_positions, write_json, write_with
from {{ cookiecutter.package_name }}.preprocess import read_raw_csv
from {{ cookiecutter.package_name }}.schema import ColumnSpec, Schema

SCHEMA = Schema(columns={"age": ColumnSpec(type="integer"), "city": ColumnSpec(type="categorical", nullable=True)})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_reads_columns_in_schema_types(tmp_path):
    frame = read_raw_csv(write(tmp_path, "city,age,extra\nOslo,30,x\n,41,y\n"), SCHEMA)
    assert list(frame.columns) == ["age", "city"]
    assert str(frame["age"].dtype) == "float64"
    assert str(frame["city"].dtype) == "category"
    assert frame["city"].isna().sum() == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("age,city\n", "no data rows"),
        ("age,town\n30,Oslo\n", "missing columns ['city']"),
        ("age;city;x\n30;Oslo;1\n31;Bergen\n", "no delimiter among ',', ';', '\\t', '|' splits every line"),
        ("age;city,x\n30;Oslo,1\n", "both ',' and ';' split every line evenly"),
        ("age,city, age\n30,Oslo,31\n", "names column 'age' twice ('age' and ' age')"),
        ("age,city\n30,Oslo\nthirty,Bergen\n", "column 'age' must be integer but 1 rows hold text, e.g. 'thirty'"),
    ],
)
def test_bad_csv_is_rejected_with_the_reason(tmp_path, text, expected):
    with pytest.raises(PipelineError, match=re.escape(expected)):
        read_raw_csv(write(tmp_path, text), SCHEMA, delimiter="auto")


CLEAN = "age,city\n30,Oslo\n41,\n52,Bergen\n"
DRESSES = {
    "UTF-8 with a byte-order mark": ("\ufeff" + CLEAN).encode(),
    "UTF-16 (Excel's Unicode text)": CLEAN.replace(",", "\t").encode("utf-16"),
    "Windows line endings": CLEAN.replace("\n", "\r\n").encode(),
    "old Mac line endings": CLEAN.replace("\n", "\r").encode(),
    "semicolons": CLEAN.replace(",", ";").encode(),
    "pipes, quoted header, spaces around names": b'" age "|"city"\n30|Oslo\n41|\n52|Bergen\n',
    "quoted fields and a trailing delimiter": b'age,city,\n"30","Oslo",\n41,,\n"52",Bergen,\n',
    "a trailing blank line": (CLEAN + "\n").encode(),
}


@pytest.mark.parametrize("dress", sorted(DRESSES))
def test_the_same_data_in_another_dress_reads_as_the_same_data(tmp_path, dress):
    plain = read_raw_csv(write(tmp_path, CLEAN), SCHEMA, delimiter="auto")
    dressed = tmp_path / "dressed.csv"
    dressed.write_bytes(DRESSES[dress])
    pd.testing.assert_frame_equal(read_raw_csv(dressed, SCHEMA, delimiter="auto"), plain)


def test_decimal_commas_read_with_the_param_and_are_named_without_it(tmp_path):
    schema = Schema(columns={"amount": ColumnSpec(type="numeric"), "city": ColumnSpec(type="categorical")})
    path = write(tmp_path, "amount;city\n1234,5;Oslo\n7,25;Bergen\n")
    assert read_raw_csv(path, schema, delimiter="auto", decimal=",")["amount"].tolist() == [1234.5, 7.25]
    with pytest.raises(PipelineError, match="look like decimal commas: set data.csv_decimal to ','"):
        read_raw_csv(path, schema, delimiter="auto")


def test_another_8_bit_encoding_is_named_not_guessed(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("age,city\n30,Tromsø\n".encode("latin-1"))
    with pytest.raises(PipelineError, match="not UTF-8 text .* another 8-bit encoding such as Windows-1252"):
        read_raw_csv(path, SCHEMA, delimiter="auto")


def test_missing_file_names_the_param_to_set(tmp_path):
    with pytest.raises(PipelineError, match="paths.raw"):
        read_raw_csv(tmp_path / "absent.csv", SCHEMA)


def test_json_is_written_with_sorted_keys_and_stable_bytes(tmp_path):
    write_json({"b": 1, "a": [2, 1]}, tmp_path / "out" / "m.json")
    write_json({"a": [2, 1], "b": 1}, tmp_path / "again.json")
    assert (tmp_path / "out" / "m.json").read_bytes() == (tmp_path / "again.json").read_bytes()
    assert (tmp_path / "again.json").read_text().index('"a"') < (tmp_path / "again.json").read_text().index('"b"')


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"the good model")

    def crash_half_way(handle: IO[bytes]) -> None:
        handle.write(b"half a mo")
        raise KeyboardInterrupt  # the stage is interrupted mid-write

    with pytest.raises(KeyboardInterrupt):
        write_with(crash_half_way, target)
    assert target.read_bytes() == b"the good model"
    assert [path.name for path in tmp_path.iterdir()] == ["model.bin"]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_json_never_holds_nan_or_infinity(tmp_path, value):
    with pytest.raises(PipelineError, match=r"'scores.0.auc' came out (nan|inf)"):
        write_json({"scores": [{"auc": value}]}, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("size, rows", [(1000, 100), (1001, 333), (50, 7)])
def test_the_sampler_keeps_each_strata_share_and_its_seed(size, rows):
    strata = np.arange(size) % 3 == 0  # a third in one stratum
    positions = sample_positions(size, rows, seed=1, strata=strata.astype(int))
    assert len(positions) == rows == len(set(positions.tolist()))
    assert positions.tolist() == sorted(positions.tolist())
    assert abs(strata[positions].sum() - rows * strata.mean()) < 1
    assert positions.tolist() == sample_positions(size, rows, seed=1, strata=strata.astype(int)).tolist()
    assert positions.tolist() != sample_positions(size, rows, seed=2, strata=strata.astype(int)).tolist()


def test_the_sampler_takes_every_row_when_asked_for_as_many():
    assert sample_positions(5, 9, seed=0).tolist() == [0, 1, 2, 3, 4]
