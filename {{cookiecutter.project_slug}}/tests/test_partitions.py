"""One implementation of the contract for both engines: partition profiles merged equal the whole frame's checks,
and the Dask engine's preprocess selects the local engine's rows and refuses the same bad input."""

from dataclasses import asdict
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core import Check, Params, PipelineError, load_params, read_parquet, write_parquet
from {{ cookiecutter.package_name }}.preprocess import (
    clean,
    preprocess_locally,
    preprocess_on_cluster,
    read_raw_csv,
    split_positions,
)
from {{ cookiecutter.package_name }}.schema import (
    ColumnSpec,
    Dataset,
    Schema,
    contract_checks,
    merged_profile,
    partition_profiles,
    profile,
    profile_contract_checks,
)
from {{ cookiecutter.package_name }}.validate import (
    bin_counts,
    frame_bin_counts,
    psi,
    psi_from_counts,
    reference_cuts,
    summed_counts,
    validate_locally,
    validate_on_cluster,
)

SCHEMA = Schema(
    dataset=Dataset(min_rows=10),
    rules={"adult": "age >= 18", "sane": "amount > 0 or city == 'Oslo'"},
    columns={
        "age": ColumnSpec(type="integer", min=18, max=90, mean_min=20, mean_max=60, std_max=30),
        "amount": ColumnSpec(type="numeric", nullable=True, max_missing_rate=0.2, std_max=1e6),
        "id": ColumnSpec(type="integer", unique=True),
        "city": ColumnSpec(type="categorical", allowed=("Oslo", "Bergen")),
        "y": ColumnSpec(type="integer", allowed=(0, 1)),
    },
)


def frame(rows: int = 600, seed: int = 3) -> pd.DataFrame:
    """Bad rows of every kind, spread over the whole frame, so every partition holds some."""
    rng = np.random.default_rng(seed)
    ids = np.arange(rows, dtype=float)
    ids[rng.choice(rows, 30, replace=False)] = ids[rng.choice(rows, 30, replace=False)]  # repeats across parts
    return pd.DataFrame(
        {
            "age": rng.integers(10, 95, rows).astype(float) + (rng.random(rows) < 0.05) * 0.5,
            "amount": np.where(rng.random(rows) < 0.25, np.nan, rng.normal(1000, 500, rows)),
            "id": ids,
            "city": pd.Categorical(rng.choice(["Oslo", "Bergen", "Rome"], rows)),
            "y": rng.integers(0, 2, rows).astype(float),
        }
    )


def merged_parts(data: pd.DataFrame, parts: int) -> list[Check]:
    profiles = [
        profile(part, SCHEMA, "y") for part in (data.iloc[rows] for rows in np.array_split(np.arange(len(data)), parts))
    ]
    merged = profiles[0]
    for later in profiles[1:]:
        merged = merged_profile(merged, later)
    return profile_contract_checks({"raw": merged}, SCHEMA, "y", "binary")


def same_checks(got: list[Check], expected: list[Check]) -> None:
    """Equal checks: names, verdicts, details (examples in row order) exact; values up to float rounding."""
    assert len(got) == len(expected)
    for check, reference in zip(got, expected, strict=True):
        mine, theirs = asdict(check), asdict(reference)
        value, other = mine.pop("value"), theirs.pop("value")
        assert mine == theirs
        assert value == (pytest.approx(other, rel=1e-9) if isinstance(other, float) else other)


@pytest.mark.parametrize("parts", [2, 7, 30])
def test_merged_partition_profiles_give_the_whole_frames_checks(parts: int) -> None:
    data = frame()
    expected = contract_checks({"raw": data}, SCHEMA, "y", "binary")
    assert sum(not check.passed for check in expected) >= 6  # the frame breaks rules, bounds, uniqueness, labels
    same_checks(merged_parts(data, parts), expected)


def test_moments_merge_to_pandas_mean_and_spread():
    data = frame(rows=1000)
    merged = merged_parts(data, 9)
    present = data["amount"].dropna()
    spread = next(check for check in merged if check.name == "raw: spread <= std_max" and check.column == "amount")
    assert spread.value == pytest.approx(present.std(ddof=0), rel=1e-6)


def test_examples_come_from_the_first_bad_rows_in_row_order():
    data = frame(rows=3000)  # well over EXAMPLE_ROWS bad rows, so which ones are kept matters
    same_checks(merged_parts(data, 13), contract_checks({"raw": data}, SCHEMA, "y", "binary"))


def test_dask_profile_equals_local_checks():
    data = frame()
    with dask.config.set(scheduler="synchronous"):
        merged = partition_profiles(dd.from_pandas(data, npartitions=5, sort=False).to_delayed(), SCHEMA, "y").compute()
    same_checks(
        profile_contract_checks({"raw": merged}, SCHEMA, "y", "binary"),
        contract_checks({"raw": data}, SCHEMA, "y", "binary"),
    )


