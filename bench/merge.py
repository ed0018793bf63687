"""Combine results directories written by separate shards of a sweep into one.

A run found in several directories must carry the same scores in each (a rerun of a
deterministic method on another machine is fine); two files for one run with different scores
are a conflict, and nothing is written until every conflict has been ruled out, so a refused
merge leaves the target as it was. Each directory's stability folder (`bench.stability.stability_dir`)
is copied into the target's: a sharded sweep measures each cell in one shard only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.results import RunResult, read_result
from bench.stability import stability_dir

# Scores equal within this are the same run's scores (float noise between machines).
SCORE_TOLERANCE = 1e-6


class MergeConflict(ValueError):
    """Two result files for one run disagree on its scores."""


@dataclass(frozen=True)
class MergeSummary:
    copied: int
    already_there: int
    failures_copied: int
    stability_copied: int = 0


def _result_files(root: Path) -> dict[Path, Path]:
    """Result files under `root` by their path relative to it (the run's identity)."""
    found = sorted(root.rglob("*-seed*.json"))
    return {path.relative_to(root): path for path in found if not path.name.endswith(".failed.json")}


def _failure_files(root: Path) -> dict[Path, Path]:
    return {path.relative_to(root): path for path in sorted(root.rglob("*.failed.json"))}


def _difference(a: RunResult, b: RunResult) -> str | None:
    """Why two results of one run are not the same scores, or None when they are."""
    if a.key != b.key:
        return f"keys differ ({a.key} vs {b.key})"
    if set(a.edge_scores) != set(b.edge_scores):
        return "they score different edges"
    for edge, score in a.edge_scores.items():
        if abs(score - b.edge_scores[edge]) > SCORE_TOLERANCE:
            return f"edge {edge} scores {score:.6g} vs {b.edge_scores[edge]:.6g}"
    faith_a, faith_b = a.evaluation["faithfulness"], b.evaluation["faithfulness"]
    for name in ("faithfulness_auc", "cpr", "cmd"):
        if abs(faith_a[name] - faith_b[name]) > SCORE_TOLERANCE:
            return f"{name} {faith_a[name]:.6g} vs {faith_b[name]:.6g}"
    return None


def _copy_atomically(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge_results(sources: list[Path], into: Path) -> MergeSummary:
    """Copy every result of `sources` into `into` (which may be one of them).

    Raises:
        MergeConflict: one line naming both files of the first run whose scores disagree.
        FileNotFoundError: a source that is not a directory.
    """
    for source in sources:
        if not source.is_dir():
            raise FileNotFoundError(f"{source}: not a results directory")
    chosen: dict[Path, tuple[Path, RunResult]] = {}
    for root in [into, *sources] if into.is_dir() else sources:
        for relative, path in _result_files(root).items():
            result = read_result(path)
            if relative in chosen:
                first, earlier = chosen[relative]
                if first.resolve() != path.resolve():
                    why = _difference(earlier, result)
                    if why:
                        raise MergeConflict(f"conflicting results for one run: {first} and {path}: {why}")
                continue
            chosen[relative] = (path, result)
    copied = already = 0
    for relative, (path, _) in chosen.items():
        target = into / relative
        if target.exists():
            already += 1
            continue
        _copy_atomically(path, target)
        copied += 1
    # a failure record matters only where no shard finished the run
    failures = 0
    for source in sources:
        for relative, path in _failure_files(source).items():
            result_name = relative.with_name(relative.name.removesuffix(".failed.json") + ".json")
            target = into / relative
            if result_name in chosen or target.exists():
                continue
            _copy_atomically(path, target)
            failures += 1
    return MergeSummary(copied, already, failures, _merge_stability(sources, into))


def _merge_stability(sources: list[Path], into: Path) -> int:
    """Copy the stability files of each source's stability folder that `into`'s lacks."""
    target_root = stability_dir(into)
    copied = 0
    for source in sources:
        root = stability_dir(source)
        if not root.is_dir() or (target_root.is_dir() and root.samefile(target_root)):
            continue
        for path in sorted([*root.rglob("stability-*.json"), *root.rglob("unmeasured-*.json")]):
            target = target_root / path.relative_to(root)
            if not target.exists():
                _copy_atomically(path, target)
                copied += 1
    return copied
