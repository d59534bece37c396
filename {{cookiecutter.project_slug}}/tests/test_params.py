from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.core import PipelineError, load_params
from {{ cookiecutter.package_name }}.schema import check_params, load_schema

PROJECT = Path(__file__).resolve().parents[1]
DEFAULTS = yaml.safe_load((PROJECT / "params.yaml").read_text())


def write_params(tmp_path: Path, dotted_key: str, value: object) -> Path:
    """The project's params.yaml with one key set (or removed, for value ...), written to tmp_path."""
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    *parents, last = dotted_key.split(".")
    node = params
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_the_shipped_params_are_valid_and_typed():
    params = load_params(PROJECT / "params.yaml")
    assert params.split.test_size == DEFAULTS["split"]["test_size"]
    assert params.paths.contract == Path(DEFAULTS["paths"]["schema"])
    assert params.train.hyperparameters == DEFAULTS["train"][DEFAULTS["train"]["estimator"]]
    check_params(params, load_schema(PROJECT / "schema.yaml"))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("split.test_size", "abc", "'split.test_size' is 'abc': Input should be a valid number"),
        ("split.test_size", 1.5, "'split.test_size' is 1.5: Input should be less than 1"),
        ("train.estimator", "xgboost", "'train.estimator' is 'xgboost': Input should be 'hist_gradient_boosting'"),
        ("evaluate.decision_threshold", -0.1, "'evaluate.decision_threshold' is -0.1: Input should be greater"),
        ("validate.psi_bins", 1, "'validate.psi_bins' is 1: Input should be greater than or equal to 2"),
        ("gate.fairness.max_gap", ..., "'gate.fairness.max_gap' is missing: add it"),
        ("gate.performance.f1_minimum", 0.8, "threshold keys are <metric>_min or <metric>_max"),
        ("train.learning_curve.folds", 1.5, "'train.learning_curve.folds' is 1.5"),
        ("trian", {"seed": 1}, "'trian' is not a known key"),
        ("data.task", "ranking", "'data.task' is 'ranking': Input should be 'binary', 'multiclass' or 'regression'"),
{%- if cookiecutter.task == "binary" %}
        ("data.positive_class", ..., "a binary task needs data.positive_class"),
{%- else %}
        ("data.positive_class", 1, "data.positive_class is for binary tasks; remove it for data.task: {{ cookiecutter.task }}"),
{%- endif %}
    ],
)
def test_a_wrong_param_is_one_line_naming_key_value_and_what_is_allowed(tmp_path, key, value, message):
    with pytest.raises(PipelineError) as raised:
        load_params(write_params(tmp_path, key, value))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("data.target", "outcome", "'data.target' names ['outcome'], not columns of"),
        ("evaluate.fairness.sensitive", ["gender"], "'evaluate.fairness.sensitive' names ['gender']"),
{%- if cookiecutter.task == "binary" %}
        ("data.positive_class", 7, "'data.positive_class' is 7, not one of the allowed values [0, 1]"),
{%- endif %}
    ],
)
def test_params_that_name_columns_or_labels_must_match_the_contract(tmp_path, key, value, message):
    params = load_params(write_params(tmp_path, key, value))
    with pytest.raises(PipelineError) as raised:
        check_params(params, load_schema(PROJECT / "schema.yaml"))
    assert message in str(raised.value)


def test_params_that_are_not_a_mapping_are_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(PipelineError, match="must hold a mapping"):
        load_params(path)
