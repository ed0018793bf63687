"""The leaderboard's stability section: each `bench stability` measurement found."""

from __future__ import annotations

import html

from bench.stability import DEFAULT_BOOTSTRAP, Agreement, Stability

STABILITY_TEXT = (
    "How stable each method's circuit is (python -m bench stability): the method rerun on B bootstrap resamples "
    f"of the examples (default B = {DEFAULT_BOOTSTRAP}) and, for a stochastic method, on B seeds; over every "
    "pair of reruns, the mean Jaccard overlap of the top-k circuits and the Spearman correlation of |scores|, "
    "with the 2.5-97.5 percentile range over the pairs in brackets (a spread: pairs share reruns)."
)


def _agreement(value: Agreement | None) -> str:
    return "-" if value is None else f"{value.mean:.3f} [{value.low:.3f}, {value.high:.3f}]"


def stability_html(stabilities: list[Stability]) -> str:
    """The section as HTML; empty when nothing was measured."""
    if not stabilities:
        return ""
    columns = ["task", "model", "ablation", "method", "examples", "B", "k", "Jaccard", "Spearman"]
    columns += ["Jaccard across seeds", "Spearman across seeds"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    rows = []
    for s in sorted(stabilities, key=lambda s: (s.task, s.model, s.ablation, s.method, s.bootstrap)):
        cells = [s.task, s.model, s.ablation, s.method, str(s.n_examples), str(s.bootstrap), f"{s.k} ({s.k_rule})"]
        cells += [_agreement(a) for a in (s.jaccard, s.spearman, s.seeds_jaccard, s.seeds_spearman)]
        rows.append(
            f'<tr data-task="{html.escape(s.task)}" data-method="{html.escape(s.method)}">'
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
            + "</tr>"
        )
    return (
        f"<h2>Stability</h2><p>{html.escape(STABILITY_TEXT)}</p>"
        f"<table class='sortable stability'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
