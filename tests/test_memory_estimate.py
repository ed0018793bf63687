"""The estimator's peak memory against resident-memory peaks measured in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.memory_estimate import estimate
from bench.zoo import hub_architecture

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.25  # |predicted - measured| / measured; measured: -8% to +16% on these sizes
SIZES = [
    "random:llama3@n_layers=2,d_model=256,n_heads=8,d_vocab=4096",
    "random:gpt2@n_layers=4,d_model=384,n_heads=6,d_vocab=8192",
    "random:llama3@n_layers=4,d_model=512,n_heads=16,d_vocab=8192",
]
BATCH = 16

MEASURE = """
import gc, json, sys
import torch
torch.set_num_threads(1)
from bench.discovery import prepare_run
from bench.profiling import release_freed_memory
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from methods import METHODS
from tasks import TASKS
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
method, batch = sys.argv[1], int(sys.argv[2])
TASKS.names(), METHODS.names()  # the registries load on first use: not inside a measured run
for model_name in sys.argv[3:]:
    gc.collect()
    release_freed_memory()  # hand the previous run's freed pages back, or this run reuses them unseen
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the memory in use now, so it is this run's own
    start = status("VmRSS")
    model = load_model(model_name)
    data = TASKS.get("induction").build(model, batch, 0)
    run = prepare_run(MaskedRuntime(model), data, "corrupted", 0, METHODS.get(method).resolve_options({}))
    METHODS.get(method).func(run)
    print(json.dumps({"peak": status("VmHWM") - start, "pos": data.clean.shape[1]}))
    del model, data, run
"""


def measured_peaks(method: str, models: list[str]) -> list[tuple[int, int]]:
    """Peak resident memory each run added, and its prompt length, runs one after another in
    one fresh process: the kernel's high-water mark (VmHWM, what ru_maxrss reports; it sees
    torch's allocations, unlike tracemalloc), reset before each run, minus the memory then."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, method, str(BATCH), *models],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in out.stdout.strip().splitlines()[-len(models) :]]
    return [(row["peak"], row["pos"]) for row in rows]


def check_within_tolerance(method: str, models: list[str]) -> None:
    for model, (peak, pos) in zip(models, measured_peaks(method, models), strict=True):
        predicted = estimate(method, hub_architecture(model).config, BATCH, pos).peak_bytes
        assert abs(predicted - peak) / peak <= TOLERANCE, (model, predicted / 2**20, peak / 2**20)


@pytest.mark.slow  # a subprocess or a measured run: tens of seconds
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
