"""Does a method keep the contract? What `python -m bench check-method NAME` runs, for method
authors (and their pytest suites) before a method meets the benchmark.

Checked on a Tracr task (the compiled `tracr-reverse`) and on a small random-weight model:
one finite float per edge, the same scores for the same seed, and options resolved and
validated before any work (an unknown option is refused, the defaults pass the method's check).

>>> from bench.conformance import assert_method_conforms
>>> assert_method_conforms("eap")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

    from bench.discovery import DiscoveryRun
    from bench.task_data import TaskData

TARGETS = ("tracr-reverse", "random-model")
TRACR_EXAMPLES = 24
UNKNOWN_OPTION = "__cdbench_no_such_option__"


@dataclass(frozen=True)
class Finding:
    """One check on one target: passed or not, and what was seen."""

    target: str
    check: str
    passed: bool
    detail: str = ""

    def __str__(self) -> str:
        return f"{'ok  ' if self.passed else 'FAIL'} [{self.target}] {self.check}" + (
            f": {self.detail}" if self.detail else ""
        )


def random_model(seed: int = 0) -> HookedTransformer:
    """2 layers x 4 heads with LayerNorm, GELU MLPs and seeded random weights (biases too)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from bench.runtime import enable_edge_hooks

    config = HookedTransformerConfig(
        n_layers=2, d_model=32, n_ctx=8, d_head=8, n_heads=4, d_mlp=64, d_vocab=12,
        act_fn="gelu", normalization_type="LN", seed=seed,
    )  # fmt: skip
    model = HookedTransformer(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("b_Q", "b_K", "b_V", "b_O", "b_in", "b_out")):
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=gen))
    model.eval()
    return enable_edge_hooks(model)


def random_task_data(model: HookedTransformer, n_examples: int = 8, seed: int = 0) -> TaskData:
    """Random token pairs differing at one position; metric: logit diff of two fixed tokens."""
    from bench.task_data import TaskData

    gen = torch.Generator().manual_seed(seed)
    clean = torch.randint(2, model.cfg.d_vocab, (n_examples, 6), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 2] = (clean[:, 2] + 1) % model.cfg.d_vocab

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[..., -1, 0] - logits[..., -1, 1]

    return TaskData(clean, corrupted, metric, "logit diff token 0 - token 1")


def _target_run(target: str, ablation: str, seed: int, options: dict[str, Any]) -> DiscoveryRun:
    from bench.discovery import prepare_run
    from bench.runtime import MaskedRuntime
    from bench.zoo import load_model
    from tasks import TASKS

    if target == "random-model":
        model = random_model(seed)
        data = random_task_data(model, seed=seed)
    else:
        task = TASKS.get(target)
        model = load_model(task.model, seed=seed)
        data = task.build(model, min(TRACR_EXAMPLES, task.default_examples), seed)
    return prepare_run(MaskedRuntime(model), data, ablation, seed, options)


def _scores_problem(scores: object, n_edges: int) -> str | None:
    from bench.discovery import EdgeScores

    if not isinstance(scores, EdgeScores):
        return f"returned {type(scores).__name__}, not EdgeScores"
    values = scores.values
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != (n_edges,):
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        return f"returned scores of shape {shape} for {n_edges} edges"
    if not values.is_floating_point():
        return f"returned {values.dtype} scores, not floats"
    bad = int((~torch.isfinite(values)).sum())
    if bad:
        return f"{bad} of {n_edges} scores are not finite"
    return None


def check_method(
    name: str,
    options: dict[str, Any] | None = None,
    targets: tuple[str, ...] = TARGETS,
    ablation: str = "corrupted",
    seed: int = 0,
    progress: Callable[[Finding], None] | None = None,
) -> list[Finding]:
    """Every finding for method `name` (see the module docstring); `[f for f in ... if not f.passed]`
    are the problems. Raises UnknownNameError for a name that is not registered."""
    from methods.spec import METHODS

    spec = METHODS.get(name)
    findings: list[Finding] = []

    def record(target: str, check: str, problem: str | None) -> None:
        finding = Finding(target, check, problem is None, problem or "")
        findings.append(finding)
        if progress is not None:
            progress(finding)

    try:
        spec.resolve_options({UNKNOWN_OPTION: 1})
        record("options", "an unknown option is refused", f"accepted {UNKNOWN_OPTION!r}")
    except ValueError as err:
        record("options", "an unknown option is refused", None if UNKNOWN_OPTION in str(err) else f"message: {err}")
    try:
        resolved = spec.resolve_options(options)
        record("options", "the options resolve and pass the method's check", None)
    except Exception as err:
        record("options", "the options resolve and pass the method's check", f"{type(err).__name__}: {err}")
        return findings
    for target in targets:
        try:
            run = _target_run(target, ablation, seed, resolved)
        except Exception as err:
            record(target, "set up the run", f"{type(err).__name__}: {err}")
            continue
        outputs = []
        for attempt in ("first", "second"):
            try:
                scores = spec.func(run)
            except Exception as err:
                record(target, f"{attempt} run finishes", f"{type(err).__name__}: {err}")
                break
            problem = _scores_problem(scores, run.graph.n_edges)
            record(target, f"{attempt} run: one finite float per edge", problem)
            if problem is not None:
                break
            outputs.append(scores.values.detach().cpu().clone())
        if len(outputs) == 2:
            same = torch.equal(outputs[0], outputs[1])
            diff = (outputs[0] - outputs[1]).abs().max().item()
            record(target, "same seed, same scores", None if same else f"max difference {diff:.3g}")
    return findings


def method_problems(name: str, **kwargs: Any) -> list[str]:
    """The failed checks of `check_method`, one line each; [] when the method conforms."""
    return [str(f) for f in check_method(name, **kwargs) if not f.passed]


def assert_method_conforms(name: str, **kwargs: Any) -> None:
    """For a method author's pytest suite: AssertionError listing every failed check."""
    problems = method_problems(name, **kwargs)
    assert not problems, f"method {name!r} breaks the contract:\n" + "\n".join(problems)
