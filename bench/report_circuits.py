"""The report's circuit drawings: for one setting (task, model, ablation), a panel per method
side by side on the same layout, each with a slider for k.

Python draws the nodes; a short inline script draws the edges from a compact list per run
(node indices, port, score, width, rank, ground-truth flag), so the file carries about 30
bytes per edge rather than a finished SVG path per edge and k. Only the top `max_k` edges of a
ranking and the ground truth's edges are carried (`bench.circuit_view`), so a GPT-2-sized
graph costs what its chosen edges cost, not its 32,491 edges.
"""

from __future__ import annotations

import html
import json

from bench.circuit_drawing import CLASS_STYLE, DASH, DRAW_ORDER, NODE_STYLE, counts_text, edge_width, node_svg
from bench.circuit_layout import EDGE_PATH_JS, Layout, layout
from bench.circuit_view import CircuitView

PANEL_MAX_WIDTH = 720
TRUTH_FLAG = {"": 0, "detectable": 1, "undetectable": 2}


def _score(value: float) -> float:
    return float(f"{value:.4g}")


def run_data(view: CircuitView, node_index: dict[str, int]) -> dict[str, object]:
    """What the script needs to draw `view` at any k: `e` rows are
    [source, destination, port, score, width, rank (0 = top), ground-truth flag (0 no, 1 yes,
    2 yes but undetectable under the run's ablation)]."""
    rows = [
        [
            node_index[edge.src],
            node_index[edge.dst],
            edge.port,
            _score(edge.score),
            edge_width(edge.score, view.max_abs_score),
            edge.rank,
            TRUTH_FLAG[edge.truth],
        ]
        for edge in view.edges
    ]
    return {"k": view.k, "max": view.max_k, "truth": view.has_truth, "e": rows}


def _panel(view: CircuitView, index: int, lay: Layout, node_index: dict[str, int]) -> str:
    """One run's figure: caption, slider, counts and an SVG holding the nodes its edges can touch."""
    used = view.graph.nodes_of([edge.name for edge in view.edges])
    nodes = "".join(node_svg(lay, node, f' class="n" data-i="{node_index[node]}"') for node in used)
    width = min(lay.width, PANEL_MAX_WIDTH)
    height = lay.height * width // lay.width
    method = html.escape(view.result.key.method)
    return (
        f'<figure class="circuit" data-method="{method}" data-run="{index}">'
        f"<figcaption><b>{html.escape(view.title)}</b><br><span class='rule'>{html.escape(view.rule)}</span>"
        f"</figcaption><label>k <input type='range' min='1' max='{view.max_k}' value='{view.k}'> "
        f"<output>{view.k}</output></label> <span class='counts'>{html.escape(counts_text(view, view.k))}</span>"
        f'<svg viewBox="0 0 {lay.width} {lay.height}" width="{width}" height="{height}">'
        f'<g class="edges" fill="none" stroke-linecap="round"></g><g {NODE_STYLE}>{nodes}</g></svg></figure>'
    )


def circuits_html(views: list[CircuitView]) -> str:
    """The drawings of one setting's runs (all on one model, so one layout), with one slider
    that sets k in every panel and the data the script draws from."""
    if not views:
        return ""
    graph = views[0].graph
    lay = layout(graph)
    node_index = {node: i for i, node in enumerate(graph.nodes)}
    data = {
        "names": graph.nodes,
        "xy": [list(lay.positions[node]) for node in graph.nodes],
        "runs": [run_data(view, node_index) for view in views],
    }
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    panels = "".join(_panel(view, i, lay, node_index) for i, view in enumerate(views))
    top = max(view.max_k for view in views)
    start = views[0].k if len({view.k for view in views}) == 1 else 1
    return (
        "<div class='circuits'><h3>Circuits</h3>"
        f"<label class='k-all'>k in every drawing <input type='range' min='1' max='{top}' value='{start}'></label>"
        f"<div class='panels'>{''.join(panels)}</div>"
        f"<script type='application/json' class='circuit-data'>{payload}</script></div>"
    )


