"""How stable a method's circuit is: the method rerun on B bootstrap resamples of the task's
examples (and, for a stochastic method, on B seeds of the full examples), compared pairwise.

Two agreements per pair of reruns, as the EAP-IG variance analyses ask of a benchmark
(arXiv 2510.00845): the Jaccard overlap of the top-k circuits (edges by |score|; k = the
ground truth's size, detectable under the ablation where recorded, else the full run's
0.9-faithful size, else 5% of the edges) and the Spearman rank correlation of the |scores|.
Reported as the mean over the B(B-1)/2 pairs with the 2.5-97.5 percentile range of the pairs
as its interval (pairs share reruns, so this is a spread, not a confidence interval).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.stats import spearmanr

from bench.result_schema import ResultFileError
from bench.results import DEFAULT_RESULTS_DIR

if TYPE_CHECKING:
    from bench.results import RunKey

DEFAULT_BOOTSTRAP = 3
"""Reruns per stability measurement (`bench stability`, `run --all`, `check --update`): three
resamples give three pairs for about three times one run's cost (six for a stochastic method,
which is also rerun on three seeds), what the offline suite affords on a CPU beside its runs."""


@dataclass(frozen=True)
class Agreement:
    """Mean of a pairwise agreement and the 2.5-97.5 percentile range over the pairs."""

    mean: float
    low: float
    high: float
    pairs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Agreement:
        array = np.asarray(values, dtype=float)
        if np.isnan(array).all():  # e.g. Spearman of rankings that are all ties
            return cls(float("nan"), float("nan"), float("nan"), len(array))
        low, high = np.nanpercentile(array, [2.5, 97.5])
        return cls(float(np.nanmean(array)), float(low), float(high), len(array))

    def text(self) -> str:
        """The mean and its range to three decimals: "0.812 [0.700, 0.900]" ("nan [nan, nan]" if undefined)."""
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def top_k_jaccard(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Intersection over union of the top-k edges by |score| of two rankings (ties by edge order)."""
    top_a = set(np.argsort(-np.abs(a), kind="stable")[:k].tolist())
    top_b = set(np.argsort(-np.abs(b), kind="stable")[:k].tolist())
    return len(top_a & top_b) / len(top_a | top_b)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of |scores|; NaN when either ranking is all ties (no order to compare)."""
    if np.ptp(np.abs(a)) == 0 or np.ptp(np.abs(b)) == 0:
        return float("nan")
    return float(spearmanr(np.abs(a), np.abs(b)).statistic)


NEAR_TIE_MARGIN = 1e-5
"""A top-k set whose k-th and (k+1)-th |score| lie closer than this (relative) could swap under
float reordering between CPUs (about 1e-7 relative in float32), so `bench check` does not guard
the Jaccard of such a cell: a swap moves it by a whole step. Exact ties are safe (edge order)."""


def boundary_margin(scores: np.ndarray, k: int) -> float:
    """Relative gap between the k-th and (k+1)-th largest |score|: 0 for an exact tie (broken by
    edge order on every machine), inf when nothing lies past k or the k-th is zero."""
    ordered = np.sort(np.abs(scores))[::-1]
    if k >= len(ordered) or ordered[k - 1] == 0:
        return math.inf
    return float((ordered[k - 1] - ordered[k]) / ordered[k - 1])


def smallest_near_tie(rankings: Sequence[np.ndarray], k: int) -> float | None:
    """The smallest nonzero boundary margin over `rankings`; None when every one is an exact tie
    or clear (nothing float noise could swap)."""
    margins = [m for m in (boundary_margin(r, k) for r in rankings) if 0 < m < math.inf]
    return min(margins) if margins else None


def pairwise(rankings: Sequence[np.ndarray], k: int) -> tuple[Agreement, Agreement]:
    """(Jaccard of top-k, Spearman) over every pair of `rankings`."""
    pairs = list(itertools.combinations(rankings, 2))
    if not pairs:
        raise ValueError("stability needs at least two reruns to compare")
    return (
        Agreement.of([top_k_jaccard(a, b, k) for a, b in pairs]),
        Agreement.of([rank_correlation(a, b) for a, b in pairs]),
    )


@dataclass(frozen=True)
class Stability:
    """A method's stability on one setting; `seeds_*` only for stochastic methods."""

    method: str
    task: str
    model: str
    ablation: str
    n_examples: int
    bootstrap: int
    seed: int
    k: int
    k_rule: str
    jaccard: Agreement
    spearman: Agreement
    seeds_jaccard: Agreement | None = None
    seeds_spearman: Agreement | None = None
    top_k_margin: float | None = None  # `smallest_near_tie` over every rerun; None: none (or not recorded)
    data_seed: int | None = None  # None, options_hash None and variant {}: written before they were recorded
    options_hash: str | None = None
    variant: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line: "Jaccard 0.812 [0.700, 0.900], Spearman 0.950 [0.940, 0.960][, across seeds ...]"."""
        parts = [f"{name} {value.text()}" for name, value in (("Jaccard", self.jaccard), ("Spearman", self.spearman))]
        if self.seeds_jaccard is not None and self.seeds_spearman is not None:
            parts.append(f"across seeds Jaccard {self.seeds_jaccard.text()}, Spearman {self.seeds_spearman.text()}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Unmeasured:
    """A cell `run --all` did not measure, and why in one line (a method that trains, a failure)."""

    method: str
    task: str
    model: str
    ablation: str
    seed: int
    bootstrap: int
    reason: str
    variant: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_indices(n: int, bootstrap: int, seed: int) -> list[torch.Tensor]:
    """B resamples of n examples with replacement, each seeded by (seed, b)."""
    return [torch.from_numpy(np.random.default_rng([seed, b]).integers(0, n, n)) for b in range(bootstrap)]


def circuit_size(n_edges: int, truth_size: int | None, faithful_size: int | None) -> tuple[int, str]:
    """k and the rule that chose it (see the module docstring)."""
    if truth_size:
        return truth_size, "ground-truth size"
    if faithful_size:
        return faithful_size, "edges for faithfulness 0.9 of the full-data run"
    return max(1, math.ceil(0.05 * n_edges)), "5% of the edges (no ground truth, 0.9 not reached)"


def measure(
    score: Callable[[Any, int], np.ndarray],
    data: Any,
    resamples: Sequence[torch.Tensor],
    seeds: Sequence[int] | None,
    k: int,
    run_seed: int = 0,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> tuple[tuple[Agreement, Agreement], tuple[Agreement, Agreement] | None, float | None]:
    """Agreements over the reruns: `score(data, seed)` gives one rerun's edge scores; the
    method runs with `run_seed` on `data` resampled by each of `resamples`, and, when `seeds`
    are given, on the full `data` once per seed. Last: the reruns' `smallest_near_tie`."""
    from bench.resample import resample_data

    boot = []
    for b, indices in enumerate(resamples):
        boot.append(score(resample_data(data, indices), run_seed))
        progress(f"stability: bootstrap resample {b + 1}/{len(resamples)} done")
    seeded, runs = None, []
    if seeds:
        for i, seed in enumerate(seeds):
            runs.append(score(data, seed))
            progress(f"stability: seed {seed} ({i + 1}/{len(seeds)}) done")
        seeded = pairwise(runs, k)
    return pairwise(boot, k), seeded, smallest_near_tie([*boot, *runs], k)


