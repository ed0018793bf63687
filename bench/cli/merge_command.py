"""`bench merge`: combine the results directories of a sharded sweep into one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "merge", help="combine results directories (e.g. one per shard), refusing runs whose scores disagree"
    )
    parser.add_argument("sources", nargs="+", type=Path, metavar="DIR", help="results directories to combine")
    parser.add_argument("--into", type=Path, help="where the combined results go (default: results/runs)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bench.merge import merge_results
    from bench.results import DEFAULT_RESULTS_DIR

    into = args.into or DEFAULT_RESULTS_DIR
    try:
        summary = merge_results(args.sources, into)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"merged {len(args.sources)} director{'y' if len(args.sources) == 1 else 'ies'} into {into}: "
        f"{summary.copied} result(s) copied, {summary.already_there} already there, "
        f"{summary.failures_copied} failure record(s) of runs no shard finished, "
        f"{summary.stability_copied} stability file(s) copied"
    )
    return 0
