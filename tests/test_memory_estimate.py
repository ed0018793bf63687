"""The estimator's peak memory against tensor-allocation peaks measured with torch's profiler,
and the measurement itself against tensors of known size."""

from __future__ import annotations

import pytest
import torch

from bench.cli import main
from bench.discovery import prepare_run
from bench.memory_estimate import estimate
from bench.profiling import tensor_peak_bytes
from bench.runtime import MaskedRuntime
from bench.zoo import hub_architecture, load_model

TOLERANCE = 0.25  # |predicted - measured| / measured; measured: -20% to +10% over the 16 fitted runs
SIZES = [
    "random:llama3@n_layers=2,d_model=256,n_heads=8,d_vocab=4096",
    "random:gpt2@n_layers=4,d_model=384,n_heads=6,d_vocab=8192",
    "random:llama3@n_layers=4,d_model=512,n_heads=16,d_vocab=8192",
]
BATCH = 16


def measured_peak(method: str, model_name: str) -> tuple[int, int]:
    """The weights plus the most tensor bytes the run held at once, and its prompt length."""
    from methods import METHODS
    from tasks import TASKS

    model = load_model(model_name)
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    data = TASKS.get("induction").build(model, BATCH, 0)
    spec = METHODS.get(method)

    def discover() -> None:
        spec.func(prepare_run(MaskedRuntime(model), data, "corrupted", 0, spec.resolve_options({})))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # some CPU kernels allocate a buffer per thread
    try:
        _, peak = tensor_peak_bytes(discover)
    finally:
        torch.set_num_threads(threads)
    return weights + peak, data.clean.shape[1]


def check_within_tolerance(method: str, models: list[str]) -> None:
    for model in models:
        peak, pos = measured_peak(method, model)
        predicted = estimate(method, hub_architecture(model).config, BATCH, pos).peak_bytes
        assert abs(predicted - peak) / peak <= TOLERANCE, (model, predicted / 2**20, peak / 2**20)


def test_tensor_peak_counts_what_was_alive_at_once() -> None:
    def allocate() -> float:
        a = torch.ones(1000, 1000)  # 4 MB
        b = torch.ones(500, 1000)  # 2 MB: 6 MB alive
        del a, b
        c = torch.ones(250, 1000)  # 1 MB, after both were freed
        return float(c[0, 0])

    value, peak = tensor_peak_bytes(allocate)
    assert value == 1.0 and peak == 6_000_000


def test_tensor_peak_ignores_tensors_alive_before_the_call() -> None:
    kept = torch.ones(2000, 1000)  # 8 MB, alive throughout
    _, peak = tensor_peak_bytes(lambda: torch.ones(100, 1000).sum())
    assert 400_000 <= peak < 500_000 and kept.numel()


@pytest.mark.slow  # measured runs: tens of seconds
def test_eap_estimate_is_within_tolerance_of_the_measured_peak_at_three_sizes() -> None:
    check_within_tolerance("eap", SIZES)


@pytest.mark.slow
def test_path_method_estimate_is_within_tolerance_of_the_measured_peak_at_three_sizes() -> None:
    check_within_tolerance("eap-ig-inputs", SIZES)


def test_estimate_grows_with_every_size() -> None:
    config = hub_architecture("llama3").config
    base = estimate("eap", config, 8, 64, "bfloat16").peak_bytes
    assert estimate("eap", config, 16, 64, "bfloat16").peak_bytes > base
    assert estimate("eap", config, 8, 128, "bfloat16").peak_bytes > base
    assert estimate("eap", config, 8, 64, "float32").peak_bytes > base


def test_cli_prints_peak_and_passes_without_weights(capsys: pytest.CaptureFixture) -> None:
    code = main(["estimate", "--method", "eap-ig-inputs", "--model", "llama3", "--batch", "8", "--pos", "64",
                 "--dtype", "bfloat16", "--steps", "5"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "meta-llama/Llama-3.1-8B" in out
    assert "7 forward, 5 backward" in out and "predicted peak memory" in out


def test_cli_names_a_bad_method(capsys: pytest.CaptureFixture) -> None:
    assert main(["estimate", "--method", "eapp", "--model", "gpt2", "--pos", "16"]) == 2
    assert "unknown method 'eapp'; valid choices: eap" in capsys.readouterr().err