def legend_html() -> str:
    """The colours and dash patterns, once for the whole report."""

    def swatch(colour: str, dash: str, meaning: str) -> str:
        line = f"<line x1='1' y1='4' x2='25' y2='4' stroke='{colour}' stroke-width='3' stroke-dasharray='{dash}'/>"
        return f"<span><svg width='26' height='8'>{line}</svg> {html.escape(meaning)}</span>"

    swatches = [swatch(colour, "", meaning) for colour, meaning in CLASS_STYLE.values()]
    swatches += [swatch("#555", DASH[port], f"{port} input") for port in ("q", "k", "v")]
    return f"<p class='legend'>{' '.join(swatches)}</p>"


CIRCUIT_STYLE = (
    """
.panels { display: flex; flex-wrap: wrap; gap: 1em; }
figure.circuit { margin: 0; border: 1px solid #ddd; padding: 6px; }
figure.circuit figcaption { font-size: 13px; } .rule, .counts { font-size: 12px; color: #555; }
figure.circuit svg { display: block; max-width: 100%; height: auto; }
.e { fill: none; } .e:hover { stroke-opacity: 0.6; }
.n.off { display: none; }
.legend span { margin-right: 1.2em; font-size: 12px; white-space: nowrap; }
"""
    + "".join(f".e.{cls} {{ stroke: {colour}; }}\n" for cls, (colour, _) in CLASS_STYLE.items())
    + "".join(f".e.{port} {{ stroke-dasharray: {DASH[port]}; }}\n" for port in ("k", "v"))
)

CIRCUIT_SCRIPT = (
    EDGE_PATH_JS
    + """
const DRAW_ORDER = __DRAW_ORDER__;
function edgeClass(run, rank, flag, k) {
  if (rank < k) return run.truth ? (flag ? 'tp' : 'fp') : 'chosen';
  return flag === 1 ? 'missed' : flag === 2 ? 'missed-undetectable' : null;
}
function countsText(run, c, k) {
  if (!run.truth) return `k = ${k}: ${c.chosen} edges`;
  const missed = c.missed + c['missed-undetectable'];
  return `k = ${k}: ${c.tp} true positive, ${c.fp} false positive, ${missed} missed `
    + `(${c['missed-undetectable']} undetectable)`;
}
function drawPanel(fig, data, k) {
  const run = data.runs[+fig.dataset.run];
  k = Math.max(1, Math.min(run.max, k));
  const counts = {tp: 0, fp: 0, missed: 0, 'missed-undetectable': 0, chosen: 0}, used = new Set(), parts = [];
  for (const [s, d, port, score, width, rank, flag] of run.e) {
    const cls = edgeClass(run, rank, flag, k);
    if (!cls) continue;
    counts[cls]++; used.add(s); used.add(d);
    const name = `${data.names[s]}->${data.names[d]}${port ? `&lt;${port}&gt;` : ''}`;
    const title = `<title>${name} · score ${score} · rank ${rank + 1}</title>`;
    const curve = edgePath(data.xy[s], data.xy[d], port);
    const path = `<path class="e ${cls} ${port}" stroke-width="${width}" d="${curve}">`;
    parts.push([DRAW_ORDER[cls], -rank, path + title + '</path>']);
  }
  parts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  fig.querySelector('g.edges').innerHTML = parts.map(p => p[2]).join('');
  fig.querySelectorAll('g.n').forEach(n => n.classList.toggle('off', !used.has(+n.dataset.i)));
  fig.querySelector('input').value = k;
  fig.querySelector('output').textContent = k;
  fig.querySelector('.counts').textContent = countsText(run, counts, k);
}
document.querySelectorAll('div.circuits').forEach(block => {
  const data = JSON.parse(block.querySelector('script.circuit-data').textContent);
  const figures = block.querySelectorAll('figure.circuit');
  figures.forEach(fig => {
    drawPanel(fig, data, data.runs[+fig.dataset.run].k);
    fig.querySelector('input').addEventListener('input', e => drawPanel(fig, data, +e.target.value));
  });
  block.querySelector('.k-all input').addEventListener('input', e => {
    figures.forEach(fig => drawPanel(fig, data, +e.target.value));
  });
});
""".replace("__DRAW_ORDER__", json.dumps(DRAW_ORDER))
)
