"""The leaderboard's "papers' claims, checked" section: each claim with its source, where it
holds, where it fails (with the numbers it was decided on) and where results are missing."""

from __future__ import annotations

import html

from bench.claims import FAILS, HOLDS, MISSING, ClaimCheck, Setting

CLAIMS_TEXT = (
    "Each seed paper's headline claim, decided on every task, model and ablation of the results present "
    "from the default runs (mean over seeds); computed from the result files each time this page is "
    "rendered. 'not enough results': a method the claim compares was not run there, a score was not "
    "recorded (e.g. a result written before edges-for-faithfulness was stored) or the run has no signal."
)


def _setting(setting: Setting) -> str:
    task, model, ablation = setting
    return (task if task == model else f"{task} ({model})") + f", {ablation} ablation"


def _settings_cell(check: ClaimCheck, outcome: str, with_detail: bool) -> str:
    items = [
        html.escape(_setting(s)) + (f" <small>({html.escape(check.verdicts[s].detail)})</small>" if with_detail else "")
        for s in check.settings(outcome)
    ]
    return "<br>".join(items) or "-"


def claims_html(checks: list[ClaimCheck]) -> str:
    """The section as HTML: one row per claim."""
    columns = ("claim", "source", "verdict", "holds on", "fails on", MISSING)
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    rows = [
        "<tr>"
        f"<td>{html.escape(c.claim.statement)}</td><td>{html.escape(c.claim.source)}</td>"
        f"<td>{html.escape(c.summary())}</td>"
        f"<td>{_settings_cell(c, HOLDS, True)}</td><td>{_settings_cell(c, FAILS, True)}</td>"
        f"<td>{_settings_cell(c, MISSING, False)}</td>"
        "</tr>"
        for c in checks
    ]
    return (
        f"<h2>The papers' claims, checked</h2><p>{html.escape(CLAIMS_TEXT)}</p>"
        f"<table class='claims'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    )
