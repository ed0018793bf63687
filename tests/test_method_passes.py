"""Every method's whole run (preparation + method) does only the passes it needs: counted
with hooks on the model (a forward that reaches the unembedding, a backward through it), not
taken from the code's own bookkeeping. And the shortcuts that save passes compute what the
separate passes computed."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.discovery import DiscoveryRun, prepare_run
from bench.runtime import MaskedRuntime
from bench.scoring import faithfulness
from methods import METHODS, score_edges
from tasks.base import TaskData
from tests.conftest import tiny_model
from tests.test_padding import pad

STEPS = 2


@dataclass
class Passes:
    forwards: int = 0  # model forwards that reach the unembedding (a stacked batch counts once)
    backwards: int = 0  # backwards through the unembedding's input


@contextmanager
def counting(model: HookedTransformer) -> Iterator[Passes]:
    passes = Passes()

    def on_unembed(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        passes.forwards += 1
        if args[0].requires_grad:
            args[0].register_hook(lambda grad: setattr(passes, "backwards", passes.backwards + 1))

    handle = model.unembed.register_forward_pre_hook(on_unembed)
    try:
        yield passes
    finally:
        handle.remove()


def make_run(model: HookedTransformer, ablation: str = "corrupted") -> DiscoveryRun:
    gen = torch.Generator().manual_seed(3)
    clean = torch.randint(0, 50, (3, 5), generator=gen)
    corrupt = torch.randint(0, 50, (3, 5), generator=gen)
    data = TaskData(clean, corrupt, lambda x: x[..., -1, 3] - x[..., -1, 7], "logit diff")
    return prepare_run(MaskedRuntime(model), data, ablation, options={"steps": STEPS})


def whole_run(method: str, ablation: str = "corrupted") -> tuple[Passes, DiscoveryRun]:
    model = tiny_model()
    with counting(model) as passes:
        run = make_run(model, ablation)
        score_edges(method, run)
    return passes, run


@pytest.mark.parametrize("ablation", ["corrupted", "zero"])
def test_eap_is_one_ablated_forward_and_one_clean_forward_and_backward(ablation: str) -> None:
    passes, run = whole_run("eap", ablation)
    ablated_forwards = 1 if ablation == "corrupted" else 0  # a zero ablation runs no model
    assert (passes.forwards, passes.backwards) == (1 + ablated_forwards, 1)
    assert run.passes.computed == ["ablated"]  # never the full logits


def test_integrated_gradients_pay_one_clean_forward_besides_their_steps() -> None:
    passes, run = whole_run("eap-ig-inputs")
    assert (passes.forwards, passes.backwards) == (2 + STEPS, STEPS)  # ablated, clean deltas, steps
    groups = len(run.graph.source_groups)  # the input, and each layer's heads and MLP
    for method in ("eap-ig-activations", "eap-ig-activations-per-group"):
        passes, _ = whole_run(method)
        assert (passes.forwards, passes.backwards) == (2 + groups * STEPS, groups * STEPS), method


def test_eap_gp_pays_its_path_and_nothing_else() -> None:
    # ablated, target (from the ablated embedding), clean deltas, the start's direction, then
    # one forward per point serving its attribution and the next direction's backward.
    passes, _ = whole_run("eap-gp")
    assert (passes.forwards, passes.backwards) == (4 + STEPS, 2 * STEPS)


def test_exact_patching_is_one_forward_per_stacked_batch() -> None:
    model = tiny_model()
    with counting(model) as passes:
        run = make_run(model)
        chunks = math.ceil(run.graph.n_edges / run.masks_per_forward())
        score_edges("exact-patching", run)
    assert (passes.forwards, passes.backwards) == (2 + chunks, 0)  # ablated, full circuit, chunks
    assert run.passes.computed == ["ablated"]


def test_random_runs_no_model_at_all() -> None:
    passes, run = whole_run("random")
    assert (passes.forwards, passes.backwards, run.passes.computed) == (0, 0, [])


@pytest.mark.filterwarnings("ignore:ACDC circuits are not nested")
@pytest.mark.parametrize(
    ("method", "reads"),
    [
        ("hisp", ["ablated"]),
        ("acdc", ["ablated", "full_logits"]),  # KL to the full model
        ("edge-pruning", ["ablated", "full_logits"]),
        ("subnetwork-probing", ["ablated", "full_logits"]),
    ],
)
def test_search_methods_compute_each_shared_pass_once(method: str, reads: list[str]) -> None:
    model = tiny_model()
    run = make_run(model)
    options = {"steps": 3} if method in ("edge-pruning", "subnetwork-probing") else {}
    run = prepare_run(run.runtime, run.data, "corrupted", options=METHODS.get(method).resolve_options(options))
    score_edges(method, run)
    assert sorted(run.passes.computed) == sorted(reads)


def test_scoring_reuses_the_methods_passes() -> None:
    model = tiny_model()
    run = make_run(model)
    scores = score_edges("eap", run)
    ablated = run.ablated
    with counting(model) as passes:
        faithfulness(run, scores)
        masked_forwards = passes.forwards
    assert run.ablated is ablated and run.passes.computed == ["ablated"]
    assert masked_forwards >= 1


@pytest.mark.parametrize("side", [None, "right", "left"])
def test_eap_from_its_own_forward_equals_eap_from_a_separate_clean_forward(side: str | None) -> None:
    """The deltas recorded in the gradient forward are those of a separate clean forward
    (bit for bit: the same operations on the same values), padded batches included."""
    model = tiny_model()
    gen = torch.Generator().manual_seed(5)
    rows = [torch.randint(0, 49, (n,), generator=gen) for n in (5, 2, 4)]
    corrupt_rows = [torch.randint(0, 49, (len(r),), generator=gen) for r in rows]
    if side is None:
        clean, corrupt, mask = torch.stack([r[:2] for r in rows]), torch.stack([r[:2] for r in corrupt_rows]), None
    else:
        (clean, mask), (corrupt, _) = pad(rows, side, 49), pad(corrupt_rows, side, 49)
    runtime = MaskedRuntime(model)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt, attention_mask=mask)

    def objective(logits: torch.Tensor) -> torch.Tensor:
        return logits[..., 3].sum(-1).mean(-1)  # every position: padding must not matter

    separate = runtime.edge_gradients(clean, objective, runtime.deltas(clean, ablated), attention_mask=mask)
    fused = runtime.clean_edge_gradients(clean, objective, ablated, attention_mask=mask)
    assert separate.abs().max() > 1e-3
    assert torch.equal(fused, separate)
    # and the deltas themselves are clean source outputs minus ablated ones, laid out per source
    direct = runtime.source_outputs(clean, mask) - ablated.outputs
    torch.testing.assert_close(runtime.deltas(clean, ablated), direct.permute(2, 0, 1, 3).reshape(direct.shape[2], -1))


@pytest.mark.parametrize("side", [None, "left"])
def test_input_embedding_is_what_the_input_node_writes(side: str | None) -> None:
    model = tiny_model()
    gen = torch.Generator().manual_seed(6)
    rows = [torch.randint(0, 49, (n,), generator=gen) for n in (4, 2, 3)]
    tokens, mask = (torch.stack([r[:2] for r in rows]), None) if side is None else pad(rows, side, 49)
    runtime = MaskedRuntime(model)
    with counting(model) as passes:
        embedding = runtime.input_embedding(tokens, mask)
    assert passes.forwards == 0  # no block runs
    assert torch.equal(embedding, runtime.source_outputs(tokens, mask)[:, :, 0])


def test_an_unknown_ablation_fails_before_any_work() -> None:
    model = tiny_model()
    data = make_run(model).data
    with counting(model) as passes, pytest.raises(ValueError, match=r"unknown ablation kind 'nope'; valid choices: "):
        prepare_run(MaskedRuntime(model), data, "nope")
    assert passes.forwards == 0
