"""Guarding scores against regression: a committed baseline of the default suite's headline
scores (and its cells' stability, under "stability: <run label>"), and a comparison that names
the method, task and metric that moved."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.faithful_size import size_for
from bench.package_data import data_path
from bench.results import RunKey, RunResult, variant_text
from bench.scoring import HIGHER_IS_BETTER
from bench.stability import NEAR_TIE_MARGIN
from methods import METHODS

if TYPE_CHECKING:
    from bench.stability import Stability

BASELINE_PATH = data_path("results/baseline.json")
# headline metric -> higher is better (the directions are scoring's, `HIGHER_IS_BETTER`)
HEADLINE_METRICS: dict[str, bool] = {
    "faithfulness_auc": HIGHER_IS_BETTER["faithfulness_auc"],
    "cpr": HIGHER_IS_BETTER["cpr"],
    "cmd": HIGHER_IS_BETTER["cmd"],
    "roc_auc_full": HIGHER_IS_BETTER["roc_auc"],
    "roc_auc_detectable": HIGHER_IS_BETTER["roc_auc"],
    "mib_cpr": HIGHER_IS_BETTER["cpr"],
    "mib_cmd": HIGHER_IS_BETTER["cmd"],
    "edges_fraction_for_0.9": HIGHER_IS_BETTER["edges_fraction_for_0.9"],
}
# a stability measurement's guarded means (`bench.stability`) -> higher is better (more agreement)
STABILITY_METRICS: dict[str, bool] = {
    "jaccard": True,
    "spearman": True,
    "seeds_jaccard": True,
    "seeds_spearman": True,
}
JACCARD_METRICS = ("jaccard", "seeds_jaccard")
"""Left out of a cell's baseline entry when its top-k boundary is a near-tie (`NEAR_TIE_MARGIN`)."""
STABILITY_PREFIX = "stability: "
"""Baseline labels of stability entries: the prefix, then the label of the run it reruns."""
DETERMINISTIC_TOLERANCE = 1e-4  # room for float reordering across machines, nothing more
STABILITY_SPEARMAN_TOLERANCE = 1e-3
"""A deterministic cell's Spearman ranks every edge, those whose scores are float noise too
(exact patching on induction: edges whose effect is ~1e-7 of the largest), so summation order
alone moves it: the sparse masked forward moved one by 1.0e-4. Real changes are far larger."""


def deterministic_tolerance(metric: str) -> float:
    """How far a deterministic run's `metric` may move before `check` calls it a change."""
    return STABILITY_SPEARMAN_TOLERANCE if metric in ("spearman", "seeds_spearman") else DETERMINISTIC_TOLERANCE


STOCHASTIC_TOLERANCE = 0.05  # a seeded stochastic method may drift this much before it counts as worse


@dataclass(frozen=True)
class Regression:
    run: str
    metric: str
    baseline: float
    fresh: float
    reason: str

    def __str__(self) -> str:
        return f"{self.run}: {self.metric} {self.reason} (baseline {self.baseline:.4f}, now {self.fresh:.4f})"


def key_label(key: RunKey, variant: dict[str, object] | None = None) -> str:
    """Names a run in the baseline: "eap on tracr-reverse (tracr-reverse, zero ablation, seed 0)",
    with what a variant sets away from the defaults after a semicolon ("...seed 0; steps=20,
    100 examples, data seed 3)"), so the default suite's labels stay short and variants differ."""
    text = variant_text(variant or {})
    setting = f"{key.model}, {key.ablation} ablation, seed {key.seed}" + (f"; {text}" if text else "")
    return f"{key.method} on {key.task} ({setting})"


def run_label(result: RunResult) -> str:
    return key_label(result.key, result.variant)


