"""Stage 1: raw CSV to clean, typed, stratified train and test Parquet files; and `infer-schema`.

Reading the raw CSV in the schema's types, with an error that names the fault when it cannot.
Spreadsheets, databases and scripts export the same data in different dresses. These read as the
same data: a UTF-8 byte-order mark or UTF-16 (Excel's "Unicode text"), Windows or old Mac line
endings, quoted fields and headers, spaces around header names, a trailing delimiter, and, with
`data.csv_delimiter: auto`, any of `,` `;` tab `|`. What cannot be read without guessing is refused
with the actual problem: another 8-bit encoding, a header naming one column twice, a delimiter that
two candidates fit equally. `predict` reads rows to score with the same reader.

With `compute.engine: dask` the stage runs on a Dask cluster (`preprocess_on_cluster`): the same reader, cleaning,
contract checks and split, on partitions of `compute.partition_size` bytes of the CSV. Dask cuts the file at line
ends without reading quotes, so a quoted field holding a line break can be cut apart: such a file needs the local
engine.

`infer-schema` drafts schema.yaml from a CSV, as TensorFlow Data Validation infers a schema: types,
missing values, ranges, categories and statistics as the data has them now, with room to spare.
Review it, then commit.
"""

import csv
import io
import math
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

import numpy as np
import pandas as pd
import yaml
from pandas.io.parsers import TextFileReader
from sklearn.model_selection import train_test_split

from .core import Params, PipelineError, Task, failure_lines, load_params, write_parquet, write_text
from .schema import (
    Profile,
    Schema,
    check_params,
    load_schema,
    partition_profiles,
    profile,
    profile_contract_checks,
    refuse_columns_outside,
)
from .task import is_classification

if TYPE_CHECKING:
    import dask.dataframe as dd

# --- Reading the raw CSV
DELIMITERS = (",", ";", "\t", "|")
SNIFFED_LINES = 20
BYTE_ORDER_MARKS = {b"\xef\xbb\xbf": "utf-8-sig", b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}


@dataclass(frozen=True)
class Dialect:
    encoding: str
    delimiter: str
    header: list[str]  # column names as the file spells them


def read_raw_csv(path: Path, schema: Schema, delimiter: str = ",", decimal: str = ".") -> pd.DataFrame:
    """The raw CSV with the schema's columns in the schema's dtypes, or an error naming the fault."""
    dialect, spelled = _header(path, schema, list(schema.columns), delimiter)
    dtypes = schema.read_dtypes()
    with _parse_errors(path, schema, dialect, spelled, decimal):
        frame = _read_csv(path, dialect, decimal, {spelled[name]: dtype for name, dtype in dtypes.items()})
    frame.columns = [name.strip() for name in frame.columns]
    return frame[list(dtypes)]


def read_csv_chunks(
    path: Path, schema: Schema, required: list[str], delimiter: str, decimal: str, rows: int
) -> Iterator[pd.DataFrame]:
    """A CSV to score, `rows` at a time, in the schema's dtypes: every column must be one the schema
    declares, and the `required` ones present; others, such as the target, may be there or not.
    """
    dialect, spelled = _header(path, schema, required, delimiter)
    refuse_columns_outside(schema, path, list(spelled))
    dtypes = schema.read_dtypes()
    with _parse_errors(path, schema, dialect, spelled, decimal):
        chunks = _read_csv(path, dialect, decimal, {raw: dtypes[name] for name, raw in spelled.items()}, chunksize=rows)
        for chunk in chunks:
            chunk.columns = [name.strip() for name in chunk.columns]
            yield chunk


