"""Stage 3: fit one Pipeline (preprocessing + estimator) on the train split and save it."""

from .errors import PipelineError
from .files import read_json, read_parquet
from .learning_curve import log_learning_curve
from .model import binary_labels, build_pipeline, make_estimator, save_model
from .params import load_params, param, path_param


def main() -> None:
    params = load_params()
    if not read_json(path_param(params, "validation")).get("passed"):
        raise PipelineError("validate did not pass: fix the data before training (see metrics/validation.json)")
    target = param(params, "data.target")
    frame = read_parquet(path_param(params, "train"))
    features = frame.drop(columns=[target, *param(params, "train.exclude_columns")], errors="ignore")
    name = param(params, "train.estimator")
    estimator = make_estimator(name, param(params, "train").get(name) or {}, param(params, "train.seed"))
    model = build_pipeline(
        numeric=features.select_dtypes("number").columns.tolist(),
        categorical=features.select_dtypes("category").columns.tolist(),
        estimator=estimator,
    )
    labels = binary_labels(frame[target], param(params, "data.positive_class"))
    model.fit(features, labels)
    save_model(model, path_param(params, "model"))
    log_learning_curve(
        model,
        features,
        labels,
        param(params, "train.learning_curve"),
        param(params, "train.seed"),
        path_param(params, "learning_curve"),
    )
    print(f"train: {name} on {len(frame)} rows, {features.shape[1]} features")
