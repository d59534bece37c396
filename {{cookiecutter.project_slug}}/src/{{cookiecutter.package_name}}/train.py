"""Stage 3: fit one Pipeline (preprocessing + estimator) on the train split and save it."""

from .errors import PipelineError
from .files import read_json, read_parquet
from .learning_curve import log_learning_curve
from .model import binary_labels, build_pipeline, make_estimator, save_model
from .params import load_params
from .schema import check_params, load_schema


def main() -> None:
    params = load_params()
    paths, target, settings = params.paths, params.data.target, params.train
    check_params(params, load_schema(paths.contract))
    estimator = make_estimator(settings.estimator, settings.hyperparameters, settings.seed)
    if not read_json(paths.validation).get("passed"):
        raise PipelineError(f"validate did not pass: fix the data before training (see {paths.validation})")
    frame = read_parquet(paths.train)
    labels = binary_labels(frame[target], params.data.positive_class)
    features = frame.drop(columns=[target, *settings.exclude_columns], errors="ignore")
    model = build_pipeline(
        numeric=features.select_dtypes("number").columns.tolist(),
        categorical=features.select_dtypes("category").columns.tolist(),
        estimator=estimator,
    )
    model.fit(features, labels)
    save_model(model, paths.model)
    log_learning_curve(model, features, labels, settings.learning_curve, settings.seed, paths.learning_curve)
    print(f"train: {settings.estimator} on {len(frame)} rows, {features.shape[1]} features")
