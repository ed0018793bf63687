"""Speed and memory of each method's whole run on a random-initialised GPT-2 small (all
32,491 edges), against the bare floor of the passes the method cannot avoid, timed in the
same process.

    python -m pytest tests/benchmarks/test_method_speed.py --benchmark-only -s

The whole run is what a user waits for: `prepare_run` plus the method on a fresh run, so it
pays for every shared pass the method reads (the ablated run, the full model's logits); the
scoring of the method's output is not part of it. The method-only figure runs the method on
a run whose shared passes are already computed (as when several methods share one run).
The floor is the same number of plain TransformerLens passes on the same batch: forwards
without gradients, and forwards with a backward to the input embedding (weights frozen, as
in the runtime). Times are medians of CDBENCH_BENCH_ROUNDS calls (default 3) after a first
call that measures the peak memory.

The model, batch and sequence length can be changed with CDBENCH_BENCH_MODEL,
CDBENCH_BENCH_BATCH and CDBENCH_BENCH_POS (the default test run uses a small setting to
check that this file still works).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from bench.discovery import DiscoveryRun, prepare_run
from bench.profiling import measure, median_time
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from methods import score_edges
from methods.eap_ig import frozen_group_scores, group_scores
from methods.exact_patching import patch_effects
from tasks.base import TaskData

MODEL = os.environ.get("CDBENCH_BENCH_MODEL", "random:gpt2")
BATCH = int(os.environ.get("CDBENCH_BENCH_BATCH", "8"))
POS = int(os.environ.get("CDBENCH_BENCH_POS", "16"))
ROUNDS = int(os.environ.get("CDBENCH_BENCH_ROUNDS", "3"))
STEPS = 5
EXACT_EDGES = 32
torch.set_grad_enabled(True)


@dataclass(frozen=True)
class Bare:
    """Seconds of plain passes on the benchmark's batch (medians, after a warm-up)."""

    forward: float  # one forward, no gradients
    forward_backward: float  # one forward and one backward to the input embedding, no weight gradients

    @property
    def backward(self) -> float:
        return max(self.forward_backward - self.forward, 0.0)

    def cost(self, forwards: int = 0, forward_backwards: int = 0, backwards: int = 0) -> float:
        return forwards * self.forward + forward_backwards * self.forward_backward + backwards * self.backward


@dataclass(frozen=True)
class Setting:
    runtime: MaskedRuntime
    data: TaskData

    def fresh(self) -> DiscoveryRun:
        """A run as `bench run` builds it: nothing computed yet."""
        return prepare_run(self.runtime, self.data, "corrupted", options={"steps": STEPS})

    def ready(self) -> DiscoveryRun:
        """A run whose shared passes are computed (for the method-only figure)."""
        run = self.fresh()
        run.ablated, run.full_logits  # noqa: B018
        return run


@pytest.fixture(scope="module")
def setting() -> Setting:
    model = load_model(MODEL)
    gen = torch.Generator().manual_seed(0)
    vocab = model.cfg.d_vocab
    clean = torch.randint(0, vocab, (BATCH, POS), generator=gen)
    corrupt = torch.randint(0, vocab, (BATCH, POS), generator=gen)
    answer, distractor = torch.randint(0, vocab, (2,), generator=gen).tolist()

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[..., -1, answer] - logits[..., -1, distractor]

    return Setting(MaskedRuntime(model), TaskData(clean, corrupt, metric, "logit diff"))


def bare_passes(model: torch.nn.Module, tokens: torch.Tensor, objective: Callable) -> Bare:
    """Plain TransformerLens passes, no CDBench code in the timed calls."""

    @torch.no_grad()
    def forward() -> None:
        model(tokens)

    embedding = model(tokens, stop_at_layer=0).detach()

    def forward_backward() -> None:
        leaf = embedding.clone().requires_grad_(True)
        objective(model(leaf, start_at_layer=0)).backward()

    forward(), forward_backward()  # warm-up: first calls pay for allocation and lazy initialisation
    return Bare(median_time(forward, ROUNDS), median_time(forward_backward, ROUNDS))


@pytest.fixture(scope="module")
def bare(setting: Setting) -> Bare:
    run = setting.fresh()
    return bare_passes(setting.runtime.model, setting.data.clean, run.objective)


def report(
    benchmark,
    setting: Setting,
    name: str,
    method: Callable[[DiscoveryRun], object],
    floors: dict[str, float],
    **extra: object,
) -> dict[str, float]:
    """Time the whole run (fresh `prepare_run` + `method`) under pytest-benchmark and the
    method alone on a prepared run; print both against each floor in `floors` (label ->
    seconds; the first is the target's). A first call of each measures its peak memory."""
    whole = lambda: method(setting.fresh())  # noqa: E731
    memory = measure(whole).peak_extra_mb
    benchmark.pedantic(whole, rounds=ROUNDS, iterations=1)
    whole_s = benchmark.stats.stats.median
    ready = setting.ready()
    method_memory = measure(lambda: method(ready)).peak_extra_mb
    method_s = median_time(lambda: method(ready), ROUNDS)
    ratios = {label: whole_s / cost for label, cost in floors.items()}
    method_ratios = {label: method_s / cost for label, cost in floors.items()}
    benchmark.extra_info.update(
        {
            "whole_run_s": whole_s,
            "method_only_s": method_s,
            "floor_s": floors,
            "whole_run_ratios": ratios,
            "method_only_ratios": method_ratios,
            "peak_extra_mb": memory,
            "method_only_peak_extra_mb": method_memory,
            "threads": torch.get_num_threads(),
            **extra,
        }
    )
    parts = [f"whole run {whole_s:.2f}s, method only {method_s:.2f}s"]
    parts += [
        f"whole {ratios[label]:.2f}x / method {method_ratios[label]:.2f}x of floor {label} ({cost:.2f}s)"
        for label, cost in floors.items()
    ]
    parts.append(f"peak extra memory {memory:.0f} MB whole run, {method_memory:.0f} MB method only")
    parts += [f"{key} {value}" for key, value in extra.items()]
    print(
        f"\n[{MODEL} batch {BATCH} pos {POS}, {torch.get_num_threads()} threads, median of {ROUNDS}] {name}: "
        + "; ".join(parts)
    )
    return ratios


