"""Speed of ACDC's batched engine against the one-edge-per-forward reference, same run:
one tau, the default tau grid the method scores with, and that grid tau by tau.

    python -m pytest tests/benchmarks/test_acdc_speed.py --benchmark-only -s

A random-initialised 4-layer, 8-head model (d_model 64, 1,519 edges) with the KL objective.
Environment: CDBENCH_ACDC_BATCH, CDBENCH_ACDC_POS and CDBENCH_ACDC_TAU set the examples, the
sequence length and tau; CDBENCH_ACDC_ROUNDS the timed calls per engine (best of, default
3); CDBENCH_ACDC_THREADS the torch threads (default 1: on a busy 2-core machine a second
thread made these small forwards up to 30x slower and the timings meaningless).
Both engines take the same decisions (checked here); the ratio of their wall times is the
speed-up.
"""

from __future__ import annotations

import os

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from bench.discovery import DiscoveryRun, prepare_run
from bench.profiling import fastest, measure
from bench.runtime import MaskedRuntime, enable_edge_hooks
from methods.acdc import DEFAULT_TAUS, acdc_sweep
from tasks.base import TaskData

BATCH = int(os.environ.get("CDBENCH_ACDC_BATCH", "2"))
POS = int(os.environ.get("CDBENCH_ACDC_POS", "8"))
TAU = float(os.environ.get("CDBENCH_ACDC_TAU", "1e-3"))
THREADS = int(os.environ.get("CDBENCH_ACDC_THREADS", "1"))
ROUNDS = int(os.environ.get("CDBENCH_ACDC_ROUNDS", "3"))


@pytest.fixture(autouse=True)
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run() -> DiscoveryRun:
    cfg = HookedTransformerConfig(
        n_layers=4, d_model=64, n_heads=8, d_head=8, d_mlp=256, d_vocab=100, n_ctx=32, act_fn="gelu", seed=0
    )
    model = enable_edge_hooks(HookedTransformer(cfg).eval())
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, cfg.d_vocab, (BATCH, POS), generator=gen)
    corrupt = torch.randint(0, cfg.d_vocab, (BATCH, POS), generator=gen)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[..., -1, 3] - logits[..., -1, 5]

    return prepare_run(MaskedRuntime(model), TaskData(clean, corrupt, metric, "logit diff"), "corrupted")


@pytest.mark.parametrize("grid", ["one tau", "default grid"])
def test_acdc_batched_vs_one_edge_per_forward(benchmark, run: DiscoveryRun, grid: str) -> None:
    """Both engines timed bare, best of ROUNDS, in the same run (the batched one also under
    pytest-benchmark); then one more call each under `measure` for the peak memory. With
    the default grid (the method's scores; 11 taus) the reference runs each tau on its
    own and the batched engine shares the work until the taus' decisions differ."""
    taus = (TAU,) if grid == "one tau" else DEFAULT_TAUS
    rounds = ROUNDS if grid == "one tau" else 1
    reference_s, reference = fastest(lambda: acdc_sweep(run, taus, batched=False), rounds)
    batched_s, result = fastest(lambda: acdc_sweep(run, taus), rounds)
    benchmark.pedantic(lambda: acdc_sweep(run, taus), rounds=1, iterations=1)
    # Float32 logits round differently between batch shapes (about 1e-6 in the KL here), so
    # a change that close to tau can be decided either way, and greedy pruning then follows
    # another path: at tau 1e-5 the circuits can differ by tens of edges. The float64 tests
    # in tests/test_acdc.py demand equality at every tau; here it is demanded where tau is
    # far above the rounding, and the differences elsewhere are printed.
    differing = (result.circuits != reference.circuits).sum(1)
    far_above_rounding = torch.tensor(taus) >= 1e-4
    assert int(differing[far_above_rounding].sum()) == 0, differing.tolist()
    memory = {
        "one_at_a_time": measure(lambda: acdc_sweep(run, taus, batched=False)).peak_extra_mb,
        "batched": measure(lambda: acdc_sweep(run, taus)).peak_extra_mb,
    }
    speedup = reference_s / batched_s
    info = {
        "taus": list(taus),
        "edges": run.graph.n_edges,
        "kept": result.circuits.sum(1).tolist(),
        "one_at_a_time_s": reference_s,
        "one_at_a_time_forwards": reference.forwards,
        "batched_s": batched_s,
        "batched_forwards": result.forwards,
        "batched_masks": result.masks,
        "speedup": speedup,
        # What bounds the speed-up: where a forward's fixed cost dominates, the ratio of
        # forwards; where the arithmetic does, the ratio of node-tokens computed.
        "forwards_ratio": reference.forwards / result.forwards,
        "node_tokens_ratio": reference.node_tokens / result.node_tokens,
        "differing_edges_per_tau": differing.tolist(),
        "peak_extra_mb": memory,
        "threads": THREADS,
    }
    benchmark.extra_info.update(info)
    print(
        f"\n[acdc 4L x 8H, batch {BATCH} pos {POS}, {grid if len(taus) > 1 else f'tau {TAU:g}'}, "
        f"{THREADS} thread(s), best of {rounds}] kept {info['kept']} of {info['edges']} edges; "
        f"one edge per forward: {reference_s:.2f}s "
        f"({reference.forwards} forwards); batched: {batched_s:.2f}s ({result.forwards} forwards, "
        f"{result.masks} masks); speed-up {speedup:.1f}x; fewer forwards {info['forwards_ratio']:.1f}x, "
        f"fewer node-tokens computed {info['node_tokens_ratio']:.1f}x; peak extra memory "
        f"{memory['one_at_a_time']:.0f} / {memory['batched']:.0f} MB; edges decided differently (float32 "
        f"rounding at tau) {differing.tolist()}"
    )


def test_acdc_grid_tau_by_tau(benchmark, run: DiscoveryRun) -> None:
    """Where the default grid's time goes: each tau run on its own by both engines (one
    call each), with the ratios that bound the speed-up. Printed one line per tau."""
    lines, totals = [], {"reference": 0.0, "batched": 0.0}
    for tau in DEFAULT_TAUS:
        reference_s, reference = fastest(lambda tau=tau: acdc_sweep(run, (tau,), batched=False), 1)
        batched_s, result = fastest(lambda tau=tau: acdc_sweep(run, (tau,)), 1)
        totals["reference"] += reference_s
        totals["batched"] += batched_s
        lines.append(
            f"tau {tau:g}: kept {int(result.circuits.sum())}; one edge per forward {reference_s:.2f}s "
            f"({reference.forwards} forwards); batched {batched_s:.2f}s ({result.forwards} forwards, {result.masks} "
            f"masks); speed-up {reference_s / batched_s:.1f}x; "
            f"fewer forwards {reference.forwards / result.forwards:.1f}x, "
            f"fewer node-tokens {reference.node_tokens / result.node_tokens:.1f}x"
        )
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({"each_tau": lines, **totals})
    print(
        f"\n[acdc 4L x 8H, batch {BATCH} pos {POS}, each tau on its own, {THREADS} thread(s)]\n  "
        + "\n  ".join(lines)
        + f"\n  all {len(DEFAULT_TAUS)}: one edge per forward {totals['reference']:.2f}s, batched "
        f"{totals['batched']:.2f}s, {totals['reference'] / totals['batched']:.1f}x"
    )
