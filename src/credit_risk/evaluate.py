"""Stage 4: score the saved model on the test split: quality, latency, fairness, robustness, plots.

Quality measures are pure functions of labels, scores and a fitted model.

Fairness, for each sensitive column: selection rate, true and false positive rates per group, the
demographic parity difference (largest gap in selection rate) and the equalized odds difference (the
larger of the largest gaps in true and false positive rate). These are fairlearn's definitions, and
the project's tests check the figures against fairlearn's own functions; they are computed here with
one pandas group-by, because fairlearn's MetricFrame walks the rows in Python. Awkward groups, and
where this differs from fairlearn on purpose:
- Missing values in a sensitive column form a group of their own, named "missing" (fairlearn refuses
  them; replacing them with a label, as here, is what it asks for).
- A group with no actual positives has no true positive rate, and one with no actual negatives no
  false positive rate (0/0). fairlearn reports 0 for such a rate, which would claim that the model
  misses every positive of a group that had none, and widen the equalized odds gap with it. Here an
  undefined rate is recorded as null and left out of the gap: the gap in true positive rate is taken
  over the groups that have positives, the gap in false positive rate over those with negatives. That
  equals fairlearn's figure whenever every rate is defined. A gap needs two groups with the rate; with
  fewer it is 0. No figure is ever NaN, which JSON cannot hold.
- A group of one row is kept: its rates are exact for that row, and the gate reads the gap as it is.

Robustness: how much quality drops when the input is perturbed as real data drifts or breaks. Three
seeded perturbations of the test features: Gaussian noise on numeric columns (scaled to each
column's spread), values blanked to missing, and categories swapped for another seen category.
"""

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.metrics import get_scorer
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .core import PipelineError, Robustness, load_params, read_parquet, rounded, sample_positions, write_json
from .model import load_model
from .schema import Schema, check_params, load_schema, parse_rule, rule_holds
from .task import binary_labels

# --- Quality
CURVE_POINTS = 101
WARMUP_CALLS = 10  # untimed single-row calls before timing: first calls pay for lazy set-up


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC and the confusion counts for 0/1 labels.

    The ranking measures (ROC AUC, average precision) are undefined when the labels hold one class:
    they are then null, with the reason under "undefined", never a NaN that JSON cannot hold.
    """
    y_pred = (y_score >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0),
    }
    ranked = len(np.unique(y_true)) == 2
    if ranked:
        values["roc_auc"] = skm.roc_auc_score(y_true, y_score)
        values["average_precision"] = skm.average_precision_score(y_true, y_score)
    undefined = {} if ranked else dict.fromkeys(("roc_auc", "average_precision"), "the test labels hold one class")
    figures = {name: rounded(value) for name, value in values.items()}
    return {
        **figures,
        **dict.fromkeys(undefined),
        **({"undefined": undefined} if undefined else {}),
        "true_negatives": int(tn),
        "false_positives": int(fp),
        "false_negatives": int(fn),
        "true_positives": int(tp),
        "rows": int(len(y_true)),
    }


def roc_points(y_true: np.ndarray, y_score: np.ndarray) -> list[dict[str, float]]:
    """The ROC curve at a fixed number of false-positive rates, so the file stays small at any size."""
    fpr, tpr, _ = skm.roc_curve(y_true, y_score)
    grid = np.linspace(0, 1, CURVE_POINTS)
    return [{"fpr": rounded(x), "tpr": rounded(y)} for x, y in zip(grid, np.interp(grid, fpr, tpr), strict=True)]


def precision_recall_points(y_true: np.ndarray, y_score: np.ndarray) -> list[dict[str, float]]:
    """The precision-recall curve at a fixed number of recall levels (best precision at each)."""
    precision, recall, _ = skm.precision_recall_curve(y_true, y_score)
    order = np.argsort(recall, kind="stable")
    grid = np.linspace(0, 1, CURVE_POINTS)
    best = np.maximum.accumulate(precision[order][::-1])[::-1]
    return [
        {"recall": rounded(x), "precision": rounded(y)}
        for x, y in zip(grid, np.interp(grid, recall[order], best), strict=True)
    ]


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray, limit: int) -> list[dict[str, int]]:
    """One record per test row for DVC's confusion template; the first `limit` rows at most."""
    return [{"actual": int(a), "predicted": int(p)} for a, p in zip(y_true[:limit], y_pred[:limit], strict=True)]


