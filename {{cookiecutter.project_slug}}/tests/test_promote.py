import subprocess

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.core import Params, Task, load_params, sample_positions
from {{ cookiecutter.package_name }}.promote import next_version, prod_lineage, target_strata
from {{ cookiecutter.package_name }}.task import binary_labels


def git(*args: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", *identity, *args], check=True, capture_output=True)


def test_the_next_version_follows_the_latest_registered_one_release_candidates_included(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    git("init", "--quiet")
    git("commit", "--quiet", "--allow-empty", "-m", "first")
    assert next_version("model") == "v1.0.0"
    git("tag", "-a", "model@v1.0.0", "-m", "model v1.0.0")
    assert next_version("model") == "v1.1.0"
    git("tag", "-a", "model@v1.2.0-rc1", "-m", "model v1.2.0-rc1")
    assert next_version("model") == "v1.3.0"
    assert next_version("another") == "v1.0.0"


def test_a_rollback_returns_to_the_prod_before_and_skips_the_versions_it_undid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    git("init", "--quiet")
    assert prod_lineage("model") == []

    def release(version: str, counter: int) -> None:  # a commit registered and assigned prod, as GTO tags it
        git("commit", "--quiet", "--allow-empty", "-m", version)
        git("tag", "-a", f"model@{version}", "-m", version)
        git("tag", "-a", f"model#prod#{counter}", "-m", f"{version} to prod")

    release("v1.0.0", 1)
    release("v1.1.0", 2)
    assert prod_lineage("model") == ["v1.0.0", "v1.1.0"]  # tags of one second: the counter orders them
    git("tag", "-a", "model#prod#3", "model@v1.0.0^{commit}", "-m", "rolled back")
    assert prod_lineage("model") == ["v1.0.0"]
    release("v1.2.0", 4)
    assert prod_lineage("model") == ["v1.0.0", "v1.2.0"]


def with_task(params: Params, task: Task, positive_class: int | None = None) -> Params:
    data = params.data.model_copy(update={"task": task, "target": "risk", "positive_class": positive_class})
    return params.model_copy(update={"data": data})


def test_the_reference_is_stratified_by_class_when_classifying_and_drawn_at_random_for_a_regression(project_copy):
    params = load_params()
    train = pd.DataFrame({"risk": ["b", "a", "c", "a", "b", "a"] * 50, "age": np.arange(300.0)})
    strata = target_strata(train, with_task(params, "multiclass"))
    assert strata is not None and strata.tolist() == pd.factorize(train["risk"], sort=True)[0].tolist()
    kept = sample_positions(len(train), 60, 0, strata)
    assert train["risk"].iloc[kept].value_counts().to_dict() == {"a": 30, "b": 20, "c": 10}  # each class's share
    binary = train.assign(risk=np.tile([1, 0, 0], 100))
    binary_strata = target_strata(binary, with_task(params, "binary", positive_class=1))
    assert binary_strata is not None and np.array_equal(binary_strata, binary_labels(binary["risk"], 1))
    assert target_strata(train.assign(risk=np.arange(300.0)), with_task(params, "regression")) is None