def test_masked_forward_all_ones(benchmark, setting: Setting, bare: Bare) -> None:
    @torch.no_grad()
    def work(run: DiscoveryRun) -> None:
        run.runtime.forward(run.data.clean, run.graph.mask(), run.ablated)

    report(benchmark, setting, "masked forward (all ones)", work, {"2 fwd": bare.cost(forwards=2)})


def test_eap(benchmark, setting: Setting, bare: Bare) -> None:
    floor = {"ablated fwd + clean fwd+bwd": bare.cost(forwards=1, forward_backwards=1)}
    report(benchmark, setting, "eap", lambda run: score_edges("eap", run), floor)


def test_eap_ig_inputs(benchmark, setting: Setting, bare: Bare) -> None:
    floors = {
        f"2 fwd + {STEPS} x (fwd+bwd)": bare.cost(forwards=2, forward_backwards=STEPS),
        f"{STEPS} x (fwd+bwd)": bare.cost(forward_backwards=STEPS),
    }
    report(benchmark, setting, "eap-ig-inputs", lambda run: score_edges("eap-ig-inputs", run), floors)


def test_eap_gp(benchmark, setting: Setting, bare: Bare) -> None:
    # The ablated run, the path's target (from the ablated embedding) and the clean deltas are
    # one forward each; the path's direction (output distance) and the attribution (task
    # metric) need a backward each, and a point's forward serves both: STEPS + 1 forwards and
    # 2 x STEPS backwards.
    floors = {
        f"{STEPS + 4} fwd + {2 * STEPS} bwd": bare.cost(forwards=STEPS + 4, backwards=2 * STEPS),
        f"{STEPS} x (fwd+bwd)": bare.cost(forward_backwards=STEPS),
    }
    report(benchmark, setting, "eap-gp", lambda run: score_edges("eap-gp", run), floors)


@pytest.mark.parametrize("rule", ["library", "per-group"])
def test_eap_ig_activations_one_group(benchmark, setting: Setting, bare: Bare, rule: str) -> None:
    """One source group (a middle layer's heads); the method runs every group in turn, and
    pays the ablated run and the clean deltas once for all of them."""
    groups = setting.runtime.graph.source_groups
    group = groups[len(groups) // 2]

    def work(run: DiscoveryRun) -> None:
        deltas = run.runtime.deltas(run.data.clean, run.ablated)
        if rule == "library":
            frozen_group_scores(run, group, STEPS, deltas)
        else:
            group_scores(run, group, STEPS, deltas)

    floor = {f"2 fwd + {STEPS} x (fwd+bwd)": bare.cost(forwards=2, forward_backwards=STEPS)}
    report(
        benchmark,
        setting,
        f"eap-ig-activations{'' if rule == 'library' else '-per-group'} (one group)",
        work,
        floor,
        groups=len(groups),
    )


def test_exact_patching(benchmark, setting: Setting, bare: Bare) -> None:
    """The first EXACT_EDGES edges; the method runs all of them, batched the same way. The
    floor is the ablated run plus one forward per stacked batch (the full circuit's and each
    chunk's), each as long as the stacked batch."""
    edge_ids = torch.arange(EXACT_EDGES)
    per_forward = setting.fresh().masks_per_forward()
    chunks = math.ceil(EXACT_EDGES / per_forward)
    model, clean = setting.runtime.model, setting.data.clean
    stacked = bare_passes(model, clean.repeat(per_forward, 1), lambda x: x.sum()).forward if per_forward > 1 else None
    per_chunk = stacked if stacked is not None else bare.forward
    floor = {f"{chunks + 2} fwd of stacked batches": bare.cost(forwards=2) + chunks * per_chunk}
    report(
        benchmark,
        setting,
        f"exact-patching ({EXACT_EDGES} edges)",
        lambda run: patch_effects(run, edge_ids),
        floor,
        edges_total=setting.runtime.graph.n_edges,
        masks_per_forward=per_forward,
    )


def test_hisp(benchmark, setting: Setting, bare: Bare) -> None:
    floor = {"ablated fwd + clean fwd+bwd": bare.cost(forwards=1, forward_backwards=1)}
    report(benchmark, setting, "hisp", lambda run: score_edges("hisp", run), floor)


def test_random(benchmark, setting: Setting, bare: Bare) -> None:
    floor = {"1 fwd (reference scale; random runs none)": bare.cost(forwards=1)}
    report(benchmark, setting, "random", lambda run: score_edges("random", run), floor)
