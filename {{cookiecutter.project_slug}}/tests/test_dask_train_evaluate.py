"""train and evaluate on a Dask cluster (a small LocalCluster here) against the local engine on the same data."""

import io
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.metrics import get_scorer

from {{ cookiecutter.package_name }} import evaluate, preprocess, train
from {{ cookiecutter.package_name }}.compute import ADDRESS_VARIABLE, PART_NAME
from {{ cookiecutter.package_name }}.core import MAIN_METRIC, Params, load_params, read_parquet, sample_positions, write_parquet
from {{ cookiecutter.package_name }}.model import make_estimator
from {{ cookiecutter.package_name }}.task import encode_target


@pytest.fixture(scope="module")
def cluster_address() -> Iterator[str]:
    """One small cluster for the module, which the stages reach as an external one (DASK_SCHEDULER_ADDRESS)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def splits(project_copy: Path, cluster_address: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample's processed splits, as the local engine writes them (one file each)."""
    monkeypatch.setenv(ADDRESS_VARIABLE, cluster_address)
    preprocess.main()
    return project_copy


def in_partitions(path: Path, parts: int) -> Path:
    """The split at `path` written again as a folder of `parts` partitions, as the Dask engine writes it."""
    frame = read_parquet(path)
    folder = path.with_name(f"{path.stem}-{parts}.parquet")
    folder.mkdir()
    for number, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        write_parquet(frame.iloc[rows].reset_index(drop=True), folder / PART_NAME.format(number))
    return folder


def dask_params(train_split: Path | None = None, test_split: Path | None = None) -> Params:
    params = load_params()
    paths = params.paths.model_copy(
        update={"train": train_split or params.paths.train, "test": test_split or params.paths.test}
    )
    return params.model_copy(
        update={
            "paths": paths,
            "compute": params.compute.model_copy(update={"engine": "dask"}),
            "train": params.train.model_copy(update={"estimator": "lightgbm"}),
        }
    )


def lightgbm(params: Params) -> BaseEstimator:
    settings = params.train
    return make_estimator("lightgbm", settings.lightgbm, settings.seed, params.data.task)


def model_bytes(model: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def test_one_partition_on_the_cluster_trains_the_local_model(splits):
    params = dask_params()
    local = train.fit_here(params, lightgbm(params))
    clustered = train.fit_on_cluster(params, lightgbm(params))
    test = read_parquet(params.paths.test)
    if params.data.task == "regression":
        expected, found = local.model.predict(test), clustered.model.predict(test)
    else:
        expected, found = local.model.predict_proba(test), clustered.model.predict_proba(test)
    np.testing.assert_array_equal(found, expected)
    assert clustered.rows == local.rows
    # the learning curve's sample: the rows log_learning_curve draws from the whole split on the local engine
    curve = params.train.learning_curve
    strata = local.curve_labels if params.data.task != "regression" else None
    kept = sample_positions(len(local.curve_labels), curve.max_rows, params.train.seed, strata)
    pd.testing.assert_frame_equal(clustered.curve_features, local.curve_features.iloc[kept])
    np.testing.assert_array_equal(clustered.curve_labels, local.curve_labels[kept])


def test_two_fits_across_workers_write_the_same_model_bytes(splits):
    params = dask_params(train_split=in_partitions(load_params().paths.train, 3))
    first = train.fit_on_cluster(params, lightgbm(params))
    second = train.fit_on_cluster(params, lightgbm(params))
    assert model_bytes(first.model) == model_bytes(second.model)
    assert first.rows == len(read_parquet(params.paths.train))
    # the saved artifact is a local Pipeline: it predicts without the cluster
    assert type(first.model.named_steps["estimator"]).__module__.startswith("lightgbm.sklearn")


def test_training_across_workers_learns_about_as_well_as_one_machine(splits):
    """Each worker bins its own rows, so the models differ a little: on the sample's few hundred rows by up to
    about 0.03 in the main metric, less with more rows per worker. A worker with too few rows to split on must not
    make the model learn nothing (LightGBM's feature pre-filter, which judges by one machine's rows)."""
    params = dask_params(train_split=in_partitions(load_params().paths.train, 2))
    metric = MAIN_METRIC[params.data.task]
    test = read_parquet(params.paths.test)
    labels = encode_target(test[params.data.target], params.data)
    features = test.drop(columns=[params.data.target])
    local = get_scorer(metric)(train.fit_here(params, lightgbm(params)).model, features, labels)
    clustered = get_scorer(metric)(train.fit_on_cluster(params, lightgbm(params)).model, features, labels)
    assert clustered == pytest.approx(local, abs=0.05)


def test_evaluate_on_the_cluster_measures_what_the_local_engine_measures(splits):
    params = dask_params(test_split=in_partitions(load_params().paths.test, 3))
    model = train.fit_here(params, lightgbm(params)).model
    local = evaluate.scored_here(model, params)
    clustered = evaluate.scored_on_cluster(model, params)
    task, threshold = params.data.task, params.evaluate.decision_threshold
    assert evaluate.quality(task, clustered.y_true, clustered.predictions, threshold) == evaluate.quality(
        task, local.y_true, local.predictions, threshold
    )
    assert evaluate.plots(task, clustered.y_true, clustered.predictions) == evaluate.plots(
        task, local.y_true, local.predictions
    )
    pd.testing.assert_frame_equal(clustered.groups, local.groups)
    pd.testing.assert_frame_equal(clustered.head, local.head)
    # robustness's sample: the rows the local engine's robustness_report draws from the whole test split
    kept = evaluate.robustness_positions(
        local.y_true, params.evaluate.robustness.max_rows, params.evaluate.robustness.seed, task != "regression"
    )
    pd.testing.assert_frame_equal(clustered.robust_features, local.robust_features.iloc[kept])
    np.testing.assert_array_equal(clustered.robust_labels, local.robust_labels[kept])