DEFAULT_STABILITY_DIR = DEFAULT_RESULTS_DIR.parent / "stability"
"""Beside the run results, not among them: readers of `results/runs` see run results only."""


def stability_dir(results_dir: Path) -> Path:
    """Where the stability files of the runs in `results_dir` go: `results/stability` for the
    default `results/runs` (beside it), `<results_dir>/stability` for any other folder (so
    every sweep, or shard, keeps its own)."""
    if results_dir.resolve() == DEFAULT_RESULTS_DIR.resolve():
        return DEFAULT_STABILITY_DIR
    return results_dir / "stability"


def stability_path(root: Path, key: RunKey, bootstrap: int, *, unmeasured: bool = False) -> Path:
    """`<task>/<model>/<method>/stability-<ablation>-s<S>-data<D>-n<N>-<options hash>-B<B>.json`
    under `root`: the measurement from run `key` (its seed, examples and options) with B reruns,
    `unmeasured-...` for the record of why it was not measured. No "-seed" in either name, so no
    glob for run results picks them up."""
    model = key.model.replace(":", "_").replace("/", "_")
    what = "unmeasured" if unmeasured else "stability"
    name = (
        f"{what}-{key.ablation}-s{key.seed}-data{key.data_seed}-n{key.n_examples}-{key.options_hash}-B{bootstrap}.json"
    )
    return root / key.task / model / key.method / name


def write_record(record: Stability | Unmeasured, path: Path) -> Path:
    """Write atomically; an existing file at `path` is replaced, nothing else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=1))
    tmp.replace(path)
    return path


def load_stabilities(root: Path = DEFAULT_STABILITY_DIR) -> list[Stability]:
    """Every stability file under `root` (none when it does not exist)."""
    found = []
    for path in sorted(root.rglob("stability-*.json")):
        try:
            data = json.loads(path.read_text())
            for name in ("jaccard", "spearman", "seeds_jaccard", "seeds_spearman"):
                data[name] = None if data[name] is None else Agreement(**data[name])
            found.append(Stability(**data))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ResultFileError(f"{path}: not a stability file written by `bench stability` ({err})") from None
    return found


def load_unmeasured(root: Path = DEFAULT_STABILITY_DIR) -> list[Unmeasured]:
    """Every record of a cell `run --all` did not measure under `root`, except those measured since."""
    found = []
    for path in sorted(root.rglob("unmeasured-*.json")):
        if path.with_name("stability-" + path.name.removeprefix("unmeasured-")).exists():
            continue
        try:
            found.append(Unmeasured(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError) as err:
            raise ResultFileError(f"{path}: not a record written by `run --all` ({err})") from None
    return found