def latency_ms(model: Pipeline, rows: pd.DataFrame, repeats: int) -> dict[str, float]:
    """Wall time of single-row `predict_proba` calls, as a service worker answering one request would.

    On one thread, as such a worker is run: for one row, an OpenMP team (histogram gradient boosting
    predicts with one) costs more than it saves, and on a busy machine its threads wait on each other
    for tens of milliseconds. A few untimed calls warm the caches first; then every row is timed
    `repeats` times over, and each percentile is the median of the repeats' percentiles. The spread
    (largest minus smallest repeat) is the run-to-run noise the report compares a change with.
    """
    repeat_percentiles = []
    with threadpool_limits(limits=1):
        for index in range(min(WARMUP_CALLS, len(rows))):
            model.predict_proba(rows.iloc[[index]])
        singles = [rows.iloc[[index]] for index in range(len(rows))]
        for _ in range(repeats):
            timings = []
            for row in singles:
                start = time.perf_counter()
                model.predict_proba(row)
                timings.append((time.perf_counter() - start) * 1000)
            repeat_percentiles.append(np.percentile(timings, [50, 95, 99]))
    percentiles = np.array(repeat_percentiles)
    p50, p95, p99 = np.median(percentiles, axis=0)
    spread = percentiles.max(axis=0) - percentiles.min(axis=0)
    return {
        "latency_p50_ms": rounded(p50),
        "latency_p95_ms": rounded(p95),
        "latency_p99_ms": rounded(p99),
        "latency_p50_ms_spread": rounded(spread[0]),
        "latency_p99_ms_spread": rounded(spread[2]),
        "latency_rows": len(rows),
        "latency_repeats": repeats,
    }


# --- Fairness
MISSING_GROUP = "missing"