@overload
def _read_csv(path: Path, dialect: Dialect, decimal: str, dtypes: Mapping[Hashable, str]) -> pd.DataFrame: ...
@overload
def _read_csv(
    path: Path, dialect: Dialect, decimal: str, dtypes: Mapping[Hashable, str], chunksize: int
) -> TextFileReader: ...
def _read_csv(
    path: Path, dialect: Dialect, decimal: str, dtypes: Mapping[Hashable, str], chunksize: int | None = None
) -> pd.DataFrame | TextFileReader:
    """The columns named in `dtypes`, as the file spells them, read in those dtypes (in chunks of `chunksize`)."""
    return pd.read_csv(
        path,
        sep=dialect.delimiter,
        decimal=decimal,
        usecols=list(dtypes),
        dtype=dtypes,
        encoding=dialect.encoding,
        chunksize=chunksize,
    )


def _header(path: Path, schema: Schema, required: list[str], delimiter: str) -> tuple[Dialect, dict[str, str]]:
    """The file's dialect and its column names as spelled, once every required column is known present."""
    dialect = sniff(path, delimiter)
    spelled = _names_as_spelled(path, dialect.header)
    missing = [name for name in required if name not in spelled]
    if missing:
        raise PipelineError(_missing_columns_message(path, list(spelled), missing, dialect))
    return dialect, spelled


@contextmanager
def _parse_errors(
    path: Path, schema: Schema, dialect: Dialect, spelled: dict[str, str], decimal: str
) -> Iterator[None]:
    """pandas' parse errors as the fault in the file: its encoding, its shape, or the column holding text."""
    try:
        yield
    except UnicodeDecodeError as error:
        raise PipelineError(_encoding_message(path, error)) from None
    except pd.errors.ParserError as error:
        raise PipelineError(f"{path}: not a well-formed CSV: {error}") from None
    except ValueError:
        raise PipelineError(_type_error_message(path, schema, dialect, spelled, decimal)) from None


def sniff(path: Path, delimiter: str = "auto") -> Dialect:
    """The file's encoding, delimiter and header, once it is known to be text with a header and data rows."""
    if not path.exists():
        raise PipelineError(f"{path}: file not found; put your CSV there or set paths.raw in params.yaml")
    if not path.is_file():
        raise PipelineError(f"{path}: a folder, not a CSV file; name the CSV file itself")
    if path.stat().st_size == 0:
        raise PipelineError(f"{path}: the file is empty; it needs a header row and data rows")
    with path.open("rb") as handle:
        start = handle.read(4096)
    encoding = next((name for mark, name in BYTE_ORDER_MARKS.items() if start.startswith(mark)), "utf-8")
    if encoding == "utf-8" and b"\x00" in start:  # text never holds NUL bytes; Parquet, Excel, zip and pickles do
        raise PipelineError(f"{path}: this is a binary file, not a CSV; export the data as CSV")
    try:
        with path.open(encoding=encoding, newline="") as handle:
            lines = [line for _, line in zip(range(SNIFFED_LINES), handle, strict=False)]
    except UnicodeDecodeError as error:
        raise PipelineError(_encoding_message(path, error)) from None
    if len(lines) < 2 or not any(line.strip() for line in lines[1:]):
        raise PipelineError(f"{path}: a header but no data rows")
    chosen = _delimiter(path, lines) if delimiter == "auto" else delimiter
    header = next(csv.reader(io.StringIO(lines[0]), delimiter=chosen))
    return Dialect(encoding, chosen, header)


def _delimiter(path: Path, lines: list[str]) -> str:
    """The one candidate that splits every sniffed line into the same number (two or more) of fields."""
    widths = {}
    for candidate in DELIMITERS:
        counts = {len(row) for row in csv.reader(lines, delimiter=candidate) if row}
        if len(counts) == 1 and counts != {1}:
            widths[candidate] = counts.pop()
    if len(widths) == 1:
        return next(iter(widths))
    if not widths:
        raise PipelineError(
            f"{path}: no delimiter among {', '.join(map(repr, DELIMITERS))} splits every line into the same "
            "number of fields; set data.csv_delimiter in params.yaml, or fix the rows with extra fields"
        )
    raise PipelineError(
        f"{path}: both {' and '.join(map(repr, widths))} split every line evenly, so the delimiter is "
        "ambiguous; set data.csv_delimiter in params.yaml"
    )


