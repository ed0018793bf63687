"""The leaderboard: one self-contained HTML file (sortable table, filters by task and method,
ROC and faithfulness plots, circuit drawings, run metadata) rendered from the result files,
readable offline. A run whose faithfulness has no signal (`bench.scoring`) is shown as
"no signal", after every ranked row, never ranked."""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import roc_curve

from bench.circuit_view import FAITHFUL_ENOUGH, FALLBACK_K, circuit_view, result_graph
from bench.claims import check_claims
from bench.faithful_size import RULE as FAITHFUL_SIZE_RULE
from bench.faithful_size import size_for
from bench.graph import Graph
from bench.ground_truth import has_ground_truth, load_ground_truth
from bench.report_circuits import CIRCUIT_SCRIPT, CIRCUIT_STYLE, circuits_html, legend_html
from bench.report_claims import claims_html
from bench.report_stability import stability_columns, stability_html
from bench.report_table import data_attributes, table_html, text_cell
from bench.result_schema import ResultFileError
from bench.results import DEFAULT_RESULTS_DIR, RunResult, read_result, variant_text
from bench.stability import Stability, Unmeasured, load_stabilities, load_unmeasured, stability_dir

DEFAULT_REPORT = Path("results") / "leaderboard.html"
GROUP = ["task", "model", "ablation", "method", "variant"]
DEFAULT_VARIANT = "default"
NO_SIGNAL = "no signal"
FAITHFULNESS_COLUMNS = ["faithfulness AUC", "faithfulness AUC std", "CPR", "CMD", "MIB CPR", "MIB CMD"]
MIB_TEXT = (
    "CPR and CMD are CDBench's areas: |score| top-k at ceil(p·n) edges, f(0) = 0 prepended, linear axis. "
    "MIB CPR and MIB CMD are MIB's own, computed as MIB's code does: top int(p·n) edges at 0.1%…100%, "
    "ranked by the signed score for CPR and by |score| for CMD, each circuit pruned as MIB prunes it, the "
    "trapezoid over MIB's ten points on the linear axis (no point at 0); empty if a result predates them."
)

FAITHFUL_SIZE_TEXT = (
    "Edges for f>=0.8 / f>=0.9: the smallest top-k of the ranking whose circuit reaches that faithfulness "
    "(the Edge Pruning paper's comparison), found by bisection between the faithfulness grid's points: "
    f"{FAITHFUL_SIZE_RULE}; the mean over seeds; '-' without signal, in results written before it, or if never reached."
)


def load_results(root: Path = DEFAULT_RESULTS_DIR) -> list[RunResult]:
    """Every result file under `root` (`<ablation>-seed<S>-...json`; not failure records)."""
    return [read_result(path) for path in sorted(root.rglob("*-seed*.json")) if not path.name.endswith(".failed.json")]


def _variant(result: RunResult) -> str:
    return variant_text(result.variant) or DEFAULT_VARIANT


def _curve_label(result: RunResult) -> str:
    variant = variant_text(result.variant)
    no_signal = result.evaluation["faithfulness"]["no_signal"]
    return result.key.method + (f" ({variant})" if variant else "") + (f" [{NO_SIGNAL}]" if no_signal else "")


def result_row(result: RunResult) -> dict[str, object]:
    faith = result.evaluation.get("faithfulness", {})
    mib = result.evaluation.get("mib", {})  # absent from results written before MIB's scores
    truth = result.evaluation.get("ground_truth", {})
    row: dict[str, object] = {
        "task": result.key.task,
        "model": result.key.model,
        "ablation": result.key.ablation,
        "method": result.key.method,
        "variant": _variant(result),
        "seed": result.key.seed,
        "no_signal": bool(faith.get("no_signal", False)),
        "faithfulness AUC": faith.get("faithfulness_auc", np.nan),
        "CPR": faith.get("cpr", np.nan),
        "CMD": faith.get("cmd", np.nan),
        "MIB CPR": mib.get("cpr", np.nan),
        "MIB CMD": mib.get("cmd", np.nan),
        **faithful_size_cells(result),
        "time (s)": result.wall_time_s,
        "peak memory (MB)": result.peak_memory_mb,
    }
    for which in ("full", "detectable"):
        edge = truth.get(which, {}).get("edge", {})
        row[f"ROC AUC ({which} GT)"] = edge.get("roc_auc", np.nan)
        row[f"precision@k ({which} GT)"] = edge.get("precision_at_k", np.nan)
        row[f"recall@k ({which} GT)"] = edge.get("recall_at_k", np.nan)
    row["AP (detectable GT)"] = truth.get("detectable", {}).get("edge", {}).get("average_precision", np.nan)
    return row


