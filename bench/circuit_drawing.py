"""One circuit drawing in a file: SVG (for papers and browsers), DOT (plain text, for users who
have graphviz) or JSON (nodes, edges, classes, colours and positions, for notebooks). Pure
Python, no graphviz, no network. The report draws the same edges with the same look
(`bench/report_circuits.py`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from bench.circuit_layout import RADIUS, Layout, edge_path, layout
from bench.circuit_view import EDGE_CLASSES, CircuitView, EdgeClass, ViewEdge

CLASS_STYLE: dict[EdgeClass, tuple[str, str]] = {
    "tp": ("#1a9850", "true positive"),
    "fp": ("#d95f02", "false positive"),
    "missed": ("#7570b3", "missed ground-truth edge"),
    "missed-undetectable": ("#bdbdbd", "missed, undetectable under this ablation"),
    "chosen": ("#3b6ea5", "chosen (no ground truth)"),
}
"""Colour and legend text per edge class (colour-blind safe: green, orange, purple, grey, blue)."""
DASH = {"q": "", "k": "5 3", "v": "1 3", "": ""}
"""Dash pattern per destination port: query solid, key dashed, value dotted (and a port each)."""
DRAW_ORDER = {"missed-undetectable": 0, "missed": 1, "fp": 2, "chosen": 3, "tp": 4}
FORMATS = (".svg", ".dot", ".json")
HEADER = 52
LEGEND = 40


def edge_width(score: float, max_abs: float) -> float:
    """Stroke width by |score|, from 1.2 (0) to 4.4 (the run's largest |score|)."""
    return round(1.2 + 3.2 * abs(score) / max_abs, 1) if max_abs > 0 else 2.0


def edge_title(edge: ViewEdge) -> str:
    return f"{edge.name} · score {edge.score:.4g} · rank {edge.rank + 1}"


def counts_text(view: CircuitView, k: int) -> str:
    """The counts at `k` in words, as the report's script writes them too."""
    counts = view.counts(k)
    if not view.has_truth:
        return f"k = {k}: {counts['chosen']} edges"
    missed = counts["missed"] + counts["missed-undetectable"]
    return (
        f"k = {k}: {counts['tp']} true positive, {counts['fp']} false positive, "
        f"{missed} missed ({counts['missed-undetectable']} undetectable)"
    )


def sorted_for_drawing(drawn: list[tuple[ViewEdge, EdgeClass]]) -> list[tuple[ViewEdge, EdgeClass]]:
    """Missed edges underneath, hits on top; within a class the best-ranked last (on top)."""
    return sorted(drawn, key=lambda pair: (DRAW_ORDER[pair[1]], -pair[0].rank))


def node_svg(lay: Layout, node: str, attrs: str = "") -> str:
    """A node's shape, label and hover title: a circle for a head, a square for an MLP, a
    rounded box for input and logits."""
    x, y = lay.positions[node]
    r = RADIUS
    kind = lay.kind(node)
    if kind == "head":
        shape = f'<circle cx="{x}" cy="{y}" r="{r}"/>'
    else:
        rounded = ' rx="4"' if kind == "io" else ""
        shape = f'<rect x="{x - r}" y="{y - r}" width="{2 * r}" height="{2 * r}"{rounded}/>'
    label = f'<text x="{x}" y="{y + r + 9}" fill="#222" stroke="none">{node}</text>'
    return f"<g{attrs}>{shape}{label}<title>{node}</title></g>"


NODE_STYLE = 'fill="#fff" stroke="#333" stroke-width="1.2" font-size="8" text-anchor="middle"'


def to_svg(view: CircuitView, k: int) -> str:
    """A standalone SVG document (inline attributes only, so any viewer renders it alike)."""
    lay = layout(view.graph)
    drawn = sorted_for_drawing(view.drawn(k))
    paths = []
    for edge, cls in drawn:
        colour = CLASS_STYLE[cls][0]
        dash = f' stroke-dasharray="{DASH[edge.port]}"' if DASH[edge.port] else ""
        width = edge_width(edge.score, view.max_abs_score)
        paths.append(
            f'<path d="{edge_path(lay, edge.src, edge.dst, edge.port)}" stroke="{colour}" stroke-width="{width}"'
            f"{dash}><title>{html.escape(edge_title(edge))}</title></path>"
        )
    used = view.graph.nodes_of([edge.name for edge, _ in drawn])
    nodes = "".join(node_svg(lay, node) for node in used)
    header = [view.title, view.setting, f"{view.rule}; {counts_text(view, k)}"]
    weights = ['font-weight="bold"', "", ""]
    text = "".join(
        f'<text x="8" y="{14 + 15 * i}" {weight}>{html.escape(line)}</text>'
        for i, (line, weight) in enumerate(zip(header, weights, strict=True))
    )
    height = HEADER + lay.height + LEGEND
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width}" height="{height}" '
        f'viewBox="0 0 {lay.width} {height}" font-family="sans-serif">'
        f"<title>{html.escape(f'{view.title} · {view.setting}')}</title>"
        f'<rect width="100%" height="100%" fill="#fff"/><g font-size="11">{text}</g>'
        f'<g transform="translate(0 {HEADER})"><g fill="none" stroke-linecap="round">{"".join(paths)}</g>'
        f"<g {NODE_STYLE}>{nodes}</g></g>"
        f'<g transform="translate(8 {HEADER + lay.height + 6})">{legend_svg(view.has_truth)}</g></svg>'
    )


