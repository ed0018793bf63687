"""The `bench` command line, one module per subcommand."""

from __future__ import annotations

import argparse
import sys

from bench.cli import (
    check_command,
    draw_command,
    export_command,
    ground_truth_command,
    list_command,
    models_command,
    report_command,
    run_command,
)
from bench.ground_truth import GroundTruthError
from bench.registry import UnknownNameError
from bench.result_schema import ResultFileError
from bench.runner import IncompatibleChoice
from bench.zoo import ModelUnavailable
from tasks.base import TaskInputError

EPILOG = """examples:
  python -m bench list
  python -m bench run --method exact-patching --task tracr-reverse
  python -m bench run --all
  python -m bench report
  python -m bench draw results/runs/tracr-reverse/tracr-reverse/eap/zero-seed0-*.json --out circuit.svg
  python -m bench check
  python -m bench ground-truth check
  python -m bench export results/runs/tracr-reverse --format mib --ranking both --out submission/
  python -m bench run --method file:submission/abs-True/tracr-reverse_tracr-reverse/importances.json
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="CDBench: compare automated circuit-discovery methods on transformer tasks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    list_command.add_parser(commands)
    run_command.add_parser(commands)
    ground_truth_command.add_parser(commands)
    report_command.add_parser(commands)
    draw_command.add_parser(commands)
    check_command.add_parser(commands)
    models_command.add_parser(commands)
    export_command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UnknownNameError, IncompatibleChoice, TaskInputError, GroundTruthError, ResultFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ModelUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished results are kept and a rerun resumes from them", file=sys.stderr)
        return 130