# --- preprocess on partitions
def cluster_params(partition_size: str = "4kB") -> Params:  # every sample (wine: 12.6 kB) in parts
    params = load_params()
    return params.model_copy(
        update={
            "compute": params.compute.model_copy(update={"engine": "dask", "partition_size": partition_size}),
            "data": params.data.model_copy(update={"csv_delimiter": "auto"}),
        }
    )


DRESSES = {  # the sample CSV as other tools export it; UTF-16 cannot be cut at byte offsets: one partition
    "as shipped": lambda text: text.encode(),
    "UTF-8 with BOM, semicolons, CRLF": lambda text: text.replace(",", ";").replace("\n", "\r\n").encode("utf-8-sig"),
    "UTF-16 with tabs": lambda text: text.replace(",", "\t").encode("utf-16"),
}


@pytest.mark.parametrize("dress", sorted(DRESSES))
def test_dask_preprocess_writes_the_local_splits_rows_in_file_order(project_copy: Path, dress: str) -> None:
    params = cluster_params()
    from {{ cookiecutter.package_name }}.schema import load_schema

    schema = load_schema(params.paths.contract)
    params.paths.raw.write_bytes(DRESSES[dress](params.paths.raw.read_text()))
    with dask.config.set(scheduler="synchronous"):
        counts = preprocess_on_cluster(params, schema)
    partitions = len(list(params.paths.train.glob("part.*.parquet")))
    assert partitions == 1 if dress.startswith("UTF-16") else partitions > 1
    cleaned = clean(
        read_raw_csv(params.paths.raw, schema, params.data.csv_delimiter, params.data.csv_decimal), params.data.target
    )
    train, test = split_positions(
        cleaned[params.data.target], params.split.test_size, params.split.seed, params.data.task
    )
    for path, chosen in ((params.paths.train, train), (params.paths.test, test)):
        expected = cleaned.iloc[np.sort(chosen)].reset_index(drop=True)
        pd.testing.assert_frame_equal(read_parquet(path), expected)
    local = params.model_copy(
        update={
            "paths": params.paths.model_copy(update={"train": Path("local-train.parquet"), "test": Path("t.parquet")})
        }
    )
    assert preprocess_locally(local, schema) == counts
    by_all = list(cleaned.columns)
    pd.testing.assert_frame_equal(
        read_parquet(Path("local-train.parquet")).sort_values(by_all).reset_index(drop=True),
        read_parquet(params.paths.train).sort_values(by_all).reset_index(drop=True),
    )


@pytest.mark.parametrize("bad_value", ["abc", "-5"])
def test_dask_preprocess_refuses_bad_input_with_the_local_message(project_copy: Path, bad_value: str) -> None:
    params = cluster_params()
    from {{ cookiecutter.package_name }}.schema import load_schema

    schema = load_schema(params.paths.contract)
    lines = params.paths.raw.read_text().splitlines()
    header = lines[0].split(",")
    numeric = next(name for name, spec in schema.columns.items() if spec.is_numeric and name != params.data.target)
    row = lines[-3].split(",")
    row[header.index(numeric)] = bad_value
    lines[-3] = ",".join(row)
    params.paths.raw.write_text("\n".join(lines) + "\n")
    with pytest.raises(PipelineError) as local:
        preprocess_locally(params, schema)
    with dask.config.set(scheduler="synchronous"), pytest.raises(PipelineError) as cluster:
        preprocess_on_cluster(params, schema)
    assert str(cluster.value) == str(local.value)
    assert not params.paths.train.exists()


# --- validate on partitions
@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_psi_from_summed_partition_counts_equals_psi(shift: float) -> None:
    rng = np.random.default_rng(5)
    labels = np.array(["a", "b", "d", None], dtype=object)
    reference = pd.DataFrame({"x": rng.normal(size=800), "c": pd.Categorical(rng.choice(labels[[0, 1, 3]], 800))})
    current = pd.DataFrame({"x": rng.normal(loc=shift, size=3000), "c": pd.Categorical(rng.choice(labels, 3000))})
    cuts = {column: reference_cuts(reference[column], 10) for column in reference.columns}
    parts = [frame_bin_counts(current.iloc[rows], cuts) for rows in np.array_split(np.arange(3000), 7)]
    summed = summed_counts(parts)
    for column in reference.columns:
        expected = psi(reference[column], current[column], 10)
        assert psi_from_counts(bin_counts(reference[column], cuts[column]), summed[column]) == pytest.approx(expected)


def test_dask_validate_gives_the_local_checks_on_the_same_partitions(project_copy: Path) -> None:
    params = cluster_params()
    from {{ cookiecutter.package_name }}.schema import load_schema

    schema = load_schema(params.paths.contract)
    with dask.config.set(scheduler="synchronous"):
        preprocess_on_cluster(params, schema)
        train = read_parquet(params.paths.train)
        write_parquet(train.iloc[::3].reset_index(drop=True), params.paths.reference)
        cluster = validate_on_cluster(params, schema)
    local = validate_locally(params, schema)
    assert any(check.name == "drift: PSI" for check in local)
    same_checks(cluster, local)