def _names_as_spelled(path: Path, header: list[str]) -> dict[str, str]:
    """Each trimmed column name with its spelling in the file; a name given twice is ambiguous."""
    spelled: dict[str, str] = {}
    for raw in header:
        name = raw.strip()
        if name in spelled and name:
            raise PipelineError(
                f"{path}: the header names column {name!r} twice ({spelled[name]!r} and {raw!r}), so which one "
                "holds the data is ambiguous; rename or drop one"
            )
        spelled[name] = raw
    return spelled


def _encoding_message(path: Path, error: UnicodeDecodeError) -> str:
    byte = error.object[error.start]
    return (
        f"{path}: not UTF-8 text (byte {byte:#04x} at offset {error.start}), probably another 8-bit encoding such "
        "as Windows-1252 or Latin-1; which one cannot be told from the bytes: re-save or export the file as "
        "UTF-8 CSV"
    )


def _missing_columns_message(path: Path, header: list[str], missing: list[str], dialect: Dialect) -> str:
    message = f"{path}: missing columns {missing} required by the schema; found {header[:12]}"
    if len(header) == 1:
        guess = next((d for d in DELIMITERS if d != dialect.delimiter and d in header[0]), None)
        if guess:
            return f"{message}. The file seems delimited by {guess!r}: set data.csv_delimiter in params.yaml (or auto)"
    return f"{message}. Rename the columns, or update schema.yaml if the change is intended"


def _type_error_message(path: Path, schema: Schema, dialect: Dialect, spelled: dict[str, str], decimal: str) -> str:
    """Find which numeric column holds text: read as text, then try each value as a number."""
    numeric = [name for name, spec in schema.columns.items() if spec.is_numeric and name in spelled]
    text = pd.read_csv(
        path, sep=dialect.delimiter, usecols=[spelled[name] for name in numeric], dtype=str, encoding=dialect.encoding
    )
    for name in numeric:
        values = text[spelled[name]].dropna()
        bad = values[pd.to_numeric(values.str.replace(decimal, ".", regex=False), errors="coerce").isna()]
        if not bad.empty:
            examples = ", ".join(repr(value) for value in bad.unique()[:3])
            other = "," if decimal == "." else "."
            hint = (
                f"; they look like decimal {'commas' if other == ',' else 'points'}: set data.csv_decimal to {other!r}"
                if bad.str.fullmatch(rf"-?\d+\{other}\d+").all()
                else "; fix those values, or declare the column categorical in schema.yaml"
            )
            return (
                f"{path}: column '{name}' must be {schema.columns[name].type} but {len(bad)} rows hold text, "
                f"e.g. {examples} (first at data row {bad.index[0] + 1}){hint}"
            )
    return f"{path}: could not parse the file as CSV with the schema's types"


