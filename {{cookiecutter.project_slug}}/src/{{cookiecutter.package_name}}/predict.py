"""Batch scoring: a CSV or Parquet file of rows in, the same rows with their predictions out.

Rows are read, checked against the data contract and scored `serve.batch_rows` at a time, so memory
stays bounded whatever the file's size; the output replaces its path only once every row is scored.
"""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .checks import failure_lines
from .errors import PipelineError
from .files import replaced_atomically
from .params import load_params
from .raw_data import read_csv_chunks
from .schema import Schema, check_rows, load_schema, refuse_columns_outside
from .serving import ServingModel, load_serving_model

FORMATS = (".csv", ".parquet")


def main(input_path: str, output_path: str, model_version: str | None = None) -> None:
    params = load_params()
    source, destination = Path(input_path), Path(output_path)
    for path in (source, destination):
        if path.suffix.lower() not in FORMATS:
            raise PipelineError(f"{path}: use a .csv or .parquet file")
    if destination.resolve() == source.resolve():
        raise PipelineError(f"{destination}: writing over the input would lose it; name another output file")
    schema = load_schema(params.paths.contract)
    model = load_serving_model(params, schema, model_version)
    if source.suffix.lower() == ".csv":
        data = params.data
        chunks = read_csv_chunks(
            source, schema, model.features, data.csv_delimiter, data.csv_decimal, params.serve.batch_rows
        )
    else:
        chunks = _parquet_chunks(source, schema, model.features, params.serve.batch_rows)
    rows = _write(_scored(chunks, model, source), destination, schema)
    print(f"predict: {rows} rows scored by {model.artifact} {model.version} -> {destination}")


def _scored(chunks: Iterator[pd.DataFrame], model: ServingModel, source: Path) -> Iterator[pd.DataFrame]:
    first_row = 1
    for chunk in chunks:
        rows = f"{source} rows {first_row}-{first_row + len(chunk) - 1}"
        typed = model.typed(chunk)
        failures = failure_lines(check_rows(typed, model.schema, model.features, rows))
        if failures:
            raise PipelineError(
                f"rows to score break the data contract ({len(failures)} checks):\n  " + "\n  ".join(failures)
            )
        labels, probabilities = model.score_typed(typed)
        yield chunk.assign(prediction=labels, probability=probabilities, model_version=model.version)
        first_row += len(chunk)


def _parquet_chunks(path: Path, schema: Schema, required: list[str], rows: int) -> Iterator[pd.DataFrame]:
    if not path.is_file():
        raise PipelineError(f"{path}: file not found")
    try:
        file = pq.ParquetFile(path)
    except pa.ArrowInvalid as error:
        raise PipelineError(f"{path}: not a Parquet file ({error})") from None
    columns = file.schema_arrow.names
    refuse_columns_outside(schema, path, columns)
    missing = [name for name in required if name not in columns]
    if missing:
        raise PipelineError(f"{path}: missing columns {missing} the model needs; found {columns}")
    for batch in file.iter_batches(batch_size=rows):
        yield batch.to_pandas()


def _write(scored: Iterator[pd.DataFrame], destination: Path, schema: Schema) -> int:
    rows = 0
    with replaced_atomically(destination) as handle:
        if destination.suffix.lower() == ".csv":
            for chunk in scored:
                handle.write(chunk.to_csv(index=False, header=rows == 0).encode())
                rows += len(chunk)
        else:
            writer = None
            for chunk in scored:
                table = _arrow_table(chunk, schema)
                writer = writer or pq.ParquetWriter(handle, table.schema)
                writer.write_table(table)
                rows += len(chunk)
            if writer is not None:
                writer.close()
        if rows == 0:
            raise PipelineError(f"the input holds no rows to score; {destination} was not written")
    return rows


def _arrow_table(chunk: pd.DataFrame, schema: Schema) -> pa.Table:
    """A chunk with the same column types as every other: the contract's (numbers float64, labels text)."""
    labels = [name for name in chunk.columns if name in schema.columns and not schema.columns[name].is_numeric]
    prediction = pa.string() if chunk["prediction"].dtype == object else pa.from_numpy_dtype(chunk["prediction"].dtype)
    types = {
        **{name: pa.float64() if spec.is_numeric else pa.string() for name, spec in schema.columns.items()},
        "prediction": prediction,
        "probability": pa.float64(),
        "model_version": pa.string(),
    }
    arrow_schema = pa.schema([(name, types[name]) for name in chunk.columns])
    return pa.Table.from_pandas(chunk.astype(dict.fromkeys(labels, object)), schema=arrow_schema, preserve_index=False)
