"""The leaderboard's stability: two columns of the table (each cell's top-k Jaccard and Spearman
with their range) and a section listing every measurement and every cell left unmeasured."""

from __future__ import annotations

import html

import pandas as pd

from bench.report_table import data_attributes, table_html, text_cell
from bench.results import variant_text
from bench.stability import DEFAULT_BOOTSTRAP, Agreement, Stability, Unmeasured

STABILITY_TEXT = (
    "How stable each method's circuit is (python -m bench run --all measures every cell it runs, or python -m "
    "bench stability one): the method rerun on B bootstrap resamples of the examples (default B = "
    f"{DEFAULT_BOOTSTRAP}) and, for a stochastic method, on B seeds; over every pair of reruns, the mean Jaccard "
    "overlap of the top-k circuits and the Spearman correlation of |scores|, with the 2.5-97.5 percentile range "
    "over the pairs in brackets (a spread: pairs share reruns). '-' where undefined (Spearman of rankings that are "
    "all ties) or not measured."
)
JACCARD_COLUMN, SPEARMAN_COLUMN = "stability: top-k Jaccard", "stability: Spearman"
NOT_MEASURED = "not measured"
RANDOM_METHOD = "random"
RANDOM_NOTE = (
    "random: its scores ignore the examples, so its agreement across resamples (here and in the table's stability "
    "columns) is 1.0 by construction; only its across-seeds figures carry information."
)


def _agreement(value: Agreement | None) -> str:
    """`Agreement.text`, or '-' where nothing was measured or it is undefined (NaN: no order to compare)."""
    return "-" if value is None or value.mean != value.mean else value.text()


def _cell(record: Stability | Unmeasured, default_variant: str) -> tuple[str, str, str, str, str]:
    return (record.task, record.model, record.ablation, record.method, variant_text(record.variant) or default_variant)


def stability_columns(
    board: pd.DataFrame, stabilities: list[Stability], unmeasured: list[Unmeasured], default_variant: str
) -> pd.DataFrame:
    """`board` (one row per task, model, ablation, method and variant) with the two stability
    columns: the measurement with the largest B, "not measured" where a reason was recorded,
    '-' where nothing is known."""
    if board.empty or not (stabilities or unmeasured):
        return board
    shown: dict[tuple[str, str, str, str, str], tuple[str, str]] = {}
    for record in unmeasured:
        shown[_cell(record, default_variant)] = (NOT_MEASURED, NOT_MEASURED)
    for s in sorted(stabilities, key=lambda s: (s.bootstrap, -s.seed)):
        shown[_cell(s, default_variant)] = (_agreement(s.jaccard), _agreement(s.spearman))
    keys = zip(board["task"], board["model"], board["ablation"], board["method"], board["variant"], strict=True)
    cells = [shown.get(key, ("-", "-")) for key in keys]
    return board.assign(**{JACCARD_COLUMN: [c[0] for c in cells], SPEARMAN_COLUMN: [c[1] for c in cells]})


def stability_html(stabilities: list[Stability], unmeasured: list[Unmeasured] | None = None) -> str:
    """The section as HTML; empty when nothing was measured or left out."""
    if not stabilities and not unmeasured:
        return ""
    parts = [f"<h2>Stability</h2><p>{html.escape(STABILITY_TEXT)}</p>"]
    if stabilities:
        columns = ["task", "model", "ablation", "method", "variant", "examples", "B", "k", "Jaccard", "Spearman"]
        columns += ["Jaccard across seeds", "Spearman across seeds"]
        rows = []
        for s in sorted(stabilities, key=lambda s: (s.task, s.model, s.ablation, s.method, s.bootstrap)):
            cells = [s.task, s.model, s.ablation, s.method, variant_text(s.variant) or "default", str(s.n_examples)]
            cells += [str(s.bootstrap), f"{s.k} ({s.k_rule})"]
            cells += [_agreement(a) for a in (s.jaccard, s.spearman, s.seeds_jaccard, s.seeds_spearman)]
            rows.append((data_attributes({"task": s.task, "method": s.method}), map(text_cell, cells)))
        parts.append(table_html(columns, rows, "class='sortable stability'"))
        if any(s.method == RANDOM_METHOD for s in stabilities):
            parts.append(f"<p>{html.escape(RANDOM_NOTE)}</p>")
    if unmeasured:
        parts.append("<p>Cells not measured, and why:</p>")
        columns = ["task", "model", "ablation", "method", "variant", "B", "why not"]
        rows = []
        for u in sorted(unmeasured, key=lambda u: (u.task, u.model, u.ablation, u.method, u.bootstrap)):
            cells = [u.task, u.model, u.ablation, u.method, variant_text(u.variant) or "default", str(u.bootstrap)]
            rows.append((data_attributes({"task": u.task, "method": u.method}), map(text_cell, [*cells, u.reason])))
        parts.append(table_html(columns, rows, "class='sortable stability-unmeasured'"))
    return "".join(parts)
