"""train.search: candidates from the space, scored by cross-validation on local processes or a Dask cluster."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.model_selection import GridSearchCV, ParameterSampler

from {{ cookiecutter.package_name }} import search
from {{ cookiecutter.package_name }}.compute import dask_client
from {{ cookiecutter.package_name }}.core import MAIN_METRIC, Compute, PipelineError, Train, load_params, write_parquet
from {{ cookiecutter.package_name }}.search import (
    candidate_model,
    candidate_overrides,
    cross_validation,
    fold_scores,
    ranked_table,
    rows_at,
    tuned,
    with_overrides,
)

PROJECT = Path(__file__).resolve().parents[1]
LOCAL = Compute(engine="local", scheduler="", partition_size="64MB", local_workers=2, worker_memory="1GB")
DASK = LOCAL.model_copy(update={"engine": "dask"})


def shipped_train(**search: object) -> Train:
    """The project's train settings with train.search's keys replaced."""
    settings = load_params(PROJECT / "params.yaml").train
    return settings.model_copy(update={"search": settings.search.model_copy(update=search)})


def binary_data(rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=rows),
            "age": rng.uniform(20, 70, size=rows),
            "colour": pd.Categorical(rng.choice(["red", "blue", "green"], size=rows)),
        }
    )
    noise = rng.normal(scale=1.0, size=rows)
    signal = frame["amount"] + 0.05 * (frame["age"] - 45) + (frame["colour"] == "red") + noise
    return frame, (signal > 0).to_numpy(dtype=int)


def as_pipeline_grid(space: dict) -> dict:
    """`<estimator>.<name>` keys as the Pipeline's `estimator__<name>` (the `estimator` key left out)."""
    return {f"estimator__{key.split('.')[1]}": values for key, values in space.items() if "." in key}


def models_of(overrides, settings, frame):
    return [candidate_model(with_overrides(settings, candidate), frame, "target", "binary") for candidate in overrides]


def test_a_grid_scores_each_candidate_as_scikit_learns_grid_search_on_the_same_folds():
    space = {
        "estimator": ["hist_gradient_boosting"],
        "hist_gradient_boosting.learning_rate": [0.02, 0.3],
        "hist_gradient_boosting.max_leaf_nodes": [3, 15],
    }
    settings = shipped_train(method="grid", space=space)
    frame, labels = binary_data()
    overrides = candidate_overrides(settings)
    assert len(overrides) == 4
    scores = fold_scores(models_of(overrides, settings, frame), frame, labels, "binary", 3, 7, LOCAL)
    table = ranked_table(overrides, scores)

    base, _ = models_of([{"estimator": "hist_gradient_boosting"}], settings, frame)[0]
    folds = cross_validation("binary", 3, 7)
    expected = GridSearchCV(base, as_pipeline_grid(space), scoring=MAIN_METRIC["binary"], cv=folds).fit(frame, labels)
    assert np.allclose(scores.mean(axis=1), expected.cv_results_["mean_test_score"], atol=1e-6)
    best = overrides[table[0]["candidate"] - 1]
    assert as_pipeline_grid(best) == expected.best_params_
    assert [row["rank"] for row in table] == sorted(row["rank"] for row in table)


def test_equal_scores_share_a_rank_and_the_first_candidate_wins():
    scores = np.array([[0.5, 0.7], [0.8, 0.8], [0.6, 0.6], [0.8, 0.8]])
    overrides = [{"ridge.alpha": value} for value in (1, 2, 3, 4)]
    table = ranked_table(overrides, scores)
    assert [(row["rank"], row["candidate"]) for row in table] == [(1, 2), (1, 4), (3, 1), (3, 3)]
    assert table[0]["params"] == "ridge.alpha=2"


