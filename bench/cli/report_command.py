"""`bench report`: render the leaderboard HTML from the result files."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.report import DEFAULT_REPORT, write_report
from bench.results import DEFAULT_RESULTS_DIR


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("report", help="render results/leaderboard.html")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_REPORT)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bench.recheck import recheck_note
    from bench.report import load_results

    path = write_report(args.results_dir, args.out)
    print(f"wrote {path}")
    note = recheck_note(load_results(args.results_dir))
    if note:
        print(note)
    return 0
