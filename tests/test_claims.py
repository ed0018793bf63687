"""The papers' claims: verdicts computed from constructed result sets where each claim holds,
fails, or lacks the runs it needs."""

from __future__ import annotations

import pytest

from bench.claims import FAILS, HOLDS, MISSING, NOT_APPLICABLE, check_claims
from bench.report_claims import claims_html
from bench.results import RunKey, RunResult


def make_result(
    task: str,
    method: str,
    *,
    seed: int = 0,
    auc: float = 0.5,
    edges_09: int | None = None,
    roc: float | None = None,
    no_signal: bool = False,
    variant: dict | None = None,
) -> RunResult:
    """A result carrying only the scores the claims read; everything else a placeholder."""
    evaluation: dict = {"faithfulness": {"faithfulness_auc": auc, "no_signal": no_signal}}
    if edges_09 is not None:
        evaluation["faithful_size"] = [
            {"threshold": 0.9, "edges": edges_09, "fraction": edges_09 / 100, "bracket": None}
        ]
    if roc is not None:
        evaluation["ground_truth"] = {"detectable": {"edge": {"roc_auc": roc}}}
    return RunResult(
        key=RunKey(task, task, method, "zero", seed, 10, seed, "0"),
        edge_scores={},
        n_examples=10,
        metric="m",
        options={},
        variant=variant or {},
        wall_time_s=0.0,
        peak_memory_mb=0.0,
        versions={},
        git_commit="",
        cdbench_version="",
        machine={},
        data_fingerprint="",
        model_identity={},
        dtype="float32",
        device="cpu",
        higher_is_better={},
        evaluation=evaluation,
    )


def verdicts(results: list[RunResult]) -> dict[str, dict[str, str]]:
    """claim name -> task -> outcome."""
    return {c.claim.name: {s[0]: v.outcome for s, v in c.verdicts.items()} for c in check_claims(results)}


def test_edge_pruning_fewer_edges_holds_fails_and_misses() -> None:
    results = [
        *(make_result("tracr-a", m, edges_09=e) for m, e in [("edge-pruning", 10), ("acdc", 12), ("eap", 30)]),
        *(make_result("tracr-b", m, edges_09=e) for m, e in [("edge-pruning", 12), ("acdc", 12), ("eap", 30)]),
        make_result("tracr-c", "edge-pruning", edges_09=5),
        make_result("tracr-c", "acdc", edges_09=9),
        make_result("tracr-c", "eap"),  # written before edges-for-faithfulness was stored
    ]
    got = verdicts(results)["edge-pruning-fewer-edges"]
    assert got == {"tracr-a": HOLDS, "tracr-b": FAILS, "tracr-c": MISSING}  # a tie is not "fewer"


def test_edge_pruning_tracr_recovery_only_on_tracr_tasks() -> None:
    results = [
        make_result("tracr-a", "edge-pruning", roc=1.0),
        make_result("tracr-b", "edge-pruning", roc=0.97),
        make_result("tracr-c", "edge-pruning"),
        make_result("ioi", "edge-pruning", roc=1.0),
    ]
    got = verdicts(results)["edge-pruning-recovers-tracr"]
    assert got == {"tracr-a": HOLDS, "tracr-b": FAILS, "tracr-c": MISSING, "ioi": NOT_APPLICABLE}


def test_eap_auc_against_acdc_uses_the_mean_over_seeds() -> None:
    results = [
        make_result("t1", "eap", roc=0.9),
        make_result("t1", "acdc", roc=0.9),  # equal: "at least" holds
        make_result("t2", "eap", roc=0.7, seed=0),
        make_result("t2", "eap", roc=0.9, seed=1),  # mean 0.8
        make_result("t2", "acdc", roc=0.85),
        make_result("t3", "acdc", roc=0.5),
    ]
    assert verdicts(results)["eap-auc-at-least-acdc"] == {"t1": HOLDS, "t2": FAILS, "t3": MISSING}


def test_eap_gp_faithfulness_ignores_variants_and_no_signal_runs() -> None:
    results = [
        make_result("t1", "eap-gp", auc=0.8),
        make_result("t1", "eap-ig-inputs", auc=0.7),
        make_result("t1", "eap-ig-inputs", auc=0.95, variant={"options": {"steps": 50}}),  # not the default run
        make_result("t2", "eap-gp", auc=0.6),
        make_result("t2", "eap-ig-inputs", auc=0.7),
        make_result("t3", "eap-gp", auc=0.9, no_signal=True),
        make_result("t3", "eap-ig-inputs", auc=0.1),
    ]
    assert verdicts(results)["eap-gp-more-faithful"] == {"t1": HOLDS, "t2": FAILS, "t3": MISSING}


def test_no_results_means_not_enough_results_everywhere() -> None:
    checks = check_claims([make_result("t1", "random")])
    assert all(c.summary() == MISSING for c in checks)


@pytest.mark.parametrize("flip", [False, True])
def test_rendered_section_follows_the_results(flip: bool) -> None:
    eap, acdc = (0.6, 0.9) if flip else (0.9, 0.6)
    text = claims_html(check_claims([make_result("t1", "eap", roc=eap), make_result("t1", "acdc", roc=acdc)]))
    assert "The papers' claims, checked" in text and "arXiv 2310.10348" in text
    row = next(r for r in text.split("<tr>") if "Syed" in r)
    cells = row.split("<td>")
    held, failed = cells[4], cells[5]
    assert ("t1, zero ablation" in failed) == flip and ("t1, zero ablation" in held) == (not flip)
    assert ("holds on 0 of 1" if flip else "holds on 1 of 1") in row
