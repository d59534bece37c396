"""params.yaml, typed: every knob the stages use, with its type, range and allowed values.

`load_params()` checks the whole file before a stage does any work, so a mistake is one line naming
the key, the value and what is allowed, never a traceback half-way through a run. Keys that name
columns are checked against the data contract by `schema.check_params`.
"""

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import PipelineError

PARAMS_FILE = Path("params.yaml")
Model = TypeVar("Model", bound=BaseModel)

Fraction = Annotated[float, Field(ge=0, le=1)]
OpenFraction = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0)]


class Section(BaseModel):
    """A section of params.yaml: unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Paths(Section):
    raw: Path
    contract: Path = Field(alias="schema")
    train: Path
    test: Path
    model: Path
    learning_curve: Path
    validation: Path
    evaluation: Path
    latency: Path
    fairness: Path
    robustness: Path
    predictions: Path
    gate: Path
    baseline: Path
    reference: Path
    drift_report: Path
    plots: Path


class Data(Section):
    target: Annotated[str, Field(min_length=1)]
    positive_class: str | int | float
    csv_delimiter: Annotated[str, Field(pattern=r"^(auto|.)$")]  # one character, or auto: sniffed
    csv_decimal: Literal[".", ","] = "."


class ValidateSettings(Section):
    drift_psi_max: Positive
    drifted_share_max: Fraction
    psi_bins: Annotated[int, Field(ge=2, le=1000)]
    sample_rows: Annotated[int, Field(ge=10)]
    reference_rows: Annotated[int, Field(ge=10)]
    seed: Seed


class Split(Section):
    test_size: OpenFraction
    seed: Seed


class LearningCurve(Section):
    train_sizes: Annotated[list[Annotated[float, Field(gt=0, le=1)]], Field(min_length=1)]
    folds: Annotated[int, Field(ge=2, le=20)]
    max_rows: Annotated[int, Field(ge=20)]


Hyperparameters = dict[str, Any]


class Train(Section):
    estimator: Literal["hist_gradient_boosting", "random_forest", "logistic_regression", "gradient_boosting"]
    seed: Seed
    exclude_columns: list[str]
    learning_curve: LearningCurve
    random_forest: Hyperparameters = {}
    logistic_regression: Hyperparameters = {}
    gradient_boosting: Hyperparameters = {}
    hist_gradient_boosting: Hyperparameters = {}

    @property
    def hyperparameters(self) -> Hyperparameters:
        """The chosen estimator's hyper-parameters, as params.yaml gives them."""
        return getattr(self, self.estimator)


class Fairness(Section):
    sensitive: list[str]


class Robustness(Section):
    metric: Annotated[str, Field(min_length=1)]
    seed: Seed
    noise_scale: Annotated[float, Field(ge=0, le=10)]
    missing_rate: Fraction
    swap_rate: Fraction
    max_rows: Annotated[int, Field(ge=10)]


class Evaluate(Section):
    decision_threshold: Fraction
    latency_rows: Annotated[int, Field(ge=1, le=100_000)]
    latency_repeats: Annotated[int, Field(ge=1, le=50)]
    fairness: Fairness
    robustness: Robustness


class Comparison(Section):
    metric: Annotated[str, Field(min_length=1)]
    min_ratio: Positive


class DataQuality(Section):
    missing_rate_max: Fraction


class GateFairness(Section):
    max_gap: Fraction


class GateRobustness(Section):
    max_drop: Fraction


class Gate(Section):
    performance: dict[str, float]
    comparison: Comparison
    data_quality: DataQuality
    fairness: GateFairness
    robustness: GateRobustness

    @field_validator("performance")
    @classmethod
    def _bounds_are_named(cls, thresholds: dict[str, float]) -> dict[str, float]:
        wrong = sorted(key for key in thresholds if not key.endswith(("_min", "_max")))
        if wrong:
            raise ValueError(f"{wrong}: threshold keys are <metric>_min or <metric>_max, e.g. f1_min")
        return thresholds


class Serve(Section):
    """The model service and batch scoring; read by no DVC stage, so changing them re-runs nothing."""

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)]
    workers: Annotated[int, Field(ge=1, le=64)]
    max_rows: Annotated[int, Field(ge=1, le=100_000)]
    max_body_bytes: Annotated[int, Field(ge=1024)]
    graceful_shutdown_seconds: Annotated[float, Field(ge=0, le=600)]
    prediction_log: Path
    batch_rows: Annotated[int, Field(ge=1, le=10_000_000)]


class Params(Section):
    paths: Paths
    data: Data
    validation: ValidateSettings = Field(alias="validate")
    split: Split
    train: Train
    evaluate: Evaluate
    gate: Gate
    serve: Serve


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Every param, typed and checked; a PipelineError with one line per mistake otherwise."""
    if not path.is_file():
        raise PipelineError(f"{path} not found: run the command from the project's root folder")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from None
    return validated(Params, raw, path)


def validated(model: type[Model], raw: Any, path: Path) -> Model:
    """`raw` as `model`, or a PipelineError listing each wrong key with its value and what is allowed."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{path} must hold a mapping of keys to values, not {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        lines = [_error_line(path, problem) for problem in error.errors()]
        raise PipelineError("\n  ".join(lines)) from None


def _error_line(path: Path, problem: Any) -> str:
    key = ".".join(str(part) for part in problem["loc"])
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "missing":
        return f"{path}: '{key}' is missing: add it (see the README's param table)"
    if problem["type"] == "extra_forbidden":
        return f"{path}: '{key}' is not a known key: remove it or fix its spelling"
    if problem["type"] == "value_error":  # a check across keys: the message names the values
        return f"{path}: '{key}': {message}"
    value = repr(problem["input"])
    return f"{path}: '{key}' is {value if len(value) <= 80 else value[:77] + '...'}: {message}"
