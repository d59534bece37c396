"""The model as `predict` and `serve` use it: verified before it is unpickled, and one way to score.

The artifact is the Pipeline train saved, preprocessing included, and the rows it scores are typed by
`model_input`, the one conversion both batch scoring and the service use, then scored by `task.predict`,
the one scoring path evaluate uses too: the same rows give the same float64 figures as evaluate's
`metrics/sample_predictions.json`, with no training/serving skew.

What a row's prediction is follows `data.task` (`Scored`):
- binary: the label (the contract's positive or negative one, by `evaluate.decision_threshold`), the
  probability of the positive class, and `probabilities` per class;
- multiclass: the most probable class (as text, as the model knows it), its probability, and
  `probabilities` per class;
- regression: the predicted value.

`predict` is batch scoring: a CSV or Parquet file of rows in, the same rows with their predictions
out. Rows are read, checked against the data contract and scored `serve.batch_rows` at a time, so
memory stays bounded whatever the file's size; the output replaces its path only once every row is
scored.
"""

import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.pipeline import Pipeline

from .core import (
    Params,
    PipelineError,
    failure_lines,
    git,
    load_params,
    outputs_in_lock,
    read_baseline,
    replaced_atomically,
)
from .model import verified_md5
from .preprocess import read_csv_chunks, strip_labels
from .promote import model_artifact
from .schema import Schema, check_rows, label_key, load_schema, refuse_columns_outside
from .task import Task, class_label
from .task import predict as task_predict

