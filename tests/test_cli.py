"""The command line as a user meets it: subprocesses, exit codes, one-line errors, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.zoo import model_status
from tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_list_shows_methods_tasks_and_model_availability() -> None:
    proc = bench("list")
    assert proc.returncode == 0, proc.stderr
    for word in ["exact-patching", "random", "tracr-reverse", "tracr-xproportion", "gpt2-xl", "available"]:
        assert word in proc.stdout
    models = bench("list", "models").stdout
    assert "random:gpt2" in models


@pytest.mark.parametrize(
    ("args", "bad", "choice"),
    [
        (["--method", "acdcc", "--task", "tracr-reverse"], "'acdcc'", "exact-patching"),
        (["--method", "random", "--task", "ioii"], "'ioii'", "tracr-reverse"),
        (["--method", "random", "--task", "tracr-reverse", "--model", "gpt5"], "'gpt5'", "tracr-xproportion"),
        (["--method", "random", "--task", "tracr-reverse", "--model", "gpt2"], "'gpt2'", "tracr-reverse"),
        (["--method", "random", "--task", "tracr-reverse", "--ablation", "resample"], "'resample'", "zero"),
    ],
)
def test_bad_names_give_one_line_and_exit_2(args: list[str], bad: str, choice: str, tmp_path: Path) -> None:
    proc = bench("run", *args, "--results-dir", str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and bad in lines[0] and "valid choices" in lines[0] and choice in lines[0]
    assert not any(tmp_path.iterdir()), "nothing is written for a bad request"


@pytest.mark.parametrize(
    ("method", "option", "message"),
    [
        ("acdc", "acdc_window=0", "acdc_window must be a positive integer, got 0"),
        ("acdc", "taus=abc", "taus must be distinct finite numbers, got 'abc'"),
        ("acdc", "acdc_metric=l2", "unknown acdc_metric 'l2'; valid choices: auto, kl, task"),
        ("eap-gp", "steps=0", "steps must be a positive integer, got 0"),
        ("eap-ig-inputs", "steps=2.5", "steps must be a positive integer, got 2.5"),
        ("edge-pruning", "steps=2.5", "edge-pruning option steps must be int, got 2.5"),
        ("edge-pruning", "warmup=2", "warmup must be a fraction in [0, 1], got 2.0"),
    ],
)
def test_bad_option_values_give_one_line_and_exit_2(method: str, option: str, message: str, tmp_path: Path) -> None:
    """Checked before any work, so a bad value never costs a model load or a failure record."""
    proc = bench(
        "run", "--method", method, "--task", "tracr-reverse", "--option", option, "--results-dir", str(tmp_path)
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {message}"]
    assert not any(tmp_path.iterdir())


def test_run_writes_scores_and_metadata(tmp_path: Path) -> None:
    proc = bench("run", "--method", "exact-patching", "--task", "tracr-reverse", "--results-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 1
    result = json.loads(files[0].read_text())
    assert result["key"] == {
        "task": "tracr-reverse",
        "model": "tracr-reverse",
        "method": "exact-patching",
        "ablation": "corrupted",
        "seed": 0,
        "n_examples": 363,
        "data_seed": 0,
        "options_hash": result["key"]["options_hash"],
    }
    assert files[0].name == f"corrupted-seed0-data0-n363-{result['key']['options_hash']}.json"
    assert len(result["edge_scores"]) == 77
    assert max(abs(v) for v in result["edge_scores"].values()) > 0.1
    assert result["versions"]["torch"].startswith("2.")
    assert result["wall_time_s"] > 0 and result["peak_memory_mb"] >= 0 and result["git_commit"]


def test_run_all_runs_what_it_can_then_resumes(tmp_path: Path) -> None:
    args = ["run", "--all", "--methods", "eap,random", "--stability", "none", "--results-dir", str(tmp_path)]
    first = bench(*args)
    assert first.returncode == 0, first.stderr
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json"))
    # every (task, suite ablation) on a model built here (Tracr, SIIT, induction; hub models are
    # unavailable offline): eap once, the stochastic random baseline with seeds 0, 1, 2
    local = [TASKS.get(name) for name in TASKS.names() if model_status(TASKS.get(name).model).kind != "hub"]
    assert len(local) == 7
    assert len(written) == sum(len(task.suite_ablations) for task in local) * (1 + 3)
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}
    again = bench(*args)
    assert again.returncode == 0 and "finished: 0 run," in again.stdout and "0 failed" in again.stdout
    assert mtimes == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}


def test_unknown_option_is_named(tmp_path: Path) -> None:
    proc = bench(
        "run",
        "--method",
        "eap-ig-inputs",
        "--task",
        "tracr-reverse",
        "--option",
        "stepz=3",
        "--results-dir",
        str(tmp_path),
    )
    assert proc.returncode == 2
    assert "has no option 'stepz'; valid choices: steps, points" in proc.stderr


def test_recorded_options_include_defaults(tmp_path: Path) -> None:
    proc = bench("run", "--method", "eap-ig-inputs", "--task", "tracr-xproportion", "--results-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (result,) = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    assert result["options"] == {"steps": 5, "points": "left"}


def test_run_without_signal_warns_in_one_line(tmp_path: Path) -> None:
    """One example has no spread to tell its gap from 0, so faithfulness means nothing."""
    proc = bench(
        "run", "--method", "random", "--task", "tracr-reverse", "--examples", "1", "--results-dir", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "no signal" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: no signal: m(model) - m(empty) = ")
    assert "over 1 example) and one example cannot tell it from 0" in warnings[0]
    loud = bench("run", "--method", "random", "--task", "tracr-reverse", "--results-dir", str(tmp_path))
    assert loud.returncode == 0 and "no signal" not in loud.stdout + loud.stderr


def test_text_task_on_a_model_without_tokenizer_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = bench(
        "run", "--method", "random", "--task", "gendered-pronoun", "--model", "random:gpt2",
        "--results-dir", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "'gendered-pronoun'" in lines[0] and "'random:gpt2'" in lines[0]
    assert not list(tmp_path.rglob("*.json"))


def test_run_all_says_once_per_model_that_it_is_unavailable(tmp_path: Path) -> None:
    proc = bench("run", "--all", "--tasks", "sva,hypernymy", "--results-dir", str(tmp_path))  # HF_HUB_OFFLINE=1
    assert proc.returncode == 0
    assert proc.stdout.count("skip every run on model gpt2") + proc.stderr.count("skip every run on model gpt2") == 1
    assert "0 run" in proc.stdout and "0 failed" in proc.stdout


def test_one_run_defaults_to_the_best_device_and_the_suite_to_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from bench.cli import main
    from bench.zoo import best_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert best_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert best_device() == "cpu"  # never MPS unasked: ACDC keeps its tau sweep in float64
    seen: list[str] = []
    monkeypatch.setattr("bench.runner.execute", lambda request, root: seen.append(request.device) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["run", "--method", "random", "--task", "tracr-reverse", "--results-dir", str(tmp_path)])
    suite = ["run", "--all", "--methods", "random", "--tasks", "tracr-reverse", "--stability", "none"]
    main([*suite, "--results-dir", str(tmp_path)])
    main([*suite, "--device", "auto", "--results-dir", str(tmp_path)])
    n = (len(seen) - 1) // 2  # the one run, then each run of the plan twice
    assert n >= 1 and seen == ["auto"] + ["cpu"] * n + ["auto"] * n
