"""The stability phase of `run --all` and `check`: which cells of a plan get a stability
measurement, which are left out and why, and measuring them one after another.

A cell is one method on one task, model and ablation with one variant (options, examples):
every seed of a stochastic method is the same cell. Its measurement reruns the cell's run with
the lowest seed (`bench.stability_run`); in a sharded plan the cell belongs to the shard that
holds that run, so each cell is measured by exactly one shard.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from bench.regression import STABILITY_PREFIX, key_label
from bench.results import RunKey, canonical
from bench.runner import RunRequest
from bench.stability import Unmeasured, stability_path, write_record
from methods import METHODS

STABILITY_CHOICES = ("cheap", "all", "none")
"""`--stability`: cheap (default: every method whose reruns are cheap, see
`MethodSpec.costly_reruns`), all (the training methods too), none."""


@dataclass(frozen=True)
class Cell:
    """One cell of a plan: the run whose seed and examples its measurement reruns, and why it
    is left out (None when it is measured)."""

    request: RunRequest
    key: RunKey
    skip: str | None = None

    @property
    def label(self) -> str:
        """The cell's name in the baseline: "stability: eap on tracr-reverse (tracr-reverse, ...)"."""
        return STABILITY_PREFIX + key_label(self.key, self.request.variant())


def plan_cells(plan: list[RunRequest], mine: Iterable[RunRequest] | None = None, which: str = "cheap") -> list[Cell]:
    """The cells of `plan`, in its order; with `mine` (a shard's part of `plan`), only those whose
    lowest-seed run is in it. `which` is one of `STABILITY_CHOICES`."""
    if which not in STABILITY_CHOICES:
        raise ValueError(f"stability must be one of {', '.join(STABILITY_CHOICES)}, got {which!r}")
    if which == "none":
        return []
    first: dict[tuple[object, ...], tuple[RunRequest, RunKey]] = {}
    for request in plan:
        key = request.resolve()
        task_options = json.dumps(canonical(request.task_options or {}))
        cell = (key.task, key.model, key.method, key.ablation, key.options_hash, key.n_examples, request.data_seed)
        cell += (task_options,)
        if cell not in first or key.seed < first[cell][1].seed:
            first[cell] = (request, key)
    kept = None if mine is None else {request.resolve() for request in mine}
    cells = []
    for request, key in first.values():
        if kept is None or key in kept:
            reason = METHODS.get(key.method).costly_reruns if which == "cheap" else None
            cells.append(Cell(request, key, reason))
    return cells


@dataclass
class PhaseCounts:
    measured: int = 0
    reused: int = 0
    left_out: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return (
            f"stability: {self.measured} measured, {self.reused} already there, {self.left_out} left out "
            f"(reason recorded, or model unavailable), {self.failed} failed"
        )


def unmeasured_record(cell: Cell, bootstrap: int, reason: str) -> Unmeasured:
    """The record that `cell` was not measured with `bootstrap` reruns, and why."""
    key, variant = cell.key, cell.request.variant()
    return Unmeasured(key.method, key.task, key.model, key.ablation, key.seed, bootstrap, reason, variant)


def run_stability(
    cells: list[Cell],
    bootstrap: int,
    root: Path,
    *,
    force: bool = False,
    available: Callable[[str], bool] = lambda model: True,
    write: Callable[[str], None] = tqdm.write,
) -> PhaseCounts:
    """Measure each cell with `bootstrap` reruns into `root`, reusing a measurement already
    there unless `force`; a left-out cell gets a record of its reason, a failure one line and a
    record (the next run tries it again), and the rest go on. Cells on a model that
    `available` refuses are passed over (the runs phase has said why)."""
    from bench.stability_run import measure_stability

    counts = PhaseCounts()
    for cell in tqdm(cells, desc="stability", unit="cell"):
        path = stability_path(root, cell.key, bootstrap)
        note = stability_path(root, cell.key, bootstrap, unmeasured=True)
        if path.exists() and not force:
            counts.reused += 1
        elif cell.skip is not None:
            write_record(unmeasured_record(cell, bootstrap, cell.skip), note)
            counts.left_out += 1
        elif not available(cell.key.model):
            counts.left_out += 1
        else:
            try:
                stability = measure_stability(cell.request, bootstrap, progress=lambda _: None)
            except Exception as err:
                write_record(unmeasured_record(cell, bootstrap, f"failed: {type(err).__name__}: {err}"), note)
                write(f"stability failed for {cell.label}: {type(err).__name__}: {err}")
                counts.failed += 1
                continue
            write_record(stability, path)
            note.unlink(missing_ok=True)
            write(f"{cell.label}, B={bootstrap}: {stability.summary()}")
            counts.measured += 1
    return counts
