"""`bench report`: render the leaderboard HTML from the result files."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("report", help="render results/leaderboard.html")
    parser.add_argument("--results-dir", type=Path, help="result files to read (default: results/runs)")
    parser.add_argument("--out", type=Path, help="where the page goes (default: results/leaderboard.html)")
    parser.add_argument(
        "--stability-dir",
        type=Path,
        help="stability measurements to show (default: where `run --all` writes them for --results-dir: "
        "results/stability for results/runs, else RESULTS_DIR/stability)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bench.recheck import recheck_note
    from bench.report import DEFAULT_REPORT, load_results, write_report
    from bench.results import DEFAULT_RESULTS_DIR

    results_dir = args.results_dir or DEFAULT_RESULTS_DIR
    path = write_report(results_dir, args.out or DEFAULT_REPORT, args.stability_dir)
    print(f"wrote {path}")
    note = recheck_note(load_results(results_dir))
    if note:
        print(note)
    return 0
