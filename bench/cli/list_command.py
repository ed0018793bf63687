"""`bench list`: methods, tasks and models, and whether each model is available here.

With no plugin configured it imports no torch, TransformerLens, jax or tracr: the built-in
methods and tasks come from `bench.catalogue`, and the zoo answers model questions without
loading a model. A plugin may need the real registries, so then they are loaded as for a run.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", help="show methods, tasks and models")
    parser.add_argument(
        "what",
        nargs="?",
        choices=["all", "methods", "tasks", "models"],
        default="all",
        help="which table to show (default: all)",
    )
    parser.set_defaults(handler=run)


def _table(title: str, rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [title]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  " + "  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _origin(kind: str, name: str) -> str:
    """The " [plugin: <where from>]" mark of a plugin entry; "" for a built-in one."""
    from bench.plugins import ORIGINS

    origin = ORIGINS.get((kind, name))
    return f" [plugin: {origin}]" if origin else ""


def _entries(kind: str) -> list[dict[str, Any]]:
    """The methods or tasks to list: the built-ins' catalogue, or with a plugin configured the
    registries themselves (built-ins, then plugins)."""
    from bench import catalogue
    from bench.plugins import plugins_configured

    return catalogue.live_entries(kind) if plugins_configured() else catalogue.read()[kind]


def _edges(name: str) -> str:
    """The graph's edge count of a hub architecture, by closed form from its table entry (no
    model built); blank for models built here (their graph needs the model)."""
    from bench.zoo import hub_architecture
    from bench.zoo.architectures import edge_count

    arch = hub_architecture(name)
    return "" if arch is None else f"{edge_count(arch.config):,} edges"


def run(args: argparse.Namespace) -> int:
    from bench.ground_truth import has_ground_truth
    from bench.plugins import PROBLEMS
    from bench.zoo import model_names, model_status

    blocks = []
    if args.what in ("all", "methods"):
        rows = [(m["name"], m["description"] + _origin("method", m["name"])) for m in _entries("method")]
        blocks.append(_table("methods:", rows))
    if args.what in ("all", "tasks"):
        rows = [
            (
                t["name"],
                f"model={t['model']}",
                f"n={t['default_examples']}",
                f"metric: {t['metric']}",
                "ground truth" if has_ground_truth(t["name"], t["model"]) else "no ground truth",
                t["description"] + _origin("task", t["name"]),
            )
            for t in _entries("task")
        ]
        blocks.append(_table("tasks:", rows))
    if args.what in ("all", "models"):
        statuses = [model_status(name) for name in model_names(include_random=args.what == "models")]
        rows = [
            (
                s.name,
                s.kind,
                _edges(s.name),
                "available" if s.available else "unavailable",
                s.reason + _origin("model", s.name),
            )
            for s in statuses
        ]
        note = "" if args.what == "models" else " (random:<hub model> variants: `bench list models`)"
        blocks.append(_table(f"models{note}:", rows))
    if PROBLEMS:
        blocks.append("\n".join(["plugins that did not load:", *(f"  {problem}" for problem in PROBLEMS)]))
    print("\n\n".join(blocks))
    return 0
