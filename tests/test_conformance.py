"""The conformance check: it passes the built-in methods and names each way a method can break
the contract (wrong shape, non-finite scores, unseeded randomness, a crash, bad options)."""

from __future__ import annotations

import pytest
import torch

import methods.spec
from bench.conformance import assert_method_conforms, check_method, method_problems, random_model, random_task_data
from bench.discovery import EdgeScores
from bench.registry import Registry
from methods.spec import MethodSpec


@pytest.fixture
def bad_methods(monkeypatch: pytest.MonkeyPatch) -> Registry[MethodSpec]:
    """A registry of methods that each break the contract one way (and one that keeps it)."""
    registry: Registry[MethodSpec] = Registry("method")

    def add(name: str, func, **kwargs) -> None:
        registry.add(name, MethodSpec(name, func, name, "test", **kwargs))

    add("good", lambda run: EdgeScores(torch.arange(run.graph.n_edges, dtype=torch.float32)))
    add("short", lambda run: EdgeScores(torch.zeros(run.graph.n_edges - 1)))
    add("nan", lambda run: EdgeScores(torch.full((run.graph.n_edges,), float("nan"))))
    add("ints", lambda run: EdgeScores(torch.zeros(run.graph.n_edges, dtype=torch.long)))
    add("unseeded", lambda run: EdgeScores(torch.rand(run.graph.n_edges)))
    add("crash", lambda run: 1 / 0)
    add("not-scores", lambda run: [0.0] * run.graph.n_edges)

    def positive(options: dict[str, object]) -> None:
        if float(options["k"]) <= 0:  # type: ignore[arg-type]
            raise ValueError(f"k must be positive, got {options['k']!r}")

    add("checked", lambda run: EdgeScores(torch.ones(run.graph.n_edges)), defaults={"k": 1}, check=positive)
    monkeypatch.setattr(methods.spec, "METHODS", registry)
    return registry


def _problems(name: str, **kwargs) -> list[str]:
    return method_problems(name, targets=("random-model",), **kwargs)


def test_a_conforming_method_has_no_problems(bad_methods: Registry[MethodSpec]) -> None:
    findings = check_method("good", targets=("random-model",))
    assert [f.check for f in findings] == [
        "an unknown option is refused",
        "the options resolve and pass the method's check",
        "first run: one finite float per edge",
        "second run: one finite float per edge",
        "same seed, same scores",
    ]
    assert all(f.passed for f in findings)
    assert_method_conforms("good", targets=("random-model",))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("short", "returned scores of shape (109,) for 110 edges"),
        ("nan", "110 of 110 scores are not finite"),
        ("ints", "returned torch.int64 scores, not floats"),
        ("unseeded", "same seed, same scores: max difference"),
        ("crash", "first run finishes: ZeroDivisionError: division by zero"),
        ("not-scores", "returned list, not EdgeScores"),
    ],
)
def test_each_broken_contract_is_named(bad_methods: Registry[MethodSpec], name: str, expected: str) -> None:
    problems = _problems(name)
    assert len(problems) == 1 and expected in problems[0], problems
    with pytest.raises(AssertionError, match=f"method '{name}' breaks the contract"):
        assert_method_conforms(name, targets=("random-model",))


def test_options_are_validated_before_any_run(bad_methods: Registry[MethodSpec]) -> None:
    assert _problems("checked", options={"k": 2}) == []
    (problem,) = _problems("checked", options={"k": -1})
    assert "k must be positive, got -1" in problem
    (problem,) = _problems("checked", options={"kk": 1})
    assert "has no option 'kk'; valid choices: k" in problem


def test_random_target_is_a_real_task_for_the_model() -> None:
    """The metric moves between clean and corrupted runs, so a method has something to find."""
    model = random_model()
    data = random_task_data(model)
    with torch.no_grad():
        clean = data.metric(model(data.clean)).mean()
        corrupted = data.metric(model(data.corrupted)).mean()
    assert abs(clean - corrupted) > 1e-4


@pytest.mark.parametrize("name", ["eap", "exact-patching", "random"])
def test_built_in_methods_conform_on_tracr_and_a_random_model(name: str) -> None:
    assert_method_conforms(name)