# --- The stage
def clean(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Trim whitespace around labels and drop rows whose target is missing."""
    for name in frame.select_dtypes("category").columns:
        frame[name] = strip_labels(frame[name])
    return frame.dropna(subset=[target]).reset_index(drop=True)


def strip_labels(values: pd.Series) -> pd.Series:
    """Labels without surrounding whitespace, blank ones missing; ' own' and 'own' become one category.

    Works on the few categories, not the many rows, so it costs the same at 1,000 rows or 10M.
    """
    stripped = values.cat.categories.astype(str).str.strip()
    labels = pd.Index(sorted(set(stripped) - {""}))
    # new code of each old code; the extra last entry is where the missing code, -1, lands
    new_code_of_old = np.array([labels.get_loc(label) if label else -1 for label in stripped] + [-1])
    new_codes = new_code_of_old[values.cat.codes.to_numpy()]
    # pandas-stubs 2.3 types `codes` as a Sequence[int]; pandas takes any array of integers
    categorical = pd.Categorical.from_codes(new_codes, categories=labels)  # type: ignore[arg-type]
    return pd.Series(categorical, index=values.index, name=values.name)


def split(
    frame: pd.DataFrame, target: str, test_size: float, seed: int, task: Task
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test rows, seeded, in the seeded shuffle's order (see `split_positions`)."""
    train, test = split_positions(frame[target], test_size, seed, task)
    return frame.iloc[train], frame.iloc[test]


def split_positions(target: pd.Series, test_size: float, seed: int, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the train and test rows, seeded; stratified on the target's classes when classifying, so both
    splits hold every class in its share. A regression target has no classes: its rows are drawn at random.

    Only the target decides which rows go where, so both engines select the same rows: the local engine takes
    them from the frame, the Dask engine from each partition (see `preprocess_on_cluster`)."""
    positions = np.arange(len(target))
    if not is_classification(task):
        return tuple(train_test_split(positions, test_size=test_size, random_state=seed))
    name = target.name
    counts = target.value_counts()
    rare = counts[counts < 2]
    if not rare.empty:
        raise PipelineError(
            f"data.task is {task}, and class {rare.index[0]!r} of target '{name}' has {rare.iloc[0]} row: the "
            "stratified split needs at least 2 rows of each class (one for train, one for test); add rows of "
            f"it, merge it into another class, or drop it ({len(rare)} such classes)"
        )
    try:
        return tuple(train_test_split(positions, test_size=test_size, random_state=seed, stratify=target))
    except ValueError as error:  # e.g. fewer test rows than classes
        raise PipelineError(
            f"cannot make a stratified split on target '{name}' ({len(counts)} classes, {len(target)} rows): "
            f"{error}; raise split.test_size or add rows"
        ) from None


def refuse_broken_contract(part: Profile, schema: Schema, target: str, task: Task) -> None:
    """Bad raw data stops here, before any output is written, so dvc.lock and every output stay as they were.

    validate checks the same contract again on each split, with drift, and records every check.
    """
    failures = failure_lines(profile_contract_checks({"raw": part}, schema, target, task))
    if failures:
        raise PipelineError(
            f"the raw data breaks the data contract: {len(failures)} checks\n  " + "\n  ".join(failures)
        )


def main() -> None:
    params = load_params()
    schema = load_schema(params.paths.contract)
    check_params(params, schema)
    if params.compute.engine == "dask":
        from .compute import dask_client

        with dask_client(params.compute):
            raw_rows, train_rows, test_rows = preprocess_on_cluster(params, schema)
    else:
        raw_rows, train_rows, test_rows = preprocess_locally(params, schema)
    print(f"preprocess: {raw_rows} raw rows -> {train_rows} train, {test_rows} test")


def preprocess_locally(params: Params, schema: Schema) -> tuple[int, int, int]:
    target, task = params.data.target, params.data.task
    raw = read_raw_csv(params.paths.raw, schema, params.data.csv_delimiter, params.data.csv_decimal)
    cleaned = clean(raw, target)
    refuse_broken_contract(profile(cleaned, schema, target), schema, target, task)
    train, test = split(cleaned, target, params.split.test_size, params.split.seed, task)
    write_parquet(train, params.paths.train)
    write_parquet(test, params.paths.test)
    return len(raw), len(train), len(test)


# --- The stage on a Dask cluster
def preprocess_on_cluster(params: Params, schema: Schema) -> tuple[int, int, int]:
    """The stage on the current Dask client (or scheduler): the raw CSV read in partitions of
    `compute.partition_size` bytes, each cleaned and profiled on the workers, the contract checked from the merged
    profile; then only the target comes to the client, for `split_positions`, and each partition keeps its own
    train and test rows. The splits hold the same rows as the local engine's, in the file's order rather than
    shuffled, and are written as folders of partitions, both in one more pass (compute.replaced_by_folders).
    """
    import dask
    from dask import delayed

    from .compute import replaced_by_folders, rows_per_partition

    target, task = params.data.target, params.data.task
    path, delimiter, decimal = params.paths.raw, params.data.csv_delimiter, params.data.csv_decimal
    dialect, spelled = _header(path, schema, list(schema.columns), delimiter)
    with _parse_errors(path, schema, dialect, spelled, decimal):
        raw = _read_csv_partitions(path, schema, dialect, spelled, decimal, params.compute.partition_size)
        cleaned = [delayed(clean)(part, target) for part in raw.to_delayed()]
        raw_rows, merged, summaries = dask.compute(
            [delayed(len)(part) for part in raw.to_delayed()],
            partition_profiles(cleaned, schema, target),
            [delayed(_target_and_labels)(part, target) for part in cleaned],
        )
    refuse_broken_contract(merged, schema, target, task)
    targets = [summary[0] for summary in summaries]
    labels = {name: sorted(set().union(*(summary[1][name] for summary in summaries))) for name in summaries[0][1]}
    positions = split_positions(pd.concat(targets, ignore_index=True), params.split.test_size, params.split.seed, task)
    lengths = [len(part) for part in targets]
    chosen = [rows_per_partition(np.sort(rows), lengths) for rows in positions]
    with replaced_by_folders(params.paths.train, params.paths.test) as folders:
        dask.compute(
            [
                delayed(_write_split_partition)(part, labels, number, [rows[number] for rows in chosen], folders)
                for number, part in enumerate(cleaned)
            ]
        )
    return sum(raw_rows), len(positions[0]), len(positions[1])


def _read_csv_partitions(
    path: Path, schema: Schema, dialect: Dialect, spelled: dict[str, str], decimal: str, partition_size: str
) -> "dd.DataFrame":
    """The raw CSV as a Dask frame of `partition_size`-byte blocks in the schema's dtypes. UTF-16 cannot be cut
    at byte offsets, so such a file is one partition."""
    import dask.dataframe as dd

    dtypes = schema.read_dtypes()
    frame = dd.read_csv(
        str(path),
        sep=dialect.delimiter,
        decimal=decimal,
        usecols=[spelled[name] for name in dtypes],
        dtype={spelled[name]: dtype for name, dtype in dtypes.items()},
        encoding=dialect.encoding,
        blocksize=None if dialect.encoding == "utf-16" else partition_size,
    )
    frame = frame.rename(columns={spelled[name]: name for name in dtypes})
    return frame[list(dtypes)]


def _target_and_labels(part: pd.DataFrame, target: str) -> tuple[pd.Series, dict[str, list[str]]]:
    """A cleaned partition's target, and each categorical column's labels (to make one set for all)."""
    labels = {str(name): list(part[name].cat.categories) for name in part.select_dtypes("category").columns}
    return part[target].reset_index(drop=True), labels


def _rows_with_labels(part: pd.DataFrame, labels: dict[str, list[str]], rows: np.ndarray) -> pd.DataFrame:
    """A partition's chosen rows, every categorical column with the one sorted set of labels of all partitions
    (as the local engine's `strip_labels` gives the whole file)."""
    chosen = part.iloc[rows].reset_index(drop=True)
    for name, categories in labels.items():
        chosen[name] = chosen[name].cat.set_categories(categories)
    return chosen


def _write_split_partition(
    part: pd.DataFrame, labels: dict[str, list[str]], number: int, rows: list[np.ndarray], folders: list[Path]
) -> None:
    """One cleaned partition's train rows and test rows as part.<number> of each split, read once (on a worker)."""
    from .compute import write_part

    for chosen, folder in zip(rows, folders, strict=True):
        write_part(_rows_with_labels(part, labels, chosen), folder, number)


# --- infer-schema
CATEGORY_LIMIT = 50  # a text column with more distinct values is kept categorical without a closed list
MISSING_MARGIN = 1.5  # the allowed missing rate is the observed one times this (rounded up)
MEAN_MARGIN = 0.25  # the mean may move by this fraction of the spread before the check fails


def column_spec(values: pd.Series) -> dict:
    missing = float(values.isna().mean())
    spec: dict = {"nullable": missing > 0}
    if missing > 0:
        spec["max_missing_rate"] = min(1.0, math.ceil(missing * MISSING_MARGIN * 100) / 100)
    numbers = pd.to_numeric(values, errors="coerce")
    if values.notna().any() and numbers.notna().sum() == values.notna().sum():
        present = numbers.dropna()
        whole = bool((present == present.round()).all())
        mean, std = float(present.mean()), float(present.std(ddof=0))
        return {
            "type": "integer" if whole else "numeric",
            **spec,
            "min": _round(present.min(), floor=True),
            "max": _round(present.max(), floor=False),
            "mean_min": _round(mean - MEAN_MARGIN * std, floor=True),
            "mean_max": _round(mean + MEAN_MARGIN * std, floor=False),
        }
    categories = sorted(values.dropna().astype(str).str.strip().unique())
    if len(categories) <= CATEGORY_LIMIT:
        spec["allowed"] = categories
    return {"type": "categorical", **spec}


def _round(value: float, floor: bool) -> float | int:
    rounded = math.floor(value * 100) / 100 if floor else math.ceil(value * 100) / 100
    return int(rounded) if rounded == int(rounded) else rounded


CLASS_LIMIT = 20  # a target of whole numbers with more distinct values than this looks like a quantity


def propose_task(values: pd.Series) -> tuple[Task, str]:
    """The task a target column of raw text looks like, and why."""
    present = values.dropna().astype(str).str.strip()
    distinct = present.nunique()
    numbers = pd.to_numeric(present, errors="coerce")
    if distinct == 2:
        return "binary", "two distinct values"
    if numbers.notna().all() and distinct > 0:
        if not (numbers == numbers.round()).all():
            return "regression", "fractional numbers"
        if distinct > CLASS_LIMIT:
            return "regression", f"{distinct} distinct whole numbers"
    return "multiclass", f"{distinct} distinct values"


def infer(frame: pd.DataFrame) -> dict:
    return {
        "dataset": {"min_rows": max(1, len(frame) // 2)},
        "columns": {str(name): column_spec(frame[name]) for name in frame.columns},
    }


def infer_schema(data: str | None = None, output: str | None = None, force: bool = False) -> None:
    params = load_params()
    source = Path(data) if data else params.paths.raw
    target = Path(output) if output else params.paths.contract
    dialect = sniff(source, params.data.csv_delimiter)  # refuses what is not a CSV with rows: empty, binary, ...
    if len(dialect.header) < 2:
        raise PipelineError(
            f"{source}: one column ({dialect.header[0][:40]!r}) is no data set to learn from: is "
            f"data.csv_delimiter ({dialect.delimiter!r}) the file's delimiter?"
        )
    try:
        frame = pd.read_csv(
            source, sep=dialect.delimiter, dtype=str, keep_default_na=True, encoding=dialect.encoding
        ).rename(columns=str.strip)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise PipelineError(f"{source}: not a readable CSV ({error})") from None
    written = target if force or not target.exists() else target.with_suffix(".draft" + target.suffix)
    header_comment = (
        f"# Drafted by infer-schema from {source} ({len(frame)} rows). REVIEW BEFORE COMMITTING:\n"
        "# tighten or loosen ranges, categories, missing rates and means to what the data may be, not what it is.\n"
    )
    draft = header_comment + yaml.safe_dump(infer(frame), sort_keys=False, allow_unicode=True)
    write_text(written, draft)
    kept = "" if written == target else f" ({target} exists and was kept: compare, then move the draft over it)"
    print(f"infer-schema: wrote {written} for {frame.shape[1]} columns; review it before committing{kept}")
    target_column = params.data.target
    if target_column in frame.columns:
        task, reason = propose_task(frame[target_column])
        current = params.data.task
        note = "" if task == current else f"; params.yaml says {current}: change it if the target is {task}"
        print(f"infer-schema: the target '{target_column}' holds {reason}: it looks like data.task: {task}{note}")
