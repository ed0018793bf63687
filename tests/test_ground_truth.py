"""Ground-truth files: derived exactly, validated against the graph, and faithful when patched in alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.discovery import prepare_run
from bench.graph import Graph
from bench.ground_truth import (
    GROUND_TRUTH_DIR,
    GroundTruthError,
    ground_truth_path,
    load_ground_truth,
)
from bench.runtime import MaskedRuntime
from bench.zoo import load_model, model_graph
from bench.zoo.tracr_circuits import ground_truth_payload
from methods import score_edges
from tasks import TASKS

TRACR_TASKS = ["tracr-reverse", "tracr-xproportion"]


def test_every_ground_truth_file_loads_against_its_models_graph() -> None:
    files = sorted(GROUND_TRUTH_DIR.glob("*.json"))
    assert {f.stem for f in files} >= set(TRACR_TASKS)
    for path in files:
        task = TASKS.get(path.stem)
        model = json.loads(path.read_text())["model"]
        assert model in task.models, f"{path.name} is a circuit of {model}, which task {task.name} does not run on"
        truth = load_ground_truth(path.stem, model_graph(model))
        assert truth.edges and truth.source


@pytest.mark.parametrize("task", TRACR_TASKS)
def test_committed_tracr_ground_truth_matches_a_fresh_derivation(task: str) -> None:
    committed = json.loads(ground_truth_path(task).read_text())
    fresh = ground_truth_payload(task)
    assert {k: v for k, v in committed.items() if k != "schema_version"} == fresh


@pytest.mark.parametrize("task", TRACR_TASKS)
@pytest.mark.parametrize("ablation", ["zero", "corrupted", "mean"])
@torch.no_grad()
def test_ground_truth_patched_in_alone_reproduces_the_model(task: str, ablation: str) -> None:
    spec = TASKS.get(task)
    model = load_model(spec.model)
    runtime = MaskedRuntime(model)
    data = spec.build(model, spec.default_examples, 0)
    run = prepare_run(runtime, data, ablation)
    truth = load_ground_truth(task, runtime.graph)
    real = data.output_weights[..., None]  # every length 1..5: padding is never read

    def change(out: torch.Tensor) -> float:
        return float((data.outputs(out - run.full_logits) * real).abs().max())

    for edges in (truth.edge_mask(runtime.graph), truth.edge_mask(runtime.graph, ablation)):
        mask = runtime.graph.to_matrix(edges.float())
        assert change(runtime.forward(data.clean, mask, run.ablated)) < 1e-4
    # and the empty circuit does not
    assert change(runtime.forward(data.clean, torch.zeros_like(runtime.graph.mask()), run.ablated)) > 0.1


@pytest.mark.parametrize("task", TRACR_TASKS)
def test_exact_patching_ranks_detectable_ground_truth_first_under_zero_ablation(task: str) -> None:
    spec = TASKS.get(task)
    model = load_model(spec.model)
    runtime = MaskedRuntime(model)
    run = prepare_run(runtime, spec.build(model, spec.default_examples, 0), "zero")
    detectable = load_ground_truth(task, runtime.graph).edge_mask(runtime.graph, "zero")
    ranking = score_edges("exact-patching", run).ranking()
    top = torch.zeros_like(detectable)
    top[ranking[: int(detectable.sum())]] = True
    assert torch.equal(top, detectable)


def write_variant(tmp_path: Path, task: str, **changes) -> Path:
    data = json.loads(ground_truth_path(task).read_text())
    data.update(changes)
    (tmp_path / f"{task}.json").write_text(json.dumps(data))
    return tmp_path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"edges": ["input->a9.h0<q>"]}, "unknown destination 'a9.h0<q>'"),
        ({"edges": ["a3.h0->a1.h0<q>"]}, "a3.h0 is not upstream of a1.h0<q>"),
        ({"edges": ["input=>logits"]}, "malformed edge"),
        ({"nodes": ["input", "m7"]}, "unknown node 'm7'"),
        ({"detectable": {"zero": ["input->logits"]}}, "outside the circuit"),
        ({"schema_version": 9}, "schema_version 9"),
    ],
)
def test_bad_ground_truth_names_the_entry(tmp_path: Path, changes: dict, message: str) -> None:
    root = write_variant(tmp_path, "tracr-reverse", **changes)
    graph = Graph.from_model(load_model("tracr-reverse"))
    with pytest.raises(GroundTruthError, match=message) as err:
        load_ground_truth("tracr-reverse", graph, root)
    assert "tracr-reverse.json" in str(err.value)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    (tmp_path / "tracr-reverse.json").write_text(json.dumps({"task": "tracr-reverse"}))
    with pytest.raises(GroundTruthError, match="missing keys"):
        load_ground_truth("tracr-reverse", Graph.from_model(load_model("tracr-reverse")), tmp_path)
