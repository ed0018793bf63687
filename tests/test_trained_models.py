"""The SIIT models: acceptance figures, ground truth, interchange and strictness, resume, CLI.

Models load from the weights shipped in `bench/zoo/trained/published/`; nothing here trains
them except `test_retraining_from_scratch_meets_the_thresholds` (slow, into a temporary cache).
"""

from __future__ import annotations

import json

import pytest
import torch

from bench.cli import main
from bench.discovery import prepare_run
from bench.graph import Graph
from bench.ground_truth import ground_truth_path, load_ground_truth
from bench.runtime import MaskedRuntime
from bench.zoo import load_model, model_names, model_status
from bench.zoo.trained import TRAINED_MODELS, programs, shipped_card, siit
from bench.zoo.trained.builder import siit_ground_truth
from bench.zoo.trained.recipes import RECIPES, SiitRecipe
from tasks import TASKS
from tests.json_close import assert_json_close

SIIT_MODELS = [name for name in TRAINED_MODELS if name.startswith("siit-")]


def test_trained_models_are_in_the_zoo() -> None:
    assert set(TRAINED_MODELS) == {"siit-reverse", "siit-xproportion", "siit-sort", "siit-hist", "induction-2l"}
    assert set(TRAINED_MODELS) <= set(model_names())
    for name in TRAINED_MODELS:
        status = model_status(name)
        assert status.kind == "trained" and status.available
        assert "verified" in status.reason


@pytest.mark.parametrize("name", SIIT_MODELS)
def test_shipped_card_meets_the_thresholds_and_matches_a_fresh_measurement(name: str) -> None:
    card = shipped_card(name)
    figures = card["measurements"]
    assert figures["accuracy"] >= siit.MIN_ACCURACY
    assert figures["iia"] >= siit.MIN_IIA
    assert figures["strictness"] >= siit.MIN_STRICTNESS
    assert figures["gt_agreement"]["corrupted"] >= siit.MIN_GT_AGREEMENT
    assert all(fig["passed"] for fig in card["acceptance"].values())
    recipe = RECIPES[name]
    model = load_model(name)
    fresh = siit.interchange_figures(recipe.program, model, siit.alignment(recipe.program, recipe, model))
    # the card describes these very weights (up to float rounding on another CPU)
    for key in ("accuracy", "iia", "strictness"):
        assert fresh[key] == pytest.approx(figures[key], abs=2e-3), key
    assert max(fresh["outputs_changed_by_high_level_patch"].values()) > 0.3, "interchange must be non-trivial"


@pytest.mark.parametrize("name", SIIT_MODELS)
def test_committed_ground_truth_equals_what_the_build_derives(name: str) -> None:
    model = load_model(name)
    payload, _ = siit_ground_truth(name, model)
    committed = json.loads(ground_truth_path(name).read_text())
    assert_json_close({k: v for k, v in committed.items() if k != "schema_version"}, payload)
    truth = load_ground_truth(name, Graph.from_model(model))
    assert set(truth.nodes) >= {"input", "logits"} and truth.edges


@pytest.mark.parametrize("name", SIIT_MODELS)
@torch.no_grad()
def test_ground_truth_alone_reproduces_the_outputs_and_the_empty_circuit_does_not(name: str) -> None:
    task = TASKS.get(name)
    model = load_model(name)
    runtime = MaskedRuntime(model)
    data = task.build(model, task.default_examples, 0)
    run = prepare_run(runtime, data, "corrupted")
    truth = load_ground_truth(name, runtime.graph)
    program = RECIPES[name].program
    full = siit.targets(program, run.full_logits)
    alone = runtime.forward(data.clean, runtime.graph.mask(list(truth.edges)), run.ablated)
    assert siit.agreement(program, alone, full).float().mean() >= siit.MIN_GT_AGREEMENT
    empty = runtime.forward(data.clean, torch.zeros_like(runtime.graph.mask()), run.ablated)
    assert siit.agreement(program, empty, full).float().mean() < 0.8
    # the task metric agrees: the circuit scores close to the full model, the empty one far below
    gap = data.metric(run.full_logits).mean() - data.metric(empty).mean()
    assert data.metric(run.full_logits).mean() - data.metric(alone).mean() < 0.2 * gap


@torch.no_grad()
def test_interchange_on_the_reverse_head_outputs_the_reversed_source() -> None:
    """Spot check against the program itself: with the aligned aggregate head patched from a
    source input, the model outputs the source reversed."""
    model = load_model("siit-reverse")
    truth = load_ground_truth("siit-reverse", Graph.from_model(model))
    head = truth.source["alignment"]["a3.h0"]
    layer, index = (int(part[1:]) for part in head.split("."))
    base, source = siit.eval_pairs("reverse", 64, 3)
    _, cache = model.run_with_cache(source)
    z_source = cache[f"blocks.{layer}.attn.hook_z"]

    def patch(z: torch.Tensor, hook: object) -> torch.Tensor:
        z[:, :, index] = z_source[:, :, index]
        return z

    out = model.run_with_hooks(base, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", patch)])
    tracr = programs.tracr_program("reverse")
    decoded = [tracr.assembled.output_encoder.decode(row) for row in out[:, 1:].argmax(-1).tolist()]
    vocab = {i: token for token, i in tracr.assembled.input_encoder.encoding_map.items()}
    wanted = [[vocab[t] for t in row[1:]][::-1] for row in source.tolist()]
    assert decoded == wanted
    assert not torch.equal(model(base).argmax(-1), out.argmax(-1)), "the patch must change something"


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CDBENCH_CACHE", str(tmp_path))
    tiny = SiitRecipe("hist", d_model=16, n_heads=2, d_head=4, d_mlp=16, steps=6, batch_size=8)
    straight, _ = siit.train_model("straight", tiny)
    siit.train_model("resumed", tiny, stop_after=3)
    resumed, result = siit.train_model("resumed", tiny)
    assert result.resumed_from == 3
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    different, _ = siit.train_model(
        "other-seed", SiitRecipe("hist", d_model=16, n_heads=2, d_head=4, d_mlp=16, steps=6, batch_size=8, seed=1)
    )
    assert not torch.equal(different.W_E, straight.W_E)


def test_bad_model_name_gives_one_line_naming_the_choices(capsys) -> None:
    assert main(["models", "build", "siit-revers"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "siit-revers" in err and all(name in err for name in TRAINED_MODELS)


def test_models_list_shows_every_model(capsys) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in TRAINED_MODELS)
