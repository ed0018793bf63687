"""`bench draw`: one run's circuit as SVG, DOT or JSON, for papers and notebooks (the same
drawing as the report's, at the same k unless `--k` says otherwise)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "draw",
        help="draw one result's circuit (.svg, .dot or .json)",
        description="Draw the circuit a result's ranking gives: its top-k edges coloured against the ground truth.",
    )
    parser.add_argument("result", type=Path, help="a result file (results/runs/<task>/<model>/<method>/...json)")
    parser.add_argument("--k", type=int, help="edges to keep (default: |ground truth|, else the 0.9-faithful k)")
    parser.add_argument(
        "--out", type=Path, required=True, help="where to write; the suffix picks the format: .svg, .dot or .json"
    )
    parser.set_defaults(handler=run)


def _usage_error(err: ValueError) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from bench.circuit_drawing import check_format, counts_text, write_drawing
    from bench.circuit_view import circuit_view, result_graph
    from bench.result_schema import ResultFileError
    from bench.results import read_result

    try:
        check_format(args.out)
    except ValueError as err:
        return _usage_error(err)
    result = read_result(args.result)
    try:
        graph = result_graph(result)
    except ValueError as err:
        raise ResultFileError(f"{args.result}: field 'edge_scores': {err}") from None
    try:
        view = circuit_view(result, args.k, graph)
    except ValueError as err:
        return _usage_error(err)
    path = write_drawing(view, view.k, args.out)
    print(f"wrote {path}: {view.rule}; {counts_text(view, view.k)}")
    return 0
