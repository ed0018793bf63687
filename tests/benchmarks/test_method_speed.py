"""Speed and memory of each method on a random-initialised GPT-2 small (all 32,491 edges),
with the bare work each method cannot avoid timed in the same run, and their ratio.

    python -m pytest tests/benchmarks --benchmark-only

The model, batch and sequence length can be changed with CDBENCH_BENCH_MODEL,
CDBENCH_BENCH_BATCH and CDBENCH_BENCH_POS (the default test run uses a small setting to
check that this file still works).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from bench.discovery import DiscoveryRun, prepare_run
from bench.profiling import fastest, measure
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from methods import score_edges
from methods.eap_gp import eap_gp
from methods.eap_ig import frozen_group_scores
from methods.exact_patching import patch_effects
from tasks.base import TaskData

MODEL = os.environ.get("CDBENCH_BENCH_MODEL", "random:gpt2")
BATCH = int(os.environ.get("CDBENCH_BENCH_BATCH", "32"))
POS = int(os.environ.get("CDBENCH_BENCH_POS", "16"))
STEPS = 5
EXACT_EDGES = 64
torch.set_grad_enabled(True)


@dataclass(frozen=True)
class Bare:
    """Seconds of the plain model's unavoidable work (best of two)."""

    forward: float  # one forward, no gradients
    forward_backward: float  # one forward and one backward to the input embedding, no weight gradients


def best_of(fn: Callable[[], object], repeats: int = 2) -> float:
    fn()  # warm-up: first calls pay for allocation and lazy initialisation
    return fastest(fn, repeats)[0]


@pytest.fixture(scope="module")
def run() -> DiscoveryRun:
    model = load_model(MODEL)
    gen = torch.Generator().manual_seed(0)
    vocab = model.cfg.d_vocab
    clean = torch.randint(0, vocab, (BATCH, POS), generator=gen)
    corrupt = torch.randint(0, vocab, (BATCH, POS), generator=gen)
    answer, distractor = torch.randint(0, vocab, (2,), generator=gen).tolist()

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[..., -1, answer] - logits[..., -1, distractor]

    data = TaskData(clean, corrupt, metric, "logit diff")
    return prepare_run(MaskedRuntime(model), data, "corrupted", options={"steps": STEPS})


@pytest.fixture(scope="module")
def bare(run: DiscoveryRun) -> Bare:
    model, clean = run.runtime.model, run.data.clean

    @torch.no_grad()
    def forward() -> None:
        model(clean)

    def forward_backward() -> None:  # the runtime froze the weights: activation gradients only
        embedding = run.runtime.input_embedding(clean).requires_grad_(True)
        run.objective(run.runtime.forward_from_embedding(clean, embedding)).backward()

    return Bare(best_of(forward), best_of(forward_backward))


def report(benchmark, name: str, work: Callable[[], object], bare: dict[str, float], **extra: object) -> None:
    """Time `work` once under pytest-benchmark, measure its peak memory, and record its
    ratio to each bare cost in `bare` (label -> seconds; the first is the target's).
    The memory run comes first and doubles as the warm-up."""
    measured = measure(work)
    benchmark.pedantic(work, rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    ratios = {label: seconds / cost for label, cost in bare.items()}
    benchmark.extra_info.update({"bare_s": bare, "ratios": ratios, "peak_extra_mb": measured.peak_extra_mb, **extra})
    parts = [f"{seconds:.2f}s"]
    parts += [f"{ratios[label]:.2f}x of bare {label} ({cost:.2f}s)" for label, cost in bare.items()]
    parts.append(f"peak extra memory {measured.peak_extra_mb:.0f} MB")
    parts += [f"{key} {value}" for key, value in extra.items()]
    print(f"\n[{MODEL} batch {BATCH} pos {POS}] {name}: " + ", ".join(parts))


def test_masked_forward_all_ones(benchmark, run: DiscoveryRun, bare: Bare) -> None:
    mask = run.graph.mask()

    @torch.no_grad()
    def work() -> None:
        run.runtime.forward(run.data.clean, mask, run.ablated)

    report(benchmark, "masked forward (all ones)", work, {"1 forward": bare.forward})


def test_eap(benchmark, run: DiscoveryRun, bare: Bare) -> None:
    cost = bare.forward + bare.forward_backward
    report(benchmark, "eap", lambda: score_edges("eap", run), {"2 fwd + 1 bwd": cost})


def test_eap_ig_inputs(benchmark, run: DiscoveryRun, bare: Bare) -> None:
    cost = {f"{STEPS} x (fwd+bwd)": STEPS * bare.forward_backward}
    report(benchmark, "eap-ig-inputs", lambda: score_edges("eap-ig-inputs", run), cost)


def test_eap_gp(benchmark, run: DiscoveryRun, bare: Bare) -> None:
    # The path's direction (output distance) and the attribution (task metric) need a
    # backward each; a point's forward serves both: STEPS + 1 forwards, 2 x STEPS backwards.
    backward = bare.forward_backward - bare.forward
    cost = {
        f"{STEPS + 1} fwd + {2 * STEPS} bwd": (STEPS + 1) * bare.forward + 2 * STEPS * backward,
        f"{STEPS} x (fwd+bwd)": STEPS * bare.forward_backward,
    }
    report(benchmark, "eap-gp", lambda: eap_gp(run), cost)


def test_eap_ig_activations_one_group(benchmark, run: DiscoveryRun, bare: Bare) -> None:
    """One source group (a middle layer's heads); the method runs every group in turn."""
    groups = run.graph.source_groups
    group = groups[len(groups) // 2]
    cost = {f"{STEPS} x (fwd+bwd)": STEPS * bare.forward_backward}
    deltas = run.runtime.deltas(run.data.clean, run.ablated)
    work = lambda: frozen_group_scores(run, group, STEPS, deltas)  # noqa: E731
    report(benchmark, "eap-ig-activations (one group)", work, cost, groups=len(groups))


def test_exact_patching_per_edge(benchmark, run: DiscoveryRun, bare: Bare) -> None:
    """The first EXACT_EDGES edges; the method runs all of them, batched the same way."""
    edge_ids = torch.arange(EXACT_EDGES)
    work = lambda: patch_effects(run, edge_ids)  # noqa: E731
    cost = {f"{EXACT_EDGES} forwards": EXACT_EDGES * bare.forward}
    extra = {"edges_total": run.graph.n_edges, "masks_per_forward": run.masks_per_forward()}
    report(benchmark, f"exact-patching ({EXACT_EDGES} edges)", work, cost, **extra)


def test_random(benchmark, run: DiscoveryRun, bare: Bare) -> None:
    report(benchmark, "random", lambda: score_edges("random", run), {"1 forward": bare.forward})