def headline(result: RunResult) -> dict[str, float]:
    """The guarded scores of a result: CDBench's areas, MIB's CPR/CMD exactly as MIB computes
    them, the fraction of edges a 0.9-faithful circuit needs (NaN when no circuit on the grid
    reaches it, so a run that starts or stops reaching it counts as a change) and ROC AUCs."""
    faith = result.evaluation["faithfulness"]
    scores = {"faithfulness_auc": faith["faithfulness_auc"], "cpr": faith["cpr"], "cmd": faith["cmd"]}
    mib = result.evaluation.get("mib")
    if mib is not None:
        scores["mib_cpr"], scores["mib_cmd"] = mib["cpr"], mib["cmd"]
    if "faithful_size" in result.evaluation:
        _, fraction = size_for(result.evaluation, 0.9)
        scores["edges_fraction_for_0.9"] = math.nan if fraction is None else fraction
    for which in ("full", "detectable"):
        edge = result.evaluation.get("ground_truth", {}).get(which, {}).get("edge")
        if edge is not None:
            scores[f"roc_auc_{which}"] = edge["roc_auc"]
    return scores


def baseline_payload(results: list[RunResult]) -> dict[str, dict[str, object]]:
    """Headline scores by run label; two results with one label are an error, not an overwrite."""
    payload: dict[str, dict[str, object]] = {}
    for r in sorted(results, key=run_label):
        label = run_label(r)
        if label in payload:
            raise ValueError(
                f"two results share the run label {label!r}; each run in a baseline must be its own variant"
            )
        payload[label] = {
            "method": r.key.method,
            "stochastic": METHODS.get(r.key.method).stochastic,
            **headline(r),
        }
    return payload


def stability_payload(measured: dict[str, Stability]) -> dict[str, dict[str, object]]:
    """Baseline entries of stability measurements by label (`STABILITY_PREFIX` + run label): B
    and the mean of each agreement (null where undefined, e.g. Spearman of all-ties rankings)."""
    payload: dict[str, dict[str, object]] = {}
    for label, stability in sorted(measured.items()):
        entry: dict[str, object] = {
            "method": stability.method,
            "stochastic": METHODS.get(stability.method).stochastic,
            "bootstrap": stability.bootstrap,
        }
        near_tie = stability.top_k_margin is not None and stability.top_k_margin < NEAR_TIE_MARGIN
        for metric in STABILITY_METRICS:
            agreement = getattr(stability, metric)
            if agreement is None or (near_tie and metric in JACCARD_METRICS):
                continue
            entry[metric] = None if math.isnan(agreement.mean) else agreement.mean
        if near_tie:
            entry["jaccard_not_guarded"] = (
                f"top-k boundary {stability.top_k_margin:.1e} apart (relative): float noise between CPUs could swap it"
            )
        payload[label] = entry
    return payload


def write_baseline(
    results: list[RunResult], path: Path = BASELINE_PATH, stabilities: dict[str, Stability] | None = None
) -> Path:
    payload = {**baseline_payload(results), **stability_payload(stabilities or {})}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


def _number(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def compare(
    results: list[RunResult],
    baseline: dict[str, dict[str, object]],
    stabilities: dict[str, Stability] | None = None,
) -> list[Regression]:
    """Every way the fresh results (and stability measurements, by label) fall short of the baseline."""
    fresh = {**baseline_payload(results), **stability_payload(stabilities or {})}
    problems: list[Regression] = []
    for label, expected in sorted(baseline.items()):
        if label not in fresh:
            problems.append(Regression(label, "-", math.nan, math.nan, "is in the baseline but was not produced"))
            continue
        for metric, higher_is_better in {**HEADLINE_METRICS, **STABILITY_METRICS}.items():
            if metric not in expected:
                continue
            old, new = _number(expected[metric]), _number(fresh[label].get(metric))
            if math.isnan(old) and math.isnan(new):
                continue
            if expected["stochastic"]:
                worse = (old - new) if higher_is_better else (new - old)
                if not worse <= STOCHASTIC_TOLERANCE:
                    problems.append(Regression(label, metric, old, new, f"dropped by more than {STOCHASTIC_TOLERANCE}"))
            elif not abs(new - old) <= (tolerance := deterministic_tolerance(metric)):
                problems.append(
                    Regression(label, metric, old, new, f"changed by more than {tolerance:g} in a deterministic run")
                )
    return problems