def test_random_draws_are_seeded_and_never_repeat_a_candidate():
    space = {"ridge.alpha": [0.1, 1.0, 10.0, 100.0], "seed": [1, 2, 3]}
    settings = shipped_train(method="random", space=space, candidates=5, seed=11)
    drawn = candidate_overrides(settings)
    assert drawn == candidate_overrides(settings) == list(ParameterSampler(space, n_iter=5, random_state=11))
    assert drawn != candidate_overrides(shipped_train(method="random", space=space, candidates=5, seed=12))
    every = candidate_overrides(shipped_train(method="random", space=space, candidates=50, seed=11))
    assert len(every) == 12 and len({json.dumps(one, sort_keys=True) for one in every}) == 12


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"learning_curve.folds": [2, 3]}, "['learning_curve.folds'] are not train keys a search can vary"),
        ({"ridge.alpha.max": [1]}, "['ridge.alpha.max'] are not train keys a search can vary"),
        ({"xgboost.depth": [1]}, "['xgboost.depth'] are not train keys a search can vary"),
    ],
)
def test_a_key_that_is_not_a_train_key_is_refused_in_one_line(tmp_path, space, message):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["train"]["search"]["space"] = space
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError) as raised:
        load_params(tmp_path / "params.yaml")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_dask_engine_refuses_a_search_over_estimators_it_cannot_train(tmp_path):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["compute"]["engine"] = "dask"
    params["train"]["estimator"] = "lightgbm"
    params["train"]["search"].update(method="grid", space={"estimator": ["lightgbm", "random_forest"]})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError) as raised:
        load_params(tmp_path / "params.yaml")
    assert "train.search.space.estimator also tries ['random_forest']" in str(raised.value)
    assert "\n" not in str(raised.value)
    params["train"]["search"]["space"] = {"estimator": ["lightgbm"], "lightgbm.num_leaves": [7, 15]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert load_params(tmp_path / "params.yaml").train.search.method == "grid"


def test_a_candidate_with_a_wrong_value_or_hyper_parameter_is_refused_before_any_fit():
    settings = shipped_train(method="grid")
    with pytest.raises(PipelineError, match=r"candidate \{'estimator': 'xgboost'\}, whose 'train.estimator' is"):
        with_overrides(settings, {"estimator": "xgboost"})
    wrong = with_overrides(settings, {"estimator": "hist_gradient_boosting", "hist_gradient_boosting.depth": 3})
    with pytest.raises(PipelineError, match=r"train.hist_gradient_boosting has unknown hyper-parameters \['depth'\]"):
        candidate_model(wrong, binary_data()[0], "target", "binary")


def test_the_dask_backend_on_a_local_cluster_gives_the_same_table_as_local_processes(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    transitions = []  # the scheduler's count once the jobs are done: they ran there, not in this process

    @contextmanager
    def counted(settings: Compute) -> Iterator[Any]:
        with dask_client(settings) as client:
            yield client
            transitions.append(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter))

    monkeypatch.setattr(search, "dask_client", counted)
    space = {"estimator": ["logistic_regression"], "logistic_regression.C": [0.01, 1.0]}
    settings = shipped_train(method="grid", space=space)
    frame, labels = binary_data(200)
    overrides = candidate_overrides(settings)
    models = models_of(overrides, settings, frame)
    on_processes = ranked_table(overrides, fold_scores(models, frame, labels, "binary", 3, 7, LOCAL))
    on_dask = ranked_table(overrides, fold_scores(models, frame, labels, "binary", 3, 7, DASK))
    assert on_dask == on_processes
    assert len(transitions) == 1 and transitions[0] >= len(overrides) * 3


def test_rows_at_reads_the_same_rows_from_a_file_or_from_partitions(tmp_path):
    frame = binary_data(50)[0]
    write_parquet(frame, tmp_path / "one.parquet")
    for number, (start, stop) in enumerate([(0, 20), (20, 35), (35, 50)]):
        write_parquet(frame.iloc[start:stop], tmp_path / "parts" / f"part.{number}.parquet")
    positions = np.array([0, 19, 20, 34, 35, 49])
    expected = frame.iloc[positions].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows_at(tmp_path / "one.parquet", positions), expected)
    pd.testing.assert_frame_equal(rows_at(tmp_path / "parts", positions), expected)


def test_train_uses_the_best_candidate_and_writes_the_table(project_copy):
    from {{ cookiecutter.package_name }}.preprocess import main as preprocess

    preprocess()
    params = yaml.safe_load(Path("params.yaml").read_text())
    estimator = params["train"]["estimator"]
    name, values = {
        "hist_gradient_boosting": ("max_leaf_nodes", [3, 7]),
        "logistic_regression": ("C", [0.01, 1.0]),
        "ridge": ("alpha", [0.1, 100.0]),
    }[estimator]
    params["train"]["search"].update(method="grid", space={f"{estimator}.{name}": values}, max_rows=120)
    Path("params.yaml").write_text(yaml.safe_dump(params))

    settings = tuned(load_params(), progress=lambda line: None)
    summary = json.loads(Path("metrics/search.json").read_text())
    table = json.loads(Path("plots/search.json").read_text())
    assert summary["candidates"] == len(table) == 2 and summary["sample_rows"] == 120
    assert summary["best_params"] == {f"{estimator}.{name}": settings.hyperparameters[name]}
    assert summary["best_score"] == table[0]["mean_score"] >= table[1]["mean_score"]

    params["train"]["search"]["method"] = "none"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert tuned(load_params()) == load_params().train
    assert json.loads(Path("metrics/search.json").read_text())["candidates"] == 0
    assert json.loads(Path("plots/search.json").read_text()) == []


def test_a_candidate_excluding_a_column_the_contract_lacks_is_refused_before_reading_data(project_copy):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["train"]["search"].update(method="grid", space={"exclude_columns": [[], ["income_typo"]]})
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError, match=r"'train.exclude_columns' names \['income_typo'\], not columns of"):
        tuned(load_params())
    assert not Path("metrics/search.json").exists()
