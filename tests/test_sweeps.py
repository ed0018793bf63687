"""Sweeps split across jobs: `--shard I/N` partitions the plan exactly, `merge` combines the
shards' directories into what one run would have written (and refuses runs whose scores
disagree), and `status` reads a sweep's state from its results directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.report import leaderboard, load_results
from bench.results import read_result, record_failure
from bench.runner import execute
from bench.shards import Shard, parse_shard, shard_plan
from bench.suite import plan_suite
from bench.sweep_status import marker_path, running_marker, sweep_status

SWEEP = ["--methods", "exact-patching,eap,random", "--tasks", "tracr-xproportion"]
MACHINE_COLUMNS = ["time (s)", "peak memory (MB)"]  # differ between any two runs of one thing


def identity(request: object) -> str:
    return request.resolve().path(Path("/")).as_posix()  # type: ignore[attr-defined]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_shards_partition_the_plan_exactly(count: int) -> None:
    plan = plan_suite(methods=["eap", "random"])
    everything = [identity(r) for r in plan]
    assert len(set(everything)) == len(everything) > count
    parts = [[identity(r) for r in shard_plan(plan, Shard(i, count))] for i in range(1, count + 1)]
    union: set[str] = set()
    for part in parts:
        assert not union & set(part)  # pairwise disjoint
        union |= set(part)
    assert union == set(everything) and sum(map(len, parts)) == len(everything)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    # the same parts whatever order the plan was built in (each job builds its own)
    shuffled = plan[::-1]
    for i, part in enumerate(parts, start=1):
        assert {identity(r) for r in shard_plan(shuffled, Shard(i, count))} == set(part)


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2"])
def test_bad_shard_is_one_line(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--all", f"--shard={text}"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"got {text!r}" in error and "1 <= I <= N" in error
    assert parse_shard("2/4") == Shard(2, 4)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The small sweep run as two shards into two directories, and again as one plain loop over
    the plan (execute, not `run --all`) into a third."""
    root = tmp_path_factory.mktemp("sweep")
    dirs = {"shard1": root / "shard1", "shard2": root / "shard2", "one": root / "one"}
    for i in (1, 2):
        shard = ["--shard", f"{i}/2", "--stability", "none", "--results-dir", str(dirs[f"shard{i}"])]
        assert main(["run", "--all", *SWEEP, *shard]) == 0
    for request in plan_suite(methods=["exact-patching", "eap", "random"], tasks=["tracr-xproportion"]):
        execute(request, dirs["one"])
    return dirs


def _board(root: Path) -> pd.DataFrame:
    return leaderboard(load_results(root)).drop(columns=MACHINE_COLUMNS)


def test_merged_shards_give_the_leaderboard_of_one_run(sweep: dict[str, Path], tmp_path: Path) -> None:
    one = {p.relative_to(sweep["one"]) for p in sweep["one"].rglob("*.json")}
    halves = [{p.relative_to(sweep[s]) for p in sweep[s].rglob("*.json")} for s in ("shard1", "shard2")]
    assert halves[0] and halves[1] and not halves[0] & halves[1]
    assert not [p for s in ("shard1", "shard2") for p in sweep[s].rglob("*.running")]  # run --all removes them
    merged = tmp_path / "merged"
    assert main(["merge", str(sweep["shard1"]), str(sweep["shard2"]), "--into", str(merged)]) == 0
    assert {p.relative_to(merged) for p in merged.rglob("*.json")} == one
    pd.testing.assert_frame_equal(_board(merged), _board(sweep["one"]), atol=1e-6)
    # an identical duplicate (the same run from another shard) is fine, and changes nothing
    before = {p: p.read_bytes() for p in merged.rglob("*.json")}
    assert main(["merge", str(sweep["one"]), "--into", str(merged)]) == 0
    assert before == {p: p.read_bytes() for p in merged.rglob("*.json")}


def test_conflicting_duplicate_is_refused_with_both_files(
    sweep: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    shutil.copytree(sweep["shard1"], other)
    changed = sorted(other.rglob("*-seed*.json"))[0]
    data = json.loads(changed.read_text())
    edge = sorted(data["edge_scores"])[0]
    data["edge_scores"][edge] += 0.5
    changed.write_text(json.dumps(data))
    into = tmp_path / "into"
    capsys.readouterr()
    assert main(["merge", str(sweep["shard1"]), str(sweep["shard2"]), str(other), "--into", str(into)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    original = sweep["shard1"] / changed.relative_to(other)
    assert len(lines) == 1 and str(original) in lines[0] and str(changed) in lines[0] and edge in lines[0]
    assert not into.exists()  # nothing written before every conflict was ruled out


def test_status_counts_done_running_failed_and_remaining(
    sweep: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plan_suite(methods=["exact-patching", "eap", "random"], tasks=["tracr-xproportion"])
    assert len(plan) >= 5
    root = tmp_path / "partial"
    done_key = plan[0].resolve()
    target = done_key.path(root)
    target.parent.mkdir(parents=True)
    shutil.copyfile(done_key.path(sweep["one"]), target)
    assert read_result(target).key == done_key
    record_failure(plan[1].resolve(), RuntimeError("worker died"), root)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with running_marker(plan[2].resolve(), root), running_marker(plan[3].resolve(), root):
        stale = marker_path(plan[3].resolve(), root)
        payload = json.loads(stale.read_text())
        assert payload["pid"] == os.getpid()
        stale.write_text(json.dumps({**payload, "pid": dead.pid}))  # its process is gone: stale
        status = sweep_status(plan, root)
        assert len(status.done) == 1 and len(status.failed) == 1 and len(status.running) == 1
        assert len(status.remaining) == len(plan) - 3
        assert "worker died" in status.failed[0][1] and f"pid {os.getpid()}" in status.running[0][1]
        capsys.readouterr()
        assert main(["status", *SWEEP, "--results-dir", str(root)]) == 0
        out = capsys.readouterr().out
        assert f"{len(plan)} planned" in out and f"1 done, 1 running, 1 failed, {len(plan) - 3} remaining" in out
    assert not list(root.rglob("*.running"))


def test_check_refuses_to_update_the_baseline_from_one_shard(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--update", "--shard", "1/2"]) == 2
    assert "without --tasks or --methods or --shard" in capsys.readouterr().err
