"""Subnetwork probing and HISP against independent computations: HISP equals per-node gate
gradients taken with plain TransformerLens hooks; the runtime's node gradients are its edge
gradients summed per source; the node-to-edge rule; SP keeps everything at no penalty,
prunes under a large one and is seeded; both run from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.discovery import DiscoveryRun, prepare_run
from bench.runtime import MaskedRuntime
from methods import METHODS, score_edges
from methods.edge_pruning import deterministic_gates
from methods.node_scores import edges_from_nodes
from methods.subnetwork_probing import ProbingConfig, node_mask, train_node_log_alpha
from tasks.base import TaskData
from tests.conftest import TINY_SHAPES, tiny_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: intra-op threads only add synchronisation on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def log_prob_3(logits: torch.Tensor) -> torch.Tensor:
    """A nonlinear per-example metric: log P(token 3) at the last position."""
    return torch.log_softmax(logits[..., -1, :], dim=-1)[..., 3]


def tiny_run(
    model: HookedTransformer, ablation: str = "corrupted", seed: int = 0, n: int = 5, **options
) -> DiscoveryRun:
    gen = torch.Generator().manual_seed(7)
    clean = torch.randint(0, 50, (n, 6), generator=gen)
    corrupt = torch.randint(0, 50, (n, 6), generator=gen)
    data = TaskData(clean, corrupt, log_prob_3, "log P(3)")
    return prepare_run(MaskedRuntime(model), data, ablation, seed=seed, options=options)


# --- HISP --------------------------------------------------------------------------------


def hook_gate_gradients(shape: str, run: DiscoveryRun) -> dict[str, torch.Tensor]:
    """Per example, d metric / d g at g = 1 for a gate g per head (on `hook_result`) and per
    MLP (on `hook_mlp_out`) that writes ablated + g (output - ablated); plain TransformerLens
    hooks on a fresh float64 copy of the model, one example and one autograd call at a time."""
    model = tiny_model(shape, dtype=torch.float64)
    model.set_use_attn_result(True)
    cfg, clean, corrupt = model.cfg, run.data.clean, run.data.corrupted
    names = [f"blocks.{layer}.attn.hook_result" for layer in range(cfg.n_layers)]
    if not cfg.attn_only:
        names += [f"blocks.{layer}.hook_mlp_out" for layer in range(cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(corrupt, names_filter=lambda name: name in names)
    ablated = {
        "corrupted": {name: cache[name] for name in names},
        "mean": {name: cache[name].mean(0, keepdim=True).expand_as(cache[name]) for name in names},
        "zero": {name: torch.zeros_like(cache[name]) for name in names},
    }[run.ablation]
    grads: dict[str, list[torch.Tensor]] = {}
    for x in range(clean.shape[0]):
        gates = {name: torch.ones(cfg.n_heads if "attn" in name else 1, dtype=torch.float64) for name in names}
        for gate in gates.values():
            gate.requires_grad_(True)

        def gate_hook(act: torch.Tensor, hook, x: int = x, gates: dict = gates) -> torch.Tensor:
            abl, g = ablated[hook.name][x : x + 1], gates[hook.name]
            g = g[:, None] if "attn" in hook.name else g  # [head, 1] against [..., head, d_model]
            return abl + g * (act - abl)

        logits = model.run_with_hooks(clean[x : x + 1], fwd_hooks=[(name, gate_hook) for name in names])
        per_gate = torch.autograd.grad(run.data.metric(logits)[0], [gates[name] for name in names])
        for layer in range(cfg.n_layers):
            for head in range(cfg.n_heads):
                grads.setdefault(f"a{layer}.h{head}", []).append(per_gate[layer][head])
            if not cfg.attn_only:
                grads.setdefault(f"m{layer}", []).append(per_gate[cfg.n_layers + layer][0])
    return {node: torch.stack(values) for node, values in grads.items()}


def expected_hisp(grads: dict[str, torch.Tensor], aggregate: str, normalize: str) -> dict[str, float]:
    raw = {n: (g.abs().mean() if aggregate == "mean-abs" else g.mean().abs()).item() for n, g in grads.items()}
    if normalize == "none":
        return raw
    layers = {node[1:].split(".")[0] for node in raw}
    out = {}
    for layer in layers:
        members = [n for n in raw if n[1:].split(".")[0] == layer]
        norm = sum(raw[n] ** 2 for n in members) ** 0.5
        out.update({n: raw[n] / norm for n in members})
    return out


@pytest.mark.parametrize(
    ("shape", "ablation"),
    [(shape, "corrupted") for shape in TINY_SHAPES] + [("ln-gelu", "mean"), ("ln-gelu", "zero")],
)
@pytest.mark.parametrize(("aggregate", "normalize"), [("mean-abs", "layer"), ("abs-mean", "none")])
def test_hisp_equals_gate_gradients_from_plain_hooks(shape: str, ablation: str, aggregate: str, normalize: str) -> None:
    run = tiny_run(tiny_model(shape, dtype=torch.float64), ablation, aggregate=aggregate, normalize=normalize)
    scores = score_edges("hisp", run)
    expected = expected_hisp(hook_gate_gradients(shape, run), aggregate, normalize)
    assert scores.node_scores is not None and set(scores.node_scores) == set(expected)
    for node, value in expected.items():
        assert scores.node_scores[node] == pytest.approx(value, rel=1e-9, abs=1e-12), node
    assert min(expected.values()) > 1e-6  # every node matters a little: nothing is trivially zero
    assert not METHODS.get("hisp").stochastic


def test_node_gradients_are_edge_gradients_summed_per_source() -> None:
    """A node's gate scales all its out-edges, so its gradient is their mask gradients' sum."""
    for ablation in ("corrupted", "mean", "zero"):
        run = tiny_run(tiny_model("ln-gelu", dtype=torch.float64), ablation)
        runtime, clean = run.runtime, run.data.clean
        per_example = runtime.node_gradients(clean, run.data.metric, run.ablated)
        assert per_example.shape == (clean.shape[0], run.graph.n_sources)
        edges = runtime.edge_gradients(clean, run.objective, runtime.deltas(clean, run.ablated))
        torch.testing.assert_close(per_example.mean(0), edges.sum(1), rtol=1e-9, atol=1e-12)


# --- the node-to-edge rule ---------------------------------------------------------------


def test_an_edge_scores_its_weaker_end_and_each_threshold_is_a_node_circuit() -> None:
    graph = MaskedRuntime(tiny_model()).graph
    values = torch.rand(graph.n_sources, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    values[5] = values[6]  # a tie between two nodes
    scores = edges_from_nodes(graph, values)
    node = dict(zip(graph.sources, values.tolist(), strict=True))
    top = max(values[1:].tolist())
    node["input"] = node["logits"] = top
    assert scores.node_scores == {name: node[name] for name in graph.sources[1:]}
    for name, value in zip(graph.edge_names, scores.values.tolist(), strict=True):
        src, dst = name.split("->")
        assert value == min(node[src], node[dst.split("<")[0]]), name
    for t in sorted(set(values.tolist())):
        kept = {n for n, v in node.items() if v >= t}
        induced = {e for e in graph.edge_names if {e.split("->")[0], e.split("->")[1].split("<")[0]} <= kept}
        assert {e for e, v in zip(graph.edge_names, scores.values.tolist(), strict=True) if v >= t} == induced


# --- subnetwork probing ------------------------------------------------------------------


def test_sp_without_penalty_keeps_every_node_and_the_full_model() -> None:
    run = tiny_run(tiny_model(), n=8, penalty=0, steps=150)
    log_alpha = train_node_log_alpha(run, ProbingConfig.from_options(run.options))
    scores = score_edges("subnetwork-probing", run)
    assert min(scores.node_scores.values()) > 0.99
    gates = deterministic_gates(log_alpha)
    assert torch.equal(gates, torch.ones_like(gates))  # every test-time gate fully open ...
    masked = run.runtime.forward(run.data.clean, node_mask(run, gates), run.ablated)
    torch.testing.assert_close(masked, run.full_logits)  # ... so the circuit is the full model


def test_sp_with_a_large_penalty_prunes_every_node_and_a_small_one_prunes_a_dead_head() -> None:
    strong = score_edges("subnetwork-probing", tiny_run(tiny_model(), n=8, penalty=10, steps=150))
    assert max(strong.node_scores.values()) < 0.01
    model = tiny_model()
    with torch.no_grad():
        model.blocks[1].attn.W_O[2].zero_()  # a1.h2 writes nothing: no objective defends it
    weak = score_edges("subnetwork-probing", tiny_run(model, n=8, penalty=1e-4, steps=150))
    assert weak.node_scores["a1.h2"] < 0.01
    assert sorted(weak.node_scores.values())[-5] > 0.99


def test_sp_is_deterministic_for_a_seed() -> None:
    a, b, c = (score_edges("subnetwork-probing", tiny_run(tiny_model(), seed=s, steps=30)) for s in (3, 3, 4))
    assert torch.equal(a.values, b.values) and a.node_scores == b.node_scores
    assert not torch.equal(a.values, c.values)
    assert METHODS.get("subnetwork-probing").stochastic


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("subnetwork-probing", {"penalty": -1}, "penalty must be >= 0, got -1.0"),
        ("subnetwork-probing", {"steps": 2.5}, "subnetwork-probing option steps must be int, got 2.5"),
        ("subnetwork-probing", {"objective": "l2"}, "objective must be one of auto, kl, metric, got 'l2'"),
        ("hisp", {"aggregate": "max"}, "unknown aggregate 'max'; valid choices: mean-abs, abs-mean"),
        ("hisp", {"normalize": "head"}, "unknown normalize 'head'; valid choices: layer, none"),
    ],
)
def test_bad_option_values_are_refused_before_any_work(method: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        METHODS.get(method).resolve_options(options)
    assert str(error.value) == message


# --- the command line --------------------------------------------------------------------


@pytest.mark.parametrize(("method", "options"), [("hisp", []), ("subnetwork-probing", ["--option", "steps=20"])])
def test_runs_from_the_command_line(method: str, options: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = ["run", "--method", method, "--task", "tracr-reverse", "--examples", "32", *options]
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--results-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "ROC AUC vs full ground truth" in proc.stdout
    (result,) = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    assert result["key"]["method"] == method and len(result["edge_scores"]) == 77


def test_node_scores_reach_the_result_file(tmp_path) -> None:
    """A node method's node scores are stored beside its edge scores; an edge method stores none."""
    from bench.results import read_result
    from bench.runner import RunRequest, execute

    _, path = execute(RunRequest("hisp", "tracr-xproportion"), tmp_path)
    stored = read_result(path)
    assert stored.node_scores is not None and {"a0.h0", "m0"} <= set(stored.node_scores)
    _, path = execute(RunRequest("random", "tracr-xproportion"), tmp_path)
    assert read_result(path).node_scores is None
