"""Stage 4: score the saved model on the test split: quality, latency, fairness, robustness, plots."""

from sklearn.metrics import get_scorer

from .errors import PipelineError
from .fairness import fairness_report
from .files import read_parquet, write_json
from .metrics import classification_metrics, confusion_rows, latency_ms, precision_recall_points, roc_points
from .model import binary_labels, load_model
from .params import load_params
from .robustness import robustness_report
from .schema import check_params, load_schema

CONFUSION_ROWS_MAX = 20_000  # keeps the plot file small; the exact counts are in the metrics file
SNAPSHOT_ROWS = 20  # test rows whose predicted probabilities are recorded for the snapshot test


def main() -> None:
    params = load_params()
    paths, settings = params.paths, params.evaluate
    check_params(params, load_schema(paths.contract))
    try:
        scorer = get_scorer(settings.robustness.metric)
    except ValueError:
        raise PipelineError(
            f"params.yaml: 'evaluate.robustness.metric' is {settings.robustness.metric!r}, not a scikit-learn "
            "scorer name: use one of sklearn.metrics.get_scorer_names(), e.g. roc_auc"
        ) from None
    model = load_model(paths.model)
    test = read_parquet(paths.test)
    y_true = binary_labels(test[params.data.target], params.data.positive_class)
    features = test.drop(columns=[params.data.target])
    y_score = model.predict_proba(features)[:, 1]
    y_pred = (y_score >= settings.decision_threshold).astype(int)

    scores = classification_metrics(y_true, y_score, settings.decision_threshold)
    robustness = settings.robustness
    outputs = {  # every result first, then every write: a failure part-way leaves the last good files
        paths.evaluation: scores,
        paths.latency: latency_ms(model, features.head(settings.latency_rows), settings.latency_repeats),
        paths.fairness: fairness_report(y_true, y_pred, test, settings.fairness.sensitive),
        paths.robustness: robustness_report(
            lambda frame, labels: scorer(model, frame, labels), features, y_true, robustness, robustness.seed
        ),
        paths.predictions: {
            "rows": features.head(SNAPSHOT_ROWS).index.tolist(),
            "probabilities": y_score[:SNAPSHOT_ROWS].tolist(),  # exact: serving must match to the bit
        },
        paths.plots / "roc.json": roc_points(y_true, y_score),
        paths.plots / "precision_recall.json": precision_recall_points(y_true, y_score),
        paths.plots / "confusion_matrix.json": confusion_rows(y_true, y_pred, CONFUSION_ROWS_MAX),
    }
    for path, data in outputs.items():
        write_json(data, path)
    print("evaluate: " + ", ".join(f"{name} {scores[name]}" for name in ("accuracy", "f1", "roc_auc")))
