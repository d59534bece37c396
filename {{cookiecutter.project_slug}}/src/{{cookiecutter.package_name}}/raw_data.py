"""Reading the raw CSV in the schema's types, with an error that names the fault when it cannot."""

from pathlib import Path

import pandas as pd

from .errors import PipelineError
from .schema import Schema

SNIFFED_DELIMITERS = (";", "\t", "|", ",")


def read_raw_csv(path: Path, schema: Schema, delimiter: str = ",") -> pd.DataFrame:
    """The raw CSV with the schema's columns in the schema's dtypes, or an error naming the fault."""
    header = read_header(path, delimiter)
    missing = [name for name in schema.columns if name not in header]
    if missing:
        raise PipelineError(_missing_columns_message(path, header, missing, delimiter))
    dtypes = schema.read_dtypes()
    try:
        frame = pd.read_csv(path, sep=delimiter, usecols=list(dtypes), dtype=dtypes, encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PipelineError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); re-save it as UTF-8"
        ) from None
    except pd.errors.ParserError as error:
        raise PipelineError(f"{path}: not a well-formed CSV: {error}") from None
    except ValueError:
        raise PipelineError(_type_error_message(path, schema, delimiter)) from None
    return frame[list(dtypes)]


def read_header(path: Path, delimiter: str) -> list[str]:
    """The header's column names, once the file is known to be UTF-8 text with a header and data rows."""
    if not path.exists():
        raise PipelineError(f"{path}: file not found; put your CSV there or set paths.raw in params.yaml")
    if not path.is_file():
        raise PipelineError(f"{path}: a folder, not a CSV file; name the CSV file itself")
    if path.stat().st_size == 0:
        raise PipelineError(f"{path}: the file is empty; it needs a header row and data rows")
    with path.open("rb") as handle:
        if b"\x00" in handle.read(4096):  # text never holds NUL bytes; Parquet, Excel, zip and pickles do
            raise PipelineError(f"{path}: this is a binary file, not a CSV; export the data as CSV")
    try:
        with path.open(encoding="utf-8") as handle:
            first_line = handle.readline()
            has_rows = bool(handle.readline().strip())
    except UnicodeDecodeError as error:
        raise PipelineError(
            f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start}); "
            "re-save the file as UTF-8 CSV"
        ) from None
    if not has_rows:
        raise PipelineError(f"{path}: a header but no data rows")
    return [name.strip().strip('"') for name in first_line.rstrip("\r\n").split(delimiter)]


def _missing_columns_message(path: Path, header: list[str], missing: list[str], delimiter: str) -> str:
    message = f"{path}: missing columns {missing} required by the schema; found {header[:12]}"
    if len(header) == 1:
        guess = next((d for d in SNIFFED_DELIMITERS if d != delimiter and d in header[0]), None)
        if guess:
            return f"{message}. The file seems delimited by {guess!r}: set data.csv_delimiter in params.yaml"
    return f"{message}. Rename the columns, or update schema.yaml if the change is intended"


def _type_error_message(path: Path, schema: Schema, delimiter: str) -> str:
    """Find which numeric column holds text: read as text, then try each value as a number."""
    numeric = [name for name, spec in schema.columns.items() if spec.is_numeric]
    text = pd.read_csv(path, sep=delimiter, usecols=numeric, dtype=str, encoding="utf-8")
    for name in numeric:
        values = text[name].dropna()
        bad = values[pd.to_numeric(values, errors="coerce").isna()]
        if not bad.empty:
            examples = ", ".join(repr(value) for value in bad.unique()[:3])
            return (
                f"{path}: column '{name}' must be {schema.columns[name].type} but {len(bad)} rows hold text, "
                f"e.g. {examples} (first at data row {bad.index[0] + 1}); fix those values, or declare the "
                "column categorical in schema.yaml"
            )
    return f"{path}: could not parse the file as CSV with the schema's types"
