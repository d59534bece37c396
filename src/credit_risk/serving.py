"""The model as `predict` and `serve` use it: verified before it is unpickled, and one way to score.

The artifact is the Pipeline train saved, preprocessing included, and the rows it scores are typed by
`model_input`, the one conversion both batch scoring and the service use: the same rows give the same
float64 probabilities as evaluate's `metrics/sample_predictions.json`, with no training/serving skew.
"""

import hashlib
import io
import json
import re
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .errors import PipelineError
from .files import git, read_json
from .model import verified_md5
from .params import Params
from .preprocess import strip_labels
from .schema import Schema, label_key

VERSION = re.compile(r"^v\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class ServingModel:
    pipeline: Pipeline
    schema: Schema
    artifact: str
    version: str
    md5: str
    source_commit: str | None
    threshold: float
    positive_label: Any
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
            "decision_threshold": self.threshold,
        }

    def typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        return model_input(frame, self.schema, self.features)

    def score_typed(self, typed: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Predicted labels and probabilities of the positive class, one per row of `typed`."""
        probabilities = self.pipeline.predict_proba(typed)[:, 1]
        labels = np.where(probabilities >= self.threshold, self.positive_label, self.negative_label)
        return labels, probabilities

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
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
    """The workspace model (checked against dvc.lock), or with `version` a promoted one from the registry."""
    if version is None:
        md5 = verified_md5(params.paths.model)
        pipeline = joblib.load(params.paths.model)
        record = read_json(params.paths.baseline) if params.paths.baseline.is_file() else {}
        if record.get("model_md5") != md5:  # trained, not promoted: named by its hash
            record = {"artifact": str(params.paths.model), "version": f"unpromoted-{md5[:8]}", "source_commit": None}
    else:
        pipeline, md5, record = _registered_model(params, version)
    return ServingModel(
        pipeline=pipeline,
        schema=schema,
        artifact=record["artifact"],
        version=record["version"],
        md5=md5,
        source_commit=record.get("source_commit"),
        threshold=params.evaluate.decision_threshold,
        positive_label=params.data.positive_class,
        negative_label=_negative_label(params, schema),
    )


def _registered_model(params: Params, version: str) -> tuple[Pipeline, str, dict[str, Any]]:
    """A promoted version's bytes, from DVC at its GTO tag, unpickled only if they hash to its record."""
    import dvc.api
    from dvc.exceptions import DvcException

    from .promote import model_artifact

    if not VERSION.match(version):
        raise PipelineError(f"--model-version {version!r} is not a version like v1.2.0")
    artifact = model_artifact(params.paths.model)
    tag = f"{artifact}@{version}"
    listed = git("tag", "--list", f"{artifact}@v*").split()
    if tag not in listed:
        known = ", ".join(sorted(name.split("@", 1)[1] for name in listed)) or "none yet: `promote` registers them"
        raise PipelineError(f"no promoted version {version} of {artifact} (versions: {known})")
    record = json.loads(git("show", f"{tag}:{params.paths.baseline.as_posix()}"))
    try:
        content = dvc.api.read(str(params.paths.model), repo=".", rev=tag, mode="rb")
    except DvcException as error:
        raise PipelineError(
            f"the bytes of {artifact} {version} are neither in the DVC cache nor on the remote ({error}): "
            "`dvc pull` on a machine that has them, or re-run the pipeline at that tag"
        ) from None
    md5 = hashlib.md5(content).hexdigest()
    if md5 != record["model_md5"]:
        raise PipelineError(
            f"{artifact} {version}: the model's bytes hash to {md5}, not to the md5 its promotion recorded "
            f"({record['model_md5']}): the cache or remote holds a tampered file; refusing to load it"
        )
    return joblib.load(io.BytesIO(content)), md5, record


def _negative_label(params: Params, schema: Schema) -> Any:
    """The target's other allowed value, as the contract spells it; "not <positive>" if it lists no two."""
    target = schema.columns[params.data.target]
    positive = label_key(params.data.positive_class, target.is_numeric)
    others = [value for value in (target.allowed or ()) if label_key(value, target.is_numeric) != positive]
    return others[0] if len(others) == 1 else f"not {params.data.positive_class}"
