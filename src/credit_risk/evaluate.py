"""Stage 4: score the saved model on the test split: quality, latency, fairness, robustness, plots."""

from sklearn.metrics import get_scorer

from .fairness import fairness_report
from .files import read_parquet, write_json
from .metrics import classification_metrics, confusion_rows, latency_ms, precision_recall_points, roc_points
from .model import binary_labels, load_model
from .params import load_params, param, path_param
from .robustness import robustness_report

CONFUSION_ROWS_MAX = 20_000  # keeps the plot file small; the exact counts are in the metrics file
SNAPSHOT_ROWS = 20  # test rows whose predicted probabilities are recorded for the snapshot test


def main() -> None:
    params = load_params()
    target = param(params, "data.target")
    model = load_model(path_param(params, "model"))
    test = read_parquet(path_param(params, "test"))
    y_true = binary_labels(test[target], param(params, "data.positive_class"))
    features = test.drop(columns=[target])
    y_score = model.predict_proba(features)[:, 1]
    threshold = param(params, "evaluate.decision_threshold")
    y_pred = (y_score >= threshold).astype(int)

    scores = classification_metrics(y_true, y_score, threshold)
    write_json(scores, path_param(params, "evaluation"))
    timed = features.head(param(params, "evaluate.latency_rows"))
    write_json(latency_ms(model, timed, param(params, "evaluate.latency_repeats")), path_param(params, "latency"))
    sensitive = param(params, "evaluate.fairness.sensitive")
    write_json(fairness_report(y_true, y_pred, test, sensitive), path_param(params, "fairness"))
    robustness = param(params, "evaluate.robustness")
    scorer = get_scorer(robustness["metric"])
    write_json(
        robustness_report(
            lambda frame, labels: scorer(model, frame, labels), features, y_true, robustness, robustness["seed"]
        ),
        path_param(params, "robustness"),
    )
    snapshot = features.head(SNAPSHOT_ROWS)
    write_json(
        {"rows": snapshot.index.tolist(), "probabilities": y_score[:SNAPSHOT_ROWS].round(12).tolist()},
        path_param(params, "predictions"),
    )
    plots = path_param(params, "plots")
    write_json(roc_points(y_true, y_score), plots / "roc.json")
    write_json(precision_recall_points(y_true, y_score), plots / "precision_recall.json")
    write_json(confusion_rows(y_true, y_pred, CONFUSION_ROWS_MAX), plots / "confusion_matrix.json")
    print("evaluate: " + ", ".join(f"{name} {scores[name]:.3f}" for name in ("accuracy", "f1", "roc_auc")))
