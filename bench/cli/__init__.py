"""The `bench` command line, one module per subcommand."""

from __future__ import annotations

import argparse
import sys

# Command modules import only argparse-level things at the top; each handler imports what its
# command needs (torch, TransformerLens, tasks, methods, jax/tracr), so `--help` stays fast.
from bench.cli import (
    check_command,
    check_method_command,
    draw_command,
    estimate_command,
    export_command,
    ground_truth_command,
    list_command,
    merge_command,
    models_command,
    report_command,
    run_command,
    stability_command,
    status_command,
)
from bench.registry import UnknownNameError

# Errors that mean "bad input" (exit 2) or "model not reachable here" (exit 1), as
# (module, class name): a class whose module was never imported cannot have been raised, so
# `main` looks them up lazily instead of importing the modules that define them.
USAGE_ERRORS = [
    ("bench.runner", "IncompatibleChoice"),
    ("bench.task_data", "TaskInputError"),
    ("bench.ground_truth", "GroundTruthError"),
    ("bench.result_schema", "ResultFileError"),
    ("bench.merge", "MergeConflict"),
]
# exit 1, one line: nothing the user typed was wrong, but this run cannot be done
UNAVAILABLE_ERRORS = [("bench.zoo.hub", "ModelUnavailable"), ("bench.runner", "MethodContractError")]

EPILOG = """examples:
  python -m bench list
  python -m bench list --plugin my_method.py
  python -m bench run --method exact-patching --task tracr-reverse
  python -m bench run --all
  python -m bench run --all --shard 2/4 --results-dir results/shard2
  python -m bench merge results/shard1 results/shard2 --into results/runs
  python -m bench status
  python -m bench report
  python -m bench draw results/runs/tracr-reverse/tracr-reverse/eap/zero-seed0-*.json --out circuit.svg
  python -m bench check
  python -m bench check-method eap
  python -m bench stability --method eap --task tracr-reverse --bootstrap 5
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
    parser.add_argument(
        "--plugin",
        action="append",
        metavar="MODULE_OR_FILE.py",
        help="import a plugin that registers methods, tasks or models (repeatable, accepted before or after the "
        "command; also the comma-separated CDBENCH_PLUGINS variable; installed packages use entry points)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    list_command.add_parser(commands)
    run_command.add_parser(commands)
    ground_truth_command.add_parser(commands)
    report_command.add_parser(commands)
    draw_command.add_parser(commands)
    check_command.add_parser(commands)
    check_method_command.add_parser(commands)
    models_command.add_parser(commands)
    estimate_command.add_parser(commands)
    export_command.add_parser(commands)
    merge_command.add_parser(commands)
    status_command.add_parser(commands)
    stability_command.add_parser(commands)
    return parser


def _loaded(names: list[tuple[str, str]]) -> tuple[type[BaseException], ...]:
    """The named exception classes whose modules are imported by now."""
    found = []
    for module, name in names:
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def split_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """`--plugin X` / `--plugin=X` anywhere on the line, and the rest of it, so every command
    (whoever wrote it) accepts plugins without declaring the option itself."""
    plugins, rest = [], []
    items = iter(argv)
    for item in items:
        if item == "--plugin":
            value = next(items, None)
            if value is None:
                raise SystemExit("error: --plugin needs a module name or a .py file")
            plugins.append(value)
        elif item.startswith("--plugin="):
            plugins.append(item.removeprefix("--plugin="))
        else:
            rest.append(item)
    return plugins, rest


def main(argv: list[str] | None = None) -> int:
    from bench import plugins

    requested, argv = split_plugins(sys.argv[1:] if argv is None else list(argv))
    plugins.REQUESTED[:] = requested
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted; finished results are kept and a rerun resumes from them", file=sys.stderr)
        return 130
    except Exception as err:
        if isinstance(err, (UnknownNameError, *_loaded(USAGE_ERRORS))):
            print(f"error: {err}", file=sys.stderr)
            return 2
        if isinstance(err, _loaded(UNAVAILABLE_ERRORS)):
            print(f"error: {err}", file=sys.stderr)
            return 1
        raise
