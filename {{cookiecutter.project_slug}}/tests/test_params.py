import pytest

from {{ cookiecutter.package_name }}.errors import PipelineError
from {{ cookiecutter.package_name }}.params import param

PARAMS = {"split": {"seed": 42}, "gate": {"fairness": {}}}


def test_a_value_is_found_by_its_dotted_key():
    assert param(PARAMS, "split.seed") == 42


@pytest.mark.parametrize(
    "lookup",
    [
        lambda: param(PARAMS, "gate.fairness.max_gap"),
        lambda: param(PARAMS, "gate.fairness")["max_gap"],
        lambda: param(PARAMS, "gate")["fairness"]["max_gap"],
    ],
    ids=["dotted", "section", "nested-section"],
)
def test_a_missing_key_is_an_error_naming_the_whole_key(lookup):
    with pytest.raises(PipelineError, match=r"params.yaml has no key 'gate.fairness.max_gap'"):
        lookup()
