"""The service's canary routing: sticky by key, the configured share within sampling error, seeded without a key."""

import math
from types import SimpleNamespace
from typing import cast

import pytest

from {{ cookiecutter.package_name }}.core import PipelineError, load_params
from {{ cookiecutter.package_name }}.serve import Release, Router
from {{ cookiecutter.package_name }}.serving import ServingModel

REQUESTS = 20_000


def model(version: str) -> ServingModel:
    return cast(ServingModel, SimpleNamespace(version=version))


def router(share: float = 0.1, seed: int = 42, canary: bool = True) -> Router:
    settings = load_params().serve.model_copy(update={"canary_share": share, "routing_seed": seed})
    release = Release(model("v1.0.0"), model("v1.1.0") if canary else None)
    return Router(lambda: release, settings)


def canary_share(versions: list[str]) -> float:
    return versions.count("v1.1.0") / len(versions)


def within_sampling_error(share: float, expected: float, requests: int) -> bool:
    return abs(share - expected) <= 4 * math.sqrt(expected * (1 - expected) / requests)


@pytest.mark.parametrize("share", [0.1, 0.5])
def test_a_key_always_reaches_the_same_model_and_the_canary_gets_its_share(share):
    keys = [f"user-{number}" for number in range(REQUESTS)]
    routed, restarted, reseeded = router(share), router(share), router(share, seed=7)
    first = [routed.route(key).version for key in keys]
    assert [routed.route(key).version for key in reversed(keys)] == first[::-1]
    assert [restarted.route(key).version for key in keys] == first  # a restart changes no key's model
    assert within_sampling_error(canary_share(first), share, REQUESTS)
    assert [reseeded.route(key).version for key in keys] != first  # the seed decides the split


def test_requests_without_a_key_are_drawn_from_the_seed():
    routed = router()
    draws = [routed.route(None).version for _ in range(REQUESTS)]
    again = router()
    assert [again.route(None).version for _ in range(REQUESTS)] == draws
    assert within_sampling_error(canary_share(draws), 0.1, REQUESTS)
    assert len(set(draws[:100])) == 2  # not one model for a run of requests, then the other


def test_without_a_canary_prod_answers_everything_and_no_share_reaches_a_canary():
    routed = router(share=1.0, canary=False)
    assert {routed.route(key).version for key in ("a", "b", None)} == {"v1.0.0"}
    never = router(share=0.0)
    assert {never.route(f"user-{number}").version for number in range(1000)} == {"v1.0.0"}


def test_a_refused_reload_keeps_the_release_that_answers():
    routed = router()
    before = routed.release

    def refuse(_release: Release) -> None:
        raise PipelineError("the new models need columns ['income']")

    with pytest.raises(PipelineError, match="income"):
        routed.reload(refuse)
    assert routed.release is before
    assert routed.reload(lambda _release: None).prod.version == "v1.0.0"