def faithful_size_cells(result: RunResult) -> dict[str, float]:
    """Edges (and fraction) the ranking's circuit needs for faithfulness 0.8 and 0.9
    (`bench.faithful_size`); NaN (shown "-") without signal, unreached or in older results."""
    edges_08, _ = size_for(result.evaluation, 0.8)
    edges_09, fraction_09 = size_for(result.evaluation, 0.9)
    return {
        "edges for f>=0.8": np.nan if edges_08 is None else float(edges_08),
        "edges for f>=0.9": np.nan if edges_09 is None else float(edges_09),
        "edge fraction for f>=0.9": np.nan if fraction_09 is None else fraction_09,
    }


def leaderboard(results: list[RunResult]) -> pd.DataFrame:
    """One row per (task, model, ablation, method, variant): the mean over seeds, and the
    standard deviation of the faithfulness AUC where there are several seeds. A row with a
    no-signal run among its seeds says "no signal" in its faithfulness columns and comes after
    every ranked row."""
    frame = pd.DataFrame([result_row(r) for r in results])
    if frame.empty:
        return frame
    grouped = frame.drop(columns=["seed", "no_signal"]).groupby(GROUP, sort=True)
    table = grouped.mean(numeric_only=True)
    table.insert(0, "seeds", grouped.size())
    table.insert(2, "faithfulness AUC std", grouped["faithfulness AUC"].std())
    no_signal = frame.groupby(GROUP, sort=True)["no_signal"].any()
    table.insert(0, "signal", np.where(no_signal, NO_SIGNAL, "yes"))
    table[FAITHFULNESS_COLUMNS] = table[FAITHFULNESS_COLUMNS].astype(object)
    table.loc[no_signal, FAITHFULNESS_COLUMNS] = NO_SIGNAL
    table = table.reset_index()
    return table.sort_values("signal", key=lambda col: col == NO_SIGNAL, kind="stable").reset_index(drop=True)


def _figure_to_data_uri(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def faithfulness_figure(results: list[RunResult], title: str) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for result in sorted(results, key=_curve_label):
        faith = result.evaluation["faithfulness"]
        ax.plot(faith["fractions"], faith["faithfulness"], marker="o", markersize=3, label=_curve_label(result))
    ax.set(xscale="log", xlabel="fraction of edges kept", ylabel="faithfulness", title=title)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=7)
    return _figure_to_data_uri(fig)


def roc_figure(results: list[RunResult], graph_for: dict[str, Graph], title: str) -> str | None:
    """ROC curves against the ground truth detectable under the run's ablation."""
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    drawn = False
    for result in sorted(results, key=_curve_label):
        if not has_ground_truth(result.key.task, result.key.model):
            continue
        graph = graph_for[result.key.model]
        truth = load_ground_truth(result.key.task, graph)
        ablation = result.key.ablation if result.key.ablation in truth.detectable else None
        labels = truth.edge_mask(graph, ablation).numpy()
        values = np.abs(np.array([result.edge_scores[name] for name in graph.edge_names]))
        fpr, tpr, _ = roc_curve(labels, values)
        ax.plot(fpr, tpr, label=_curve_label(result))
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(fontsize=7)
    return _figure_to_data_uri(fig)


def _graphs(results: list[RunResult]) -> dict[str, Graph]:
    """Each model's graph, rebuilt from a result's edge names: no model is loaded, so results of
    models (or plugins) not installed here render too.

    Raises:
        ResultFileError: a result whose edge names are not its model's graph's edges, named.
    """
    graphs: dict[str, Graph] = {}
    for result in results:
        try:
            if result.key.model not in graphs:
                graphs[result.key.model] = result_graph(result)
            graph = graphs[result.key.model]
            if len(result.edge_scores) != graph.n_edges or not all(
                n in graph.edge_position for n in result.edge_scores
            ):
                raise ValueError(f"its edges are not those of the {graph!r} its model's other results have")
        except ValueError as err:
            key = result.key
            run = f"{key.method} on {key.task} ({key.model}, {key.ablation} ablation, seed {key.seed})"
            raise ResultFileError(f"{run}: field 'edge_scores': {err}") from None
    return graphs


SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, column) => {
  th.addEventListener('click', () => {
    const body = th.closest('table').tBodies[0];
    const rows = Array.from(body.rows);
    const ascending = th.dataset.order !== 'asc';
    th.dataset.order = ascending ? 'asc' : 'desc';
    const key = row => { const t = row.cells[column].dataset.value ?? row.cells[column].textContent;
                         const n = parseFloat(t); return isNaN(n) ? t : n; };
    const unranked = row => (row.classList.contains('no-signal') ? 1 : 0);  // "no signal" rows stay last
    rows.sort((a, b) => unranked(a) - unranked(b)
                        || (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (ascending ? 1 : -1));
    rows.forEach(row => body.appendChild(row));
  });
});
function applyFilters() {
  const want = {task: document.getElementById('filter-task').value,
                method: document.getElementById('filter-method').value};
  document.querySelectorAll('[data-task], [data-method]').forEach(el => {
    el.hidden = Object.entries(want).some(([what, value]) => value && el.dataset[what]
                                                             && el.dataset[what] !== value);
  });
}
document.querySelectorAll('.filters select').forEach(select => select.addEventListener('change', applyFilters));
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #eef; cursor: pointer; }
td:nth-child(-n+5) { text-align: left; }
tr.no-signal td { color: #888; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.filters { margin-bottom: 1em; } .filters select { margin-right: 1.5em; }
"""


def _cell(value: object) -> str:
    """A number as three decimals ('-' for NaN) with its exact value to sort by; anything else as text."""
    if isinstance(value, float):
        shown = "-" if np.isnan(value) else f"{value:.3f}"
        return f'<td data-value="{value}">{shown}</td>'
    return text_cell(value)


def _table_html(frame: pd.DataFrame, css_class: str) -> str:
    rows = []
    for _, row in frame.iterrows():
        unranked = " class='no-signal'" if row.get("signal") == NO_SIGNAL else ""
        rows.append((unranked + _filter_attrs(row), [_cell(value) for value in row]))
    return table_html(frame.columns, rows, f'class="{css_class}"')


def _filter_attrs(row: pd.Series | dict[str, object]) -> str:
    """The data-task / data-method attributes the filters match a row, section or drawing by."""
    return data_attributes({what: row[what] for what in ("task", "method") if what in row})


def _filters_html(results: list[RunResult]) -> str:
    def select(what: str, values: set[str]) -> str:
        options = "".join(f"<option>{html.escape(v)}</option>" for v in sorted(values))
        return f"<label>{what} <select id='filter-{what}'><option value=''>all</option>{options}</select></label>"

    tasks, methods = {r.key.task for r in results}, {r.key.method for r in results}
    return f"<div class='filters'>Show only: {select('task', tasks)}{select('method', methods)}</div>"


CIRCUITS_TEXT = (
    "Circuits: each drawing is a run's top-k edges, from <code>input</code> through each layer's heads (circles) "
    "and MLP (squares) to <code>logits</code>, on one layout per task so the methods line up. k starts at the "
    "size of the ground truth (the k of precision@k); without one, at the smallest k on the run's faithfulness "
    f"grid with f &ge; {FAITHFUL_ENOUGH} (or {FALLBACK_K} edges when none reaches it or the run has no signal). "
    "Edge width follows |score|; hover an edge for its name, score and rank; move a slider to change k (the "
    "slider above the drawings moves all of them). Ground-truth edges outside the top k are drawn as missed."
)


def render(
    results: list[RunResult], stabilities: list[Stability] | None = None, unmeasured: list[Unmeasured] | None = None
) -> str:
    """The whole report as one HTML string; `stabilities` are the stability measurements and
    `unmeasured` the cells `run --all` left out, with why."""
    board = stability_columns(leaderboard(results), stabilities or [], unmeasured or [], DEFAULT_VARIANT)
    sections = ["<h1>CDBench leaderboard</h1>"]
    if board.empty:
        sections.append("<p>No results yet: run <code>python -m bench run --all</code>.</p>")
    else:
        sections.append(
            "<p>One row per task, model, ablation, method and variant (what a run set away from the defaults: "
            "options, number of examples, data seed), the mean over seeds. Click a column to sort. "
            "GT = ground truth; 'detectable' = the ground-truth edges whose removal alone changes the model's "
            "outputs under that ablation. 'no signal': the gap m(model) - m(empty) that faithfulness divides by "
            "is not told apart from 0 by the examples (its bootstrap 95% interval contains 0), so these rows' "
            "faithfulness is not shown or ranked and they come last.</p>"
        )
        sections.append(_filters_html(results))
        sections.append(_table_html(board, "sortable leaderboard"))
        sections.append(f"<p>{html.escape(MIB_TEXT)}</p>")
        sections.append(f"<p>{html.escape(FAITHFUL_SIZE_TEXT)}</p>")
        sections.append(f"<p>{CIRCUITS_TEXT}</p>{legend_html()}")
        graphs = _graphs(results)
        by_setting: dict[tuple[str, str, str], dict[tuple[str, str], RunResult]] = defaultdict(dict)
        for result in sorted(results, key=lambda r: -r.key.seed):  # plots show each variant's lowest seed
            setting = (result.key.task, result.key.model, result.key.ablation)
            by_setting[setting][(result.key.method, _variant(result))] = result
        for (task, model, ablation), per_method in sorted(by_setting.items()):
            group = list(per_method.values())
            title = f"{task} · {model} · {ablation} ablation"
            plots = [f'<img alt="faithfulness curves {html.escape(title)}" src="{faithfulness_figure(group, title)}">']
            roc = roc_figure(group, graphs, title)
            if roc:
                plots.append(f'<img alt="ROC curves {html.escape(title)}" src="{roc}">')
            ordered = sorted(group, key=_curve_label)
            drawings = circuits_html([circuit_view(r, graph=graphs[model]) for r in ordered])
            sections.append(
                f"<section{_filter_attrs({'task': task})}><h2>{html.escape(title)}</h2>"
                f"<div class='plots'>{''.join(plots)}</div>{drawings}</section>"
            )
        meta = pd.DataFrame(
            [
                {
                    "task": r.key.task,
                    "method": r.key.method,
                    "ablation": r.key.ablation,
                    "variant": _variant(r),
                    "seed": r.key.seed,
                    "data seed": r.key.data_seed,
                    "examples": r.n_examples,
                    "metric": r.metric,
                    "gap [95% CI]": _gap_text(r),
                    "data sha256": r.data_fingerprint[:12],
                    "weights sha256": r.model_identity["weights_sha256"][:12],
                    "dtype": r.dtype,
                    "device": r.device,
                    "cdbench": r.cdbench_version,
                    "git commit": r.git_commit,
                    "torch": r.versions.get("torch", "?"),
                    "transformer-lens": r.versions.get("transformer-lens", "?"),
                    "machine": r.machine.get("platform", "?"),
                    "options": str(r.options),
                }
                for r in results
            ]
        )
        sections.append(claims_html(check_claims(results)))
        sections.append(stability_html(stabilities or [], unmeasured))
        sections.append("<h2>Run metadata</h2>" + _table_html(meta, "sortable metadata"))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>CDBench leaderboard</title>"
        f"<style>{STYLE}{CIRCUIT_STYLE}</style></head><body>{''.join(sections)}"
        f"<script>{SORT_SCRIPT}{CIRCUIT_SCRIPT}</script></body></html>"
    )


def _gap_text(result: RunResult) -> str:
    faith = result.evaluation["faithfulness"]
    low, high = faith["gap_ci"]
    text = f"{faith['gap']:.3g} [{low:.3g}, {high:.3g}]"
    return f"{text} {NO_SIGNAL}" if faith["no_signal"] else text


def write_report(
    root: Path = DEFAULT_RESULTS_DIR, out: Path = DEFAULT_REPORT, stability_root: Path | None = None
) -> Path:
    """Render the results under `root` and the stability files under `stability_root` (default:
    where `run --all` puts them for `root`, `bench.stability.stability_dir`)."""
    sns.set_theme(style="whitegrid")
    stability_root = stability_dir(root) if stability_root is None else stability_root
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(render(load_results(root), load_stabilities(stability_root), load_unmeasured(stability_root)))
    tmp.replace(out)
    return out
