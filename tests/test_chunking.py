"""Scoring examples a chunk at a time gives the whole draw's scores (to float rounding), for
every method that declares its scores a mean over examples, under every ablation kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.chunking import chunk_bounds, example_chunk, examples_per_pass_for, score_in_chunks
from bench.cli import main
from bench.discovery import prepare_run
from bench.memory_estimate import estimate
from bench.runtime import MaskedRuntime
from bench.zoo import hub_architecture, load_model
from methods import METHODS
from tasks import TASKS

CHUNKED = [n for n in METHODS.names() if METHODS.get(n).additive_over_examples]


def close(chunked: torch.Tensor, whole: torch.Tensor) -> bool:
    """Equal up to float32 summation order: within 1e-5 of the largest score (measured: <= 2e-6)."""
    return bool((chunked - whole).abs().max() <= 1e-5 * whole.abs().max())


@pytest.fixture(scope="module")
def induction() -> tuple[MaskedRuntime, object]:
    model = load_model("random:gpt2@tiny")
    return MaskedRuntime(model), TASKS.get("induction").build(model, 10, 0)


def test_the_mean_methods_declare_themselves() -> None:
    assert {"eap", "eap-ig-inputs", "eap-ig-activations", "exact-patching", "eap-gp"} <= set(CHUNKED)
    assert not {"hisp", "acdc", "edge-pruning", "subnetwork-probing"} & set(CHUNKED)


@pytest.mark.parametrize("ablation", ["corrupted", "mean", "zero"])
@pytest.mark.parametrize("method", [m for m in CHUNKED if m != "exact-patching"])  # its edge-per-forward cost:
def test_chunks_give_the_whole_draws_scores(induction: tuple, method: str, ablation: str) -> None:  # Tracr below
    runtime, data = induction
    spec = METHODS.get(method)
    options = spec.resolve_options({"steps": 2} if "steps" in spec.defaults else {})
    whole = spec.func(prepare_run(runtime, data, ablation, 0, options)).values
    chunked = score_in_chunks(spec.func, runtime, data, ablation, 0, options, 3).values  # chunks 3+3+3+1
    assert close(chunked, whole)
    assert not torch.equal(whole, torch.zeros_like(whole))


@pytest.mark.parametrize("method", CHUNKED)
def test_chunks_give_the_whole_draws_scores_on_a_padded_tracr_task(method: str) -> None:
    model = load_model("tracr-xproportion")
    runtime, data = MaskedRuntime(model), TASKS.get("tracr-xproportion").build(model, 8, 0)
    spec = METHODS.get(method)
    options = spec.resolve_options({"steps": 2} if "steps" in spec.defaults else {})
    whole = spec.func(prepare_run(runtime, data, "zero", 0, options)).values
    chunked = score_in_chunks(spec.func, runtime, data, "zero", 0, options, 3).values
    assert close(chunked, whole)


def test_a_chunk_reads_the_metric_at_its_own_examples(induction: tuple) -> None:
    runtime, data = induction
    logits = runtime.model(data.clean)
    chunk = example_chunk(data, 4, 7)
    assert torch.allclose(chunk.metric(logits[4:7]), data.metric(logits)[4:7])
    assert torch.equal(chunk.reference, data.corrupted)  # mean ablation over the whole draw


def test_chunk_bounds_cover_every_example_once() -> None:
    assert chunk_bounds(10, 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert chunk_bounds(4, 8) == [(0, 4)]
    with pytest.raises(ValueError, match="at least 1, got 0"):
        chunk_bounds(4, 0)


def test_the_examples_per_pass_that_fit_a_device() -> None:
    config = hub_architecture("llama3").config
    whole = estimate("eap-ig-inputs", config, 8, 64, "bfloat16").peak_bytes
    assert examples_per_pass_for("eap-ig-inputs", config, 8, 64, "bfloat16", whole + 1) is None
    size = examples_per_pass_for("eap-ig-inputs", config, 8, 64, "bfloat16", whole * 0.8)
    assert size is not None and 1 <= size < 8
    assert estimate("eap-ig-inputs", config, size, 64, "bfloat16").peak_bytes <= whole * 0.8
    assert examples_per_pass_for("eap-ig-inputs", config, 8, 64, "bfloat16", 1.0) == 1


def test_cli_runs_in_chunks_and_records_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["run", "--method", "eap", "--task", "induction", "--model", "random:gpt2@tiny", "--examples", "12",
            "--results-dir", str(tmp_path)]  # fmt: skip
    assert main([*args, "--examples-per-pass", "5"]) == 0
    (path,) = tmp_path.rglob("*.json")
    chunked = json.loads(path.read_text())
    assert chunked["examples_per_pass"] == 5
    assert main([*args, "--force"]) == 0
    whole = json.loads(path.read_text())
    assert whole["examples_per_pass"] is None
    for edge, value in whole["edge_scores"].items():
        assert abs(chunked["edge_scores"][edge] - value) <= 1e-5 * max(map(abs, whole["edge_scores"].values()))


def test_cli_refuses_chunks_for_a_method_that_is_not_a_mean(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--method", "hisp", "--task", "tracr-xproportion", "--examples-per-pass", "4",
                 "--results-dir", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "method 'hisp' cannot score its examples in chunks" in err and "eap" in err
    assert main(["run", "--all", "--examples-per-pass", "4", "--results-dir", str(tmp_path)]) == 2
    assert not list(tmp_path.rglob("*.json"))
