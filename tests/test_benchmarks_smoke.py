"""The speed benchmarks still run (on a small setting), so they cannot rot unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_benchmarks_run_and_print_ratios() -> None:
    env = {
        **os.environ,
        "CDBENCH_BENCH_MODEL": "random:redwood_attn_2l",
        "CDBENCH_BENCH_BATCH": "2",
        "CDBENCH_BENCH_POS": "4",
        "PYTHONPATH": str(ROOT),
        "CDBENCH_BENCH_ROUNDS": "1",
    }
    cmd = [sys.executable, "-m", "pytest", "tests/benchmarks", "--benchmark-only", "-q", "-s", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    names = ["eap:", "eap-ig-inputs:", "eap-gp:", "eap-ig-activations (one group):", "exact-patching (32 edges):"]
    for name in [*names, "hisp:"]:
        line = next((line for line in proc.stdout.splitlines() if name in line), "")
        assert "whole run" in line and "method only" in line and "x of floor" in line, name
    acdc = [line for line in proc.stdout.splitlines() if "speed-up" in line and "fewer node-tokens" in line]
    assert len(acdc) == 2 + 11, proc.stdout[-3000:]  # one tau, the default grid, then the grid's 11 taus
