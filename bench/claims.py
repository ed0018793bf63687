"""The seed papers' headline claims, checked against the results present.

Each claim names its source and a per-setting test over the default runs (no variant) of the
methods it compares, each score the mean over that method's seeds. A setting is a (task,
model, ablation); its verdict is "holds", "fails" or "not enough results" (a method not run,
a score not recorded, or a run without signal), or "not applicable" (a Tracr-only claim on
another task). Nothing here is typed in: every verdict is
computed from the result files each time the report is rendered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bench.faithful_size import size_for
from bench.results import RunResult

HOLDS, FAILS, MISSING, NOT_APPLICABLE = "holds", "fails", "not enough results", "not applicable"
Setting = tuple[str, str, str]  # task, model, ablation
Scores = dict[str, dict[str, float]]  # method -> score name -> mean over seeds (NaN when absent)


@dataclass(frozen=True)
class Verdict:
    """A claim's outcome on one setting, with the numbers it was decided on."""

    outcome: str
    detail: str


@dataclass(frozen=True)
class Claim:
    """A paper's claim, its source, and the test that decides it on one setting."""

    name: str
    statement: str
    source: str
    decide: Callable[[Setting, Scores], Verdict]


@dataclass
class ClaimCheck:
    """A claim's verdicts on every setting of the results."""

    claim: Claim
    verdicts: dict[Setting, Verdict] = field(default_factory=dict)

    def settings(self, outcome: str) -> list[Setting]:
        return [s for s, v in sorted(self.verdicts.items()) if v.outcome == outcome]

    def summary(self) -> str:
        held, failed = len(self.settings(HOLDS)), len(self.settings(FAILS))
        if held + failed == 0:
            return MISSING
        return f"holds on {held} of {held + failed} settings with results"


def _score_names(result: RunResult) -> dict[str, float]:
    """The scores the claims read from one result; NaN where absent or without signal."""
    faith = result.evaluation.get("faithfulness", {})
    no_signal = bool(faith.get("no_signal", False))
    edges, _ = size_for(result.evaluation, 0.9)
    truth = result.evaluation.get("ground_truth", {})
    roc = truth.get("detectable", truth.get("full", {})).get("edge", {}).get("roc_auc", np.nan)
    return {
        "faithfulness_auc": np.nan if no_signal else faith.get("faithfulness_auc", np.nan),
        "edges_for_0.9": np.nan if no_signal or edges is None else float(edges),
        "roc_auc": np.nan if roc is None else float(roc),
    }


def settings_scores(results: list[RunResult]) -> dict[Setting, Scores]:
    """Per setting, each method's default-variant scores, the mean over seeds. A setting where
    any seed lacks a score gets NaN for it (a missing seed is not averaged away)."""
    collected: dict[Setting, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        if result.variant:
            continue
        setting = (result.key.task, result.key.model, result.key.ablation)
        collected[setting][result.key.method].append(_score_names(result))
    return {
        setting: {
            method: {name: float(np.mean([row[name] for row in rows])) for name in rows[0]}
            for method, rows in methods.items()
        }
        for setting, methods in collected.items()
    }


def _needed(scores: Scores, methods: tuple[str, ...], name: str) -> dict[str, float] | None:
    values = {m: scores.get(m, {}).get(name, np.nan) for m in methods}
    return None if any(np.isnan(v) for v in values.values()) else values


def _shown(values: dict[str, float]) -> str:
    return ", ".join(f"{m} {v:.4g}" for m, v in values.items())


def fewer_edges(setting: Setting, scores: Scores) -> Verdict:
    values = _needed(scores, ("edge-pruning", "acdc", "eap"), "edges_for_0.9")
    if values is None:
        return Verdict(MISSING, "edges for f>=0.9 of edge-pruning, acdc and eap needed")
    holds = values["edge-pruning"] < min(values["acdc"], values["eap"])
    return Verdict(HOLDS if holds else FAILS, "edges for f>=0.9: " + _shown(values))


def perfect_tracr_recovery(setting: Setting, scores: Scores) -> Verdict:
    if not setting[0].startswith("tracr-"):
        return Verdict(NOT_APPLICABLE, "not a Tracr task")
    values = _needed(scores, ("edge-pruning",), "roc_auc")
    if values is None:
        return Verdict(MISSING, "edge-pruning's ROC AUC against the ground truth needed")
    return Verdict(HOLDS if values["edge-pruning"] >= 1.0 - 1e-9 else FAILS, "ROC AUC: " + _shown(values))


def eap_auc_at_least_acdc(setting: Setting, scores: Scores) -> Verdict:
    values = _needed(scores, ("eap", "acdc"), "roc_auc")
    if values is None:
        return Verdict(MISSING, "ROC AUC of eap and acdc against a ground truth needed")
    return Verdict(HOLDS if values["eap"] >= values["acdc"] else FAILS, "ROC AUC: " + _shown(values))


def eap_gp_more_faithful(setting: Setting, scores: Scores) -> Verdict:
    values = _needed(scores, ("eap-gp", "eap-ig-inputs"), "faithfulness_auc")
    if values is None:
        return Verdict(MISSING, "faithfulness AUC (with signal) of eap-gp and eap-ig-inputs needed")
    return Verdict(
        HOLDS if values["eap-gp"] > values["eap-ig-inputs"] else FAILS, "faithfulness AUC: " + _shown(values)
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "edge-pruning-fewer-edges",
        "Edge Pruning needs fewer edges than ACDC and EAP for the same faithfulness "
        "(here: edges for faithfulness 0.9, edge-pruning < both acdc and eap).",
        "Bhaskar, Wettig, Friedman & Chen 2024, 'Finding Transformer Circuits with Edge Pruning' "
        "(arXiv 2406.16778), abstract: circuits with 'less than half the number of edges ... while being "
        "equally faithful'",
        fewer_edges,
    ),
    Claim(
        "edge-pruning-recovers-tracr",
        "Edge Pruning recovers the Tracr ground truth perfectly (here: edge ROC AUC 1.0 against the ground "
        "truth detectable under the run's ablation).",
        "Bhaskar et al. 2024 (arXiv 2406.16778), abstract: it 'perfectly recovers the ground-truth circuits "
        "in two models compiled with Tracr'",
        perfect_tracr_recovery,
    ),
    Claim(
        "eap-auc-at-least-acdc",
        "EAP's ROC AUC of ground-truth recovery is at least ACDC's (here: edge ROC AUC, detectable ground "
        "truth where recorded, else the full one).",
        "Syed, Rager & Conmy 2023, 'Attribution Patching Outperforms Automated Circuit Discovery' "
        "(arXiv 2310.10348), abstract: 'greater AUC from circuit recovery than other methods'",
        eap_auc_at_least_acdc,
    ),
    Claim(
        "eap-gp-more-faithful",
        "EAP-GP is more faithful than EAP-IG (here: faithfulness AUC, eap-gp > eap-ig-inputs).",
        "Zhang et al. 2025, 'EAP-GP: Mitigating Saturation Effect in Gradient-based Automated Circuit "
        "Identification' (arXiv 2502.06852): faithfulness 'improvements up to 17.7%'",
        eap_gp_more_faithful,
    ),
)


def check_claims(results: list[RunResult], claims: tuple[Claim, ...] = CLAIMS) -> list[ClaimCheck]:
    """Every claim decided on every setting of `results`."""
    scores = settings_scores(results)
    return [
        ClaimCheck(claim, {setting: claim.decide(setting, scores[setting]) for setting in sorted(scores)})
        for claim in claims
    ]
