"""Edge Pruning on the two Tracr tasks (zero ablation, the paper's setting): steps per
second, wall time to convergence and peak memory of one default-budget run.

    python -m pytest tests/benchmarks/test_edge_pruning_speed.py --benchmark-only -s

Convergence: the first step from which, to the end of training, the learned circuit (the
edges with P(z != 0) > 1/2) is the final one and the expected edge density stays within
DENSITY_TOL of its final value; the step from which the circuit alone stays final is
reported too (the density creeps on as pruned gates sink). The sampled objective is too
noisy to define it (one gate drawn shut costs a needed edge), so the final circuit's
objective comes from one deterministic masked forward. Runs use one intra-op thread
(CDBENCH_BENCH_THREADS): on models this small, more threads only add synchronisation.
"""

from __future__ import annotations

import os

import pytest
import torch

from bench.discovery import DiscoveryRun, prepare_run
from bench.profiling import measure
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from methods.edge_pruning import PruningConfig, StepRecord, choose_objective, train_log_alpha
from tasks import TASKS

THREADS = int(os.environ.get("CDBENCH_BENCH_THREADS", "1"))
DENSITY_TOL = 0.005
torch.set_grad_enabled(True)


@pytest.fixture(scope="module", params=["tracr-reverse", "tracr-xproportion"])
def task_run(request: pytest.FixtureRequest) -> tuple[str, DiscoveryRun]:
    task = TASKS.get(request.param)
    model = load_model(task.model)
    return task.name, prepare_run(MaskedRuntime(model), task.build(model, task.default_examples, 0), "zero")


def settled_from(records: list[StepRecord], density_tol: float = float("inf")) -> int:
    """First step from which, to the end, the circuit is the final one and the density stays
    within `density_tol` of its final value."""
    final = records[-1]
    step = final.step
    for record in reversed(records):
        if not torch.equal(record.keep > 0.5, final.keep > 0.5) or abs(record.density - final.density) > density_tol:
            break
        step = record.step
    return step


def test_edge_pruning_tracr(benchmark, task_run: tuple[str, DiscoveryRun]) -> None:
    name, run = task_run
    config = PruningConfig()
    records: list[StepRecord] = []

    def work() -> torch.Tensor:
        records.clear()
        return train_log_alpha(run, config, records.append)

    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        train_log_alpha(run, PruningConfig(steps=5))  # warm-up: allocation and lazy initialisation
        measured = benchmark.pedantic(lambda: measure(work), rounds=1, iterations=1)
    finally:
        torch.set_num_threads(threads)

    seconds = benchmark.stats.stats.min
    steps_per_s = config.steps / seconds
    converged = settled_from(records, DENSITY_TOL)
    circuit_settled = settled_from(records)
    circuit = (records[-1].keep > 0.5).float()
    with torch.no_grad():
        logits = run.runtime.forward(run.data.clean, run.graph.to_matrix(circuit), run.ablated)
        objective = choose_objective(run, config.objective)(logits).item()
        metric = run.objective(logits).item()
    info = {
        "steps": config.steps,
        "steps_per_s": steps_per_s,
        "wall_s": seconds,
        "convergence_step": converged,
        "seconds_to_convergence": (converged + 1) / steps_per_s,
        "circuit_final_from_step": circuit_settled,
        "peak_extra_mb": measured.peak_extra_mb,
        "circuit_edges": int(circuit.sum()),
        "graph_edges": run.graph.n_edges,
        "circuit_objective": objective,
        "circuit_metric": metric,
        "torch_threads": THREADS,
    }
    benchmark.extra_info.update(info)
    print(
        f"\n[edge-pruning {name}, {run.data.n_examples} examples, {THREADS} thread(s)] "
        f"{config.steps} steps in {seconds:.2f}s ({steps_per_s:.1f} steps/s), "
        f"converged at step {converged} ({info['seconds_to_convergence']:.2f}s; circuit final from step "
        f"{circuit_settled}), "
        f"peak extra memory {measured.peak_extra_mb:.0f} MB, circuit {info['circuit_edges']}/{run.graph.n_edges} "
        f"edges, objective {objective:.2e}, metric {metric:.2e}"
    )
