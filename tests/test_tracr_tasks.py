"""The tracr tasks: deterministic aligned data on which the full model is far from the corrupted run."""

from __future__ import annotations

import pytest
import torch

from bench.discovery import prepare_run
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from bench.zoo.tracr_models import build_tracr_model
from tasks import TASKS
from tasks._tracr import build_tracr_data


@pytest.mark.parametrize("name", ["tracr-reverse", "tracr-xproportion"])
def test_data_is_seeded_aligned_and_meaningful(name: str) -> None:
    task = TASKS.get(name)
    model = load_model(task.model)
    a, b, c = (task.build(model, 64, seed) for seed in (0, 0, 1))
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupted, b.corrupted)
    assert not torch.equal(a.clean, c.clean)
    assert a.clean.shape == a.corrupted.shape == (64, 6)
    assert (a.clean != a.corrupted).any(dim=1).all(), "every corruption differs from its clean input"
    assert (a.clean[:, 0] == a.clean[0, 0]).all(), "BOS first"
    with torch.no_grad():
        full = a.metric(model(a.clean)).mean()
        corrupted = a.metric(model(a.corrupted)).mean()
    assert full.abs() < 1e-6
    assert corrupted < -0.1, "the corrupted run must be far from the full model on the metric"


def test_reverse_uses_the_whole_domain_of_every_length_by_default() -> None:
    task = TASKS.get("tracr-reverse")
    data = task.build(load_model(task.model), task.default_examples, 0)
    assert len({tuple(row) for row in data.clean.tolist()}) == 363 == 3 + 9 + 27 + 81 + 243
    lengths = data.attention_mask.sum(1) - 1  # after BOS
    assert lengths.bincount().tolist() == [0, 3, 9, 27, 81, 243]
    pad = build_tracr_model("reverse").assembled.input_encoder.pad_encoding
    assert torch.equal(data.clean == pad, data.attention_mask == 0), "right-padded with tracr's pad token"
    assert torch.equal(data.corrupted == pad, data.attention_mask == 0), "a corruption has its clean input's length"


@pytest.mark.parametrize("name", ["tracr-reverse", "tracr-xproportion"])
def test_a_sample_holds_every_length_and_the_maximum_length_data_stays_an_option(name: str) -> None:
    task = TASKS.get(name)
    model = load_model(task.model)
    sample = task.build(model, 64, 0)
    assert set((sample.attention_mask.sum(1) - 1).tolist()) == {1, 2, 3, 4, 5}
    program = name.removeprefix("tracr-")
    longest = build_tracr_data(program, model, 1024, 0, lengths="max")
    assert longest.attention_mask is None and longest.clean.shape == (len(task_vocab(program)) ** 5, 6)
    with pytest.raises(ValueError, match="unknown tracr lengths 'some'; valid choices: all, max"):
        build_tracr_data(program, model, 8, 0, lengths="some")


def task_vocab(program: str) -> tuple:
    return build_tracr_model(program).vocab


@torch.no_grad()
def test_the_metric_reads_each_example_at_its_own_positions_only() -> None:
    """On mixed lengths the L2 metric of a run equals that of each input run alone."""
    task = TASKS.get("tracr-reverse")
    model = load_model(task.model)
    data = task.build(model, 24, 0)
    runtime = MaskedRuntime(model)
    run = prepare_run(runtime, data, "zero")
    # A circuit under which padded positions compute something else than in the full model.
    circuit = (torch.rand(runtime.graph.mask().shape, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    values = data.metric(runtime.forward(data.clean, circuit, run.ablated))
    for i in range(data.n_examples):
        tokens = data.clean[i, data.attention_mask[i].bool()][None]
        alone = runtime.forward(tokens, circuit, runtime.ablate("zero", like=tokens))
        expected = -((alone - model(tokens))[:, 1:] ** 2).sum()
        assert abs(float(values[i] - expected)) < 1e-4 * max(1.0, abs(float(expected)))
    assert values.abs().max() > 0.1


@pytest.mark.parametrize("sizes", [[3, 9, 27, 81, 243], [4, 16, 64, 256, 1024], [2, 1, 5]])
def test_stratified_sample_draws_exactly_n_from_every_pool_it_can(sizes: list[int]) -> None:
    """Every n from 1 to the whole domain: n draws in all, never more than a pool holds, no
    index twice, and every pool represented once n has room for one each."""
    from tasks._tracr import stratified_sample

    for n in range(1, sum(sizes) + 1):
        picks = stratified_sample(sizes, n, torch.Generator().manual_seed(n))
        counts = [len(p) for p in picks]
        assert sum(counts) == n, (n, counts)
        assert all(0 <= c <= size for c, size in zip(counts, sizes, strict=True)), (n, counts)
        assert all(len(set(p.tolist())) == len(p) for p in picks)
        if n >= len(sizes):
            assert min(counts) >= 1, (n, counts)
    # the default tracr-xproportion sample keeps each length's share of the domain
    assert [len(p) for p in stratified_sample([4, 16, 64, 256, 1024], 256, torch.Generator())] == [1, 3, 12, 48, 192]