def group_rates(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> pd.DataFrame:
    """Rows, selection rate, true and false positive rate of each group (NaN where a group has no such rows)."""
    frame = pd.DataFrame(
        {
            "group": groups.astype("string").fillna(MISSING_GROUP).to_numpy(),
            "predicted": np.asarray(y_pred, dtype=float),
            "actual": np.asarray(y_true, dtype=int),
        }
    )
    by_group = frame.groupby("group", sort=True)
    rates = pd.DataFrame({"rows": by_group.size(), "selection_rate": by_group["predicted"].mean()})
    for name, actual in (("true_positive_rate", 1), ("false_positive_rate", 0)):
        rates[name] = frame[frame["actual"] == actual].groupby("group")["predicted"].mean()
    return rates


def group_fairness(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict:
    """Per-group rates and the two gap measures for one sensitive column; undefined rates are null."""
    rates = group_rates(y_true, y_pred, groups)
    gap = (rates.max() - rates.min()).fillna(0.0)  # over the groups where each rate is defined
    return {
        "groups": {
            str(group): {"rows": int(row["rows"]), **{name: _rounded(row[name]) for name in rates.columns[1:]}}
            for group, row in rates.iterrows()
        },
        "demographic_parity_difference": _rounded(gap["selection_rate"]),
        "equalized_odds_difference": _rounded(max(gap["true_positive_rate"], gap["false_positive_rate"])),
    }


def fairness_report(y_true: np.ndarray, y_pred: np.ndarray, frame: pd.DataFrame, sensitive: list[str]) -> dict:
    """Fairness per sensitive column, and the largest gap of any kind over all of them."""
    per_column = {column: group_fairness(y_true, y_pred, frame[column]) for column in sensitive}
    gaps = [
        report[gap]
        for report in per_column.values()
        for gap in ("demographic_parity_difference", "equalized_odds_difference")
    ]
    return {"by_column": per_column, "max_gap": max(gaps, default=0.0)}


def _rounded(value: float) -> float | None:
    return None if pd.isna(value) else rounded(value)


# --- Robustness
def add_numeric_noise(frame: pd.DataFrame, scale: float, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
    """Gaussian noise scaled to each column's spread, kept in the column's range, whole numbers kept whole."""
    noisy = frame.copy()
    for column in frame.select_dtypes("number").columns:
        spec = schema.columns[column]
        spread = float(frame[column].std()) or 1.0
        values = (frame[column] + rng.normal(0.0, scale * spread, size=len(frame))).clip(spec.min, spec.max)
        noisy[column] = values.round() if spec.type == "integer" else values
    return noisy


def inject_missing(frame: pd.DataFrame, rate: float, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
    """Values blanked at `rate`, in the columns the contract lets be missing (`nullable`)."""
    blanked = frame.copy()
    for column in frame.columns:
        if schema.columns[column].nullable:
            blanked[column] = frame[column].mask(rng.random(len(frame)) < rate)
    return blanked


def swap_categories(frame: pd.DataFrame, rate: float, rng: np.random.Generator, schema: Schema) -> pd.DataFrame:
    """Labels swapped at `rate` for another label of the column seen in the data."""
    swapped = frame.copy()
    for column in frame.select_dtypes("category").columns:
        categories = frame[column].cat.categories
        if len(categories) < 2:
            continue
        chosen = rng.random(len(frame)) < rate
        replacement = pd.Categorical(rng.choice(categories, size=int(chosen.sum())), categories=categories)
        values = swapped[column].copy()
        values[chosen] = replacement
        swapped[column] = values
    return swapped


def within_rules(perturbed: pd.DataFrame, clean: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The perturbed rows, except that a row breaking a business rule keeps its clean values.

    Rules that read a column the features lack (the target) are left to validate: no perturbation touches it.
    """
    broken = np.zeros(len(clean), dtype=bool)
    for name, expression in schema.rules.items():
        if parse_rule(name, expression, set(schema.columns)) <= set(clean.columns):
            broken |= ~rule_holds(perturbed, name, expression).to_numpy()
    return perturbed.mask(pd.Series(broken, index=clean.index), clean) if broken.any() else perturbed


def robustness_report(
    score: Callable[[pd.DataFrame, np.ndarray], float],
    features: pd.DataFrame,
    labels: np.ndarray,
    settings: Robustness,
    seed: int,
    schema: Schema,
) -> dict:
    """The metric on clean and perturbed features, each drop from clean, and the largest drop.

    The perturbed data stays inside the data contract, as drifting data that validate and the service
    accept would: missing values only where a column may be missing, numbers in their range, and the
    business rules kept. Data outside the contract never reaches the model, so a drop measured on it
    would count failures no user can see (and grows with the model's skill on the columns it blanks).

    On a seeded sample of at most `max_rows` rows: four scorings of the whole test set would cost more
    than the rest of evaluate at 10M rows, and the drop is a difference of two scores on the same rows.
    """
    kept = sample_positions(len(features), settings.max_rows, seed, labels)
    features, labels = features.iloc[kept], labels[kept]
    perturbations = {
        "numeric_noise": (add_numeric_noise, settings.noise_scale),
        "missing_values": (inject_missing, settings.missing_rate),
        "category_swap": (swap_categories, settings.swap_rate),
    }
    clean = score(features, labels)
    perturbed = {
        name: score(
            within_rules(perturb(features, rate, np.random.default_rng(seed), schema), features, schema), labels
        )
        for name, (perturb, rate) in perturbations.items()
    }
    drops = {name: rounded(clean - value) for name, value in perturbed.items()}
    return {
        "clean": rounded(clean),
        "perturbed": {name: rounded(value) for name, value in perturbed.items()},
        "drop": drops,
        "max_drop": max(drops.values()),
    }


# --- The stage
CONFUSION_ROWS_MAX = 20_000  # keeps the plot file small; the exact counts are in the metrics file
SNAPSHOT_ROWS = 20  # test rows whose predicted probabilities are recorded for the snapshot test


def main() -> None:
    params = load_params()
    paths, settings = params.paths, params.evaluate
    schema = load_schema(paths.contract)
    check_params(params, schema)
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
            lambda frame, labels: scorer(model, frame, labels), features, y_true, robustness, robustness.seed, schema
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