VERSION = re.compile(r"^v\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class Scored:
    """Rows scored: what the service answers and `predict` writes, one entry per row."""

    values: np.ndarray  # the predicted label as answered (classification), or the predicted value (regression)
    probability: np.ndarray | None  # binary: of the positive class; multiclass: of the predicted label
    probabilities: np.ndarray | None  # rows x classes, columns in `classes` order; None for regression
    classes: list[str]  # the class labels as text: the keys of an answer's `probabilities`

    def answers(self) -> list[dict[str, Any]]:
        """One JSON-ready answer per row: `label`, `probability` and `probabilities`, or `value`."""
        values = self.values.tolist()
        if self.probability is None or self.probabilities is None:
            return [{"value": value} for value in values]
        return [
            {"label": label, "probability": probability, "probabilities": dict(zip(self.classes, row, strict=True))}
            for label, probability, row in zip(
                values, self.probability.tolist(), self.probabilities.tolist(), strict=True
            )
        ]

    def columns(self) -> dict[str, np.ndarray]:
        """The columns batch scoring adds: `prediction`, and for classification `probability` and one
        `probability_<label>` per class."""
        if self.probability is None or self.probabilities is None:
            return {"prediction": self.values}
        per_class = {f"probability_{label}": self.probabilities[:, column] for column, label in enumerate(self.classes)}
        return {"prediction": self.values, "probability": self.probability, **per_class}


@dataclass(frozen=True)
class ServingModel:
    pipeline: Pipeline
    schema: Schema
    artifact: str
    version: str
    target: str
    md5: str
    source_commit: str | None
    threshold: float
    task: Task
    positive_label: Any  # binary: the target's labels as the contract spells them; None for the other tasks
    negative_label: Any

    @property
    def features(self) -> list[str]:
        return [str(name) for name in self.pipeline.feature_names_in_]

    def metadata(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "version": self.version,
            "md5": self.md5,
            "source_commit": self.source_commit,
            "features": self.features,
            "task": self.task,
            "decision_threshold": self.threshold if self.task == "binary" else None,
        }

    def typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        return model_input(frame, self.schema, self.features)

    def score_typed(self, typed: pd.DataFrame) -> Scored:
        """The prediction for each row of `typed`, through the scoring path evaluate uses."""
        predicted = task_predict(self.pipeline, typed, self.task, self.threshold)
        probabilities = predicted.probabilities
        if probabilities is None:  # regression
            return Scored(predicted.values.astype("float64"), None, None, [])
        if self.task == "binary":  # the model's classes are 0/1: answered as the contract spells them
            labels = np.where(predicted.values == 1, self.positive_label, self.negative_label)
            classes = [class_label(self.negative_label), class_label(self.positive_label)]
            return Scored(labels, probabilities[:, 1], probabilities, classes)
        columns = pd.Index(predicted.classes).get_indexer(predicted.values)
        chosen = np.take_along_axis(probabilities, columns[:, np.newaxis], axis=1)[:, 0]
        return Scored(predicted.values, chosen, probabilities, [class_label(label) for label in predicted.classes])

    def score(self, frame: pd.DataFrame) -> Scored:
        return self.score_typed(self.typed(frame))


def model_input(frame: pd.DataFrame, schema: Schema, features: list[str]) -> pd.DataFrame:
    """The feature columns in the types train saw: numbers as float64, labels as trimmed categories."""
    typed = {}
    for name in features:
        values = frame[name]
        if not schema.columns[name].is_numeric:
            labels = values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
            typed[name] = strip_labels(labels)
            continue
        try:
            typed[name] = values.astype("float64")
        except (TypeError, ValueError):
            raise PipelineError(f"column '{name}' must hold numbers, but holds e.g. {values.iloc[0]!r}") from None
    return pd.DataFrame(typed, index=frame.index)


def load_serving_model(params: Params, schema: Schema, version: str | None = None) -> ServingModel:
    """The workspace model (checked against dvc.lock), or with `version` a registered one from the registry."""
    if version is None:
        md5 = verified_md5(params.paths.model)
        pipeline = joblib.load(params.paths.model)
        record = read_baseline(params.paths.baseline) if params.paths.baseline.is_file() else None
        if record is None or record.model_md5 != md5:  # trained, not promoted: named by its hash
            artifact, model_version, source_commit = str(params.paths.model), f"unpromoted-{md5[:8]}", None
        else:
            artifact, model_version, source_commit = record.artifact, record.version, record.source_commit
    else:
        artifact, model_version = model_artifact(params.paths.model), version
        pipeline, md5, source_commit = _registered_model(params, artifact, version)
    return ServingModel(
        pipeline=pipeline,
        schema=schema,
        artifact=artifact,
        version=model_version,
        target=params.data.target,
        md5=md5,
        source_commit=source_commit,
        threshold=params.evaluate.decision_threshold,
        task=params.data.task,
        positive_label=params.data.positive_class if params.data.task == "binary" else None,
        negative_label=_negative_label(params, schema) if params.data.task == "binary" else None,
    )


def _registered_model(params: Params, artifact: str, version: str) -> tuple[Pipeline, str, str]:
    """A registered version's bytes, from DVC at its GTO tag, unpickled only if they hash to the md5 of the
    dvc.lock committed with it; with the commit it was registered at."""
    import dvc.api
    from dvc.exceptions import DvcException

    if not VERSION.match(version):
        raise PipelineError(f"--model-version {version!r} is not a version like v1.2.0")
    tag = f"{artifact}@{version}"
    listed = git("tag", "--list", f"{artifact}@v*").split()
    if tag not in listed:
        known = ", ".join(sorted(name.split("@", 1)[1] for name in listed)) or "none yet: `promote` registers them"
        raise PipelineError(f"no registered version {version} of {artifact} (versions: {known})")
    recorded = outputs_in_lock(git("show", f"{tag}:dvc.lock")).get(params.paths.model)
    try:
        content = dvc.api.read(str(params.paths.model), repo=".", rev=tag, mode="rb")
    except DvcException as error:
        raise PipelineError(
            f"the bytes of {artifact} {version} are neither in the DVC cache nor on the remote ({error}): "
            "`dvc pull` on a machine that has them, or re-run the pipeline at that tag"
        ) from None
    md5 = hashlib.md5(content).hexdigest()
    if md5 != recorded:
        raise PipelineError(
            f"{artifact} {version}: the model's bytes hash to {md5}, not to the md5 dvc.lock records for it at "
            f"{tag} ({recorded}): the cache or remote holds a tampered file; refusing to load it"
        )
    return joblib.load(io.BytesIO(content)), md5, git("rev-list", "-n", "1", tag).strip()


def _negative_label(params: Params, schema: Schema) -> Any:
    """The target's other allowed value, as the contract spells it; "not <positive>" if it lists no two."""
    target = schema.columns[params.data.target]
    positive = label_key(params.data.positive_class, target.is_numeric)
    others = [value for value in (target.allowed or ()) if label_key(value, target.is_numeric) != positive]
    return others[0] if len(others) == 1 else f"not {params.data.positive_class}"


# --- Batch scoring (`predict`)
FORMATS = (".csv", ".parquet")


def predict(input_path: str, output_path: str, model_version: str | None = None) -> None:
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
        yield chunk.assign(**model.score_typed(typed).columns(), model_version=model.version)
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
    """A chunk with the same column types as every other: the contract's (numbers float64, labels text), and
    the predictions' (probabilities float64)."""
    labels = [name for name in chunk.columns if name in schema.columns and not schema.columns[name].is_numeric]
    prediction = pa.string() if chunk["prediction"].dtype == object else pa.from_numpy_dtype(chunk["prediction"].dtype)
    types = {
        **{name: pa.float64() if spec.is_numeric else pa.string() for name, spec in schema.columns.items()},
        "prediction": prediction,
        "model_version": pa.string(),
    }
    arrow_schema = pa.schema([(name, types.get(name, pa.float64())) for name in chunk.columns])
    return pa.Table.from_pandas(chunk.astype(dict.fromkeys(labels, object)), schema=arrow_schema, preserve_index=False)
