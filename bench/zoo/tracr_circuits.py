"""Exact ground truth for the Tracr-compiled models, derived from their weights.

Tracr writes every variable of the RASP program into its own residual-stream subspace, so
an edge u->v carries information iff the dimensions u writes overlap the dimensions v reads:
- u writes the columns where its output weights are non-zero (W_E and W_pos for `input`,
  W_O of a head, W_out of an MLP);
- v reads the rows where its input weights are non-zero (W_Q, W_K or W_V of a head's
  q/k/v input, W_in of an MLP, W_U for `logits`).
Empty (all-zero) sublayers write and read nothing. The circuit is not typed by hand; the
residual labels each edge shares are recorded beside it.

Detectability depends on the ablation: an edge whose removal alone changes no output on
the task's examples (e.g. the length chain of `reverse` under a same-length corruption) is
invisible to every method, so it is measured, per ablation kind, and written down.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import torch
from transformer_lens import HookedTransformer

from bench.detectability import DETECTABLE_RULE, detectable_edges
from bench.graph import Graph
from bench.zoo import load_model
from bench.zoo.tracr_models import TracrModel, build_tracr_model
from bench.zoo.tracr_programs import load_program, program_of

if TYPE_CHECKING:
    from tasks.base import Task

WEIGHT_TOL = 1e-6


def stable_label(label: str) -> str:
    """Drop tracr's process-wide unique-id suffix: `length_5:3` -> `length:3`."""
    return re.sub(r"_\d+(?=:|_selector|$)", "", label)


def _rows(weight: torch.Tensor) -> set[int]:
    """Residual dimensions read by `[d_model, k]` weights."""
    return set(torch.nonzero(weight.abs().amax(dim=1) > WEIGHT_TOL).flatten().tolist())


def _cols(weight: torch.Tensor) -> set[int]:
    """Residual dimensions written by `[k, d_model]` weights."""
    return set(torch.nonzero(weight.abs().amax(dim=0) > WEIGHT_TOL).flatten().tolist())


def residual_reads_and_writes(model: torch.nn.Module, graph: Graph) -> tuple[dict[str, set], dict[str, set]]:
    """The residual dimensions each source writes and each destination reads."""
    writes: dict[str, set[int]] = {"input": _cols(model.W_E) | _cols(model.W_pos)}
    reads: dict[str, set[int]] = {"logits": _rows(model.W_U)}
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            name = f"a{layer}.h{head}"
            writes[name] = _cols(model.W_O[layer, head])
            for letter, weight in (("q", model.W_Q), ("k", model.W_K), ("v", model.W_V)):
                reads[f"{name}<{letter}>"] = _rows(weight[layer, head])
        if f"m{layer}" in graph.src_index:
            writes[f"m{layer}"] = _cols(model.W_out[layer])
            reads[f"m{layer}"] = _rows(model.W_in[layer])
    return reads, writes


def derive_circuit(model_name: str) -> dict[str, Any]:
    """Edges whose writer and reader share residual dimensions, with the shared labels, for a
    built-in Tracr model."""
    return circuit_of(build_tracr_model(_builtin_program(model_name)), load_model(model_name))


def _builtin_program(model_name: str) -> str:
    program = program_of(model_name)
    if program is None:
        raise ValueError(f"{model_name!r} is not a built-in Tracr model (bench.zoo.tracr_programs)")
    return program


def circuit_of(tracr: TracrModel, model: HookedTransformer) -> dict[str, Any]:
    """`derive_circuit` for a compiled program and its converted model (built-in or a user's file)."""
    graph = Graph.from_model(model)
    labels = [stable_label(label) for label in tracr.assembled.residual_labels]
    reads, writes = residual_reads_and_writes(model, graph)
    shared: dict[str, list[str]] = {}
    for edge, src, dst in zip(graph.edge_names, graph.edge_src.tolist(), graph.edge_dst.tolist(), strict=True):
        overlap = writes[graph.sources[src]] & reads[graph.destinations[dst]]
        if overlap:
            shared[edge] = sorted(labels[i] for i in overlap)
    return {"edges": list(shared), "nodes": graph.nodes_of(list(shared)), "shared_residual_labels": shared}


def tracr_detectable_edges(task_name: str | Task, edges: list[str], ablation: str, seed: int = 0) -> list[str]:
    """The circuit edges detectable under `ablation` on the task's default examples."""
    from tasks.user_tasks import find_task

    task = find_task(task_name) if isinstance(task_name, str) else task_name
    model = load_model(task.model)
    data = task.build(model, task.default_examples, seed)
    return detectable_edges(model, data, edges, ablation, seed, chunk=len(edges))


def ground_truth_payload(task_name: str | Task, tracr: TracrModel | None = None) -> dict[str, Any]:
    """The full ground-truth file for a Tracr task, ready for `write_ground_truth`: a built-in
    task by name, or a task of a user's program file with its compiled program `tracr`."""
    from tasks.user_tasks import find_task

    task = find_task(task_name) if isinstance(task_name, str) else task_name
    if tracr is None:
        circuit = derive_circuit(task.model)
        program = load_program(_builtin_program(task.model)).provenance
    else:
        circuit = circuit_of(tracr, load_model(task.model))
        program = task.citation
    detectable = {kind: tracr_detectable_edges(task, circuit["edges"], kind) for kind in task.ablations}
    return {
        "task": task.name,
        "model": task.model,
        "granularity": "edge",
        "source": {
            "kind": "derived from the compiled weights (exact)",
            "program": program,
            "rule": "u->v is in the circuit iff the residual dimensions u writes overlap those v reads",
            "generated_by": "python -m bench ground-truth derive " + task.name,
        },
        "detectable_rule": DETECTABLE_RULE,
        "nodes": circuit["nodes"],
        "edges": circuit["edges"],
        "detectable": detectable,
        "shared_residual_labels": circuit["shared_residual_labels"],
    }
