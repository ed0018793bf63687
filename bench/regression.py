"""Guarding scores against regression: a committed baseline of the default suite's headline
scores, and a comparison that names the method, task and metric that moved."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from bench.package_data import data_path
from bench.results import RunKey, RunResult
from bench.zoo.trained import TRAINED_MODELS
from methods import METHODS

BASELINE_PATH = data_path("results/baseline.json")
# metric -> higher is better
HEADLINE_METRICS: dict[str, bool] = {
    "faithfulness_auc": True,
    "cpr": True,
    "cmd": False,
    "roc_auc_full": True,
    "roc_auc_detectable": True,
}
DETERMINISTIC_TOLERANCE = 1e-4  # room for float reordering across machines, nothing more
STOCHASTIC_TOLERANCE = 0.05  # a seeded stochastic method may drift this much before it counts as worse
# Models trained on the user's machine (bench/zoo/trained) are reproducible bit for bit only on the same
# CPU and torch build; elsewhere float rounding in training can move a deterministic method's scores a little.
TRAINED_WEIGHTS_TOLERANCE = 0.02


@dataclass(frozen=True)
class Regression:
    run: str
    metric: str
    baseline: float
    fresh: float
    reason: str

    def __str__(self) -> str:
        return f"{self.run}: {self.metric} {self.reason} (baseline {self.baseline:.4f}, now {self.fresh:.4f})"


def key_label(key: RunKey) -> str:
    """A run's name in the baseline file."""
    return f"{key.method} on {key.task} ({key.model}, {key.ablation} ablation, seed {key.seed})"


def run_label(result: RunResult) -> str:
    return key_label(result.key)


def headline(result: RunResult) -> dict[str, float]:
    faith = result.evaluation["faithfulness"]
    scores = {"faithfulness_auc": faith["faithfulness_auc"], "cpr": faith["cpr"], "cmd": faith["cmd"]}
    for which in ("full", "detectable"):
        edge = result.evaluation.get("ground_truth", {}).get(which, {}).get("edge")
        if edge is not None:
            scores[f"roc_auc_{which}"] = edge["roc_auc"]
    return scores


def baseline_payload(results: list[RunResult]) -> dict[str, dict[str, object]]:
    return {
        run_label(r): {
            "method": r.key.method,
            "stochastic": METHODS.get(r.key.method).stochastic,
            "trained_weights": r.key.model in TRAINED_MODELS,
            **headline(r),
        }
        for r in sorted(results, key=run_label)
    }


def write_baseline(results: list[RunResult], path: Path = BASELINE_PATH) -> Path:
    path.write_text(json.dumps(baseline_payload(results), indent=1, sort_keys=True) + "\n")
    return path


def compare(results: list[RunResult], baseline: dict[str, dict[str, object]]) -> list[Regression]:
    """Every way the fresh results fall short of the baseline."""
    fresh = baseline_payload(results)
    problems: list[Regression] = []
    for label, expected in sorted(baseline.items()):
        if label not in fresh:
            problems.append(Regression(label, "-", math.nan, math.nan, "is in the baseline but was not produced"))
            continue
        for metric, higher_is_better in HEADLINE_METRICS.items():
            if metric not in expected:
                continue
            old, new = float(expected[metric]), float(fresh[label].get(metric, math.nan))
            if math.isnan(old) and math.isnan(new):
                continue
            if expected["stochastic"]:
                worse = (old - new) if higher_is_better else (new - old)
                if not worse <= STOCHASTIC_TOLERANCE:
                    problems.append(Regression(label, metric, old, new, f"dropped by more than {STOCHASTIC_TOLERANCE}"))
            elif expected.get("trained_weights"):
                if not abs(new - old) <= TRAINED_WEIGHTS_TOLERANCE:
                    reason = f"changed by more than {TRAINED_WEIGHTS_TOLERANCE} (model trained here)"
                    problems.append(Regression(label, metric, old, new, reason))
            elif not abs(new - old) <= DETERMINISTIC_TOLERANCE:
                problems.append(Regression(label, metric, old, new, "changed in a deterministic run"))
    return problems
