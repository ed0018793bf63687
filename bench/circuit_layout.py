"""Where a circuit drawing puts each node, and the curve of each edge: one layout per graph,
so every method's drawing of a task lines up with the others.

Left to right: `input`, then per layer a column of heads and a column for its MLP, then
`logits`. Heads stack top to bottom by index; MLPs sit on a row of their own below the heads,
`input` and `logits` half-way down. An edge leaves its source on the right and enters its
destination on the left, at one of three ports for an attention input (q high, k middle, v
low). Edges that skip columns arc upwards by an amount that grows with the distance, so long
skips do not hide short ones. All coordinates are integers, so the report's script draws
the same curves from the same numbers (`EDGE_PATH_JS` mirrors `edge_path`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.graph import Graph, head_name, mlp_name

COLUMN = 64
ROW = 30
RADIUS = 8
PORT_OFFSET = {"q": -5, "k": 0, "v": 5, "": 0}
BEND_PER_PIXEL = (3, 20)
"""An edge spanning dx pixels arcs up by (dx - COLUMN) * 3 // 20 at its control points."""
MARGIN = 16
LABEL_SPACE = 14


@dataclass(frozen=True)
class Layout:
    """Node centres in pixels, and the drawing's size."""

    positions: dict[str, tuple[int, int]]
    width: int
    height: int

    def kind(self, node: str) -> str:
        """ "io" for `input`/`logits`, "head" or "mlp" (decides the node's shape)."""
        return "io" if node in ("input", "logits") else "mlp" if node.startswith("m") else "head"


def bend(dx: int) -> int:
    num, den = BEND_PER_PIXEL
    return max(0, dx - COLUMN) * num // den


def layout(graph: Graph) -> Layout:
    """Positions for every node of `graph` (a drawing shows only those it uses)."""
    spec = graph.spec
    has_mlps = any(spec.mlp_layers)
    per_layer = 2 if has_mlps else 1
    n_columns = 2 + per_layer * spec.n_layers
    head_rows = max(spec.n_heads, 1)
    rows = head_rows + (1 if has_mlps else 0)
    width = 2 * MARGIN + (n_columns - 1) * COLUMN
    arc = bend(width - 2 * MARGIN) * 3 // 4 + 1  # how far the longest possible arc rises
    top = MARGIN + arc
    middle = top + (rows - 1) * ROW // 2

    def x(column: int) -> int:
        return MARGIN + column * COLUMN

    positions = {"input": (x(0), middle), "logits": (x(n_columns - 1), middle)}
    for layer in range(spec.n_layers):
        for head in range(spec.n_heads):
            positions[head_name(layer, head)] = (x(1 + per_layer * layer), top + head * ROW)
        if spec.mlp_layers[layer]:
            positions[mlp_name(layer)] = (x(2 + per_layer * layer), top + head_rows * ROW)
    height = top + (rows - 1) * ROW + RADIUS + LABEL_SPACE + MARGIN
    return Layout(positions, width, height)


def edge_path(layout: Layout, src: str, dst: str, port: str) -> str:
    """The SVG path of the edge `src -> dst` (`port`: "q", "k", "v" or "")."""
    sx, sy = layout.positions[src]
    dx, dy = layout.positions[dst]
    return path_between(sx + RADIUS, sy, dx - RADIUS, dy + PORT_OFFSET[port], port)


def path_between(x1: int, y1: int, x2: int, y2: int, port: str = "") -> str:
    """A cubic from (x1, y1) to (x2, y2); q arcs a little higher and v a little lower, so the
    three inputs of one head part along the whole way, not only at the ports."""
    third = (x2 - x1) // 3
    up = bend(x2 - x1) - 2 * PORT_OFFSET[port]
    return f"M{x1} {y1}C{x1 + third} {y1 - up} {x2 - third} {y2 - up} {x2} {y2}"


EDGE_PATH_JS = (
    """
function edgePath(s, d, port) {
  const offset = PORTS[port] || 0, x1 = s[0] + RADIUS, y1 = s[1], x2 = d[0] - RADIUS, y2 = d[1] + offset;
  const third = Math.floor((x2 - x1) / 3);
  const up = Math.floor(Math.max(0, x2 - x1 - COLUMN) * BEND_NUM / BEND_DEN) - 2 * offset;
  return `M${x1} ${y1}C${x1 + third} ${y1 - up} ${x2 - third} ${y2 - up} ${x2} ${y2}`;
}
""".replace("RADIUS", str(RADIUS))
    .replace("PORTS", json.dumps(PORT_OFFSET))
    .replace("COLUMN", str(COLUMN))
    .replace("BEND_NUM", str(BEND_PER_PIXEL[0]))
    .replace("BEND_DEN", str(BEND_PER_PIXEL[1]))
)
"""`edge_path` in the report's script (node centres `s`, `d` as [x, y])."""