def legend_svg(has_truth: bool) -> str:
    """Colours (the classes this drawing can show), then the q/k/v dash patterns."""
    classes = [c for c in EDGE_CLASSES if (c == "chosen") != has_truth]
    items = [(CLASS_STYLE[c][0], "", CLASS_STYLE[c][1]) for c in classes]
    items += [("#555", DASH[p], f"{p} input") for p in ("q", "k", "v")]
    parts, x, y = [], 0, 0
    for colour, dash, label in items:
        width = 30 + 6 * len(label)
        if x + width > 520:
            x, y = 0, y + 16
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 22}" y2="{y}" stroke="{colour}" stroke-width="2.5"{dash_attr}/>'
            f'<text x="{x + 26}" y="{y + 4}">{html.escape(label)}</text>'
        )
        x += width
    return f'<g font-size="10">{"".join(parts)}</g>'


def _dot_string(text: str) -> str:
    """A DOT quoted string (DOT knows no \\u escapes, so not JSON's)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(view: CircuitView, k: int) -> str:
    """Graphviz DOT text: `dot -Tsvg` lays it out by column; `neato -n2 -Tsvg` keeps our positions."""
    lay = layout(view.graph)
    drawn = sorted_for_drawing(view.drawn(k))
    used = view.graph.nodes_of([edge.name for edge, _ in drawn])
    label = f"{view.title} · {view.setting}\n{view.rule}; {counts_text(view, k)}"
    lines = [
        f"// {view.title} · {view.setting}: written by `python -m bench draw`",
        "digraph circuit {",
        f"  graph [rankdir=LR, labelloc=t, fontname=Helvetica, label={_dot_string(label)}];",
        "  node [fontname=Helvetica, fontsize=10, shape=circle, width=0.35, fixedsize=true];",
    ]
    shapes = {"head": "circle", "mlp": "square", "io": "box"}
    columns: dict[int, list[str]] = {}
    for node in used:
        x, y = lay.positions[node]
        columns.setdefault(x, []).append(node)
        lines.append(f'  {_dot_string(node)} [shape={shapes[lay.kind(node)]}, pos="{x},{lay.height - y}!"];')
    for members in columns.values():
        lines.append("  { rank=same; " + " ".join(f"{_dot_string(n)};" for n in members) + " }")
    styles = {"q": "solid", "k": "dashed", "v": "dotted", "": "solid"}
    for edge, cls in drawn:
        attrs = [
            f'color="{CLASS_STYLE[cls][0]}"',
            f"penwidth={edge_width(edge.score, view.max_abs_score)}",
            f"style={styles[edge.port]}",
            f"tooltip={_dot_string(edge_title(edge))}",
            f'class="{cls}"',
        ]
        if edge.port:
            attrs.append(f'headlabel="{edge.port}"')
        lines.append(f"  {_dot_string(edge.src)} -> {_dot_string(edge.dst)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(view: CircuitView, k: int) -> dict[str, Any]:
    """Everything drawn, as data: nodes with kind and position, edges with class, colour,
    width, dash and SVG path (`rank` 1 = the most important edge), the rule and the counts."""
    lay = layout(view.graph)
    drawn = sorted_for_drawing(view.drawn(k))
    used = view.graph.nodes_of([edge.name for edge, _ in drawn])
    key = view.result.key
    return {
        "run": {
            "task": key.task,
            "model": key.model,
            "method": key.method,
            "ablation": key.ablation,
            "seed": key.seed,
            "variant": view.result.variant,
        },
        "k": k,
        "max_k": view.max_k,
        "rule": view.rule,
        "ground_truth_size": view.n_truth,
        "detectable_size": view.n_detectable,
        "counts": view.counts(k),
        "width": lay.width,
        "height": lay.height,
        "nodes": [{"name": n, "kind": lay.kind(n), "x": lay.positions[n][0], "y": lay.positions[n][1]} for n in used],
        "edges": [
            {
                "name": edge.name,
                "src": edge.src,
                "dst": edge.dst,
                "port": edge.port,
                "score": edge.score,
                "rank": edge.rank + 1,
                "class": cls,
                "colour": CLASS_STYLE[cls][0],
                "width": edge_width(edge.score, view.max_abs_score),
                "dash": DASH[edge.port],
                "path": edge_path(lay, edge.src, edge.dst, edge.port),
            }
            for edge, cls in drawn
        ],
        "legend": {cls: {"colour": colour, "meaning": meaning} for cls, (colour, meaning) in CLASS_STYLE.items()},
    }


def check_format(out: Path) -> str:
    """The drawing format `out`'s suffix names.

    Raises:
        ValueError: a suffix other than .svg, .dot or .json.
    """
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"--out {out}: unknown format {suffix or '(no suffix)'!r}; valid: {', '.join(FORMATS)}")
    return suffix


def write_drawing(view: CircuitView, k: int, out: Path) -> Path:
    """Write the drawing in the format `out`'s suffix names (`check_format`)."""
    suffix = check_format(out)
    if suffix == ".svg":
        text = to_svg(view, k)
    elif suffix == ".dot":
        text = to_dot(view, k)
    else:
        text = json.dumps(to_json(view, k), indent=1) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
