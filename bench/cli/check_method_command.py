"""`bench check-method NAME`: does a method (built-in or plugin) keep the contract?"""

from __future__ import annotations

import argparse
import sys


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check-method",
        help="check that a method keeps the contract (finite score per edge, deterministic, options validated)",
        description="Run a method on a Tracr task and on a small random model: one finite float per edge, "
        "the same scores for the same seed, unknown options refused and its options checked before any work.",
    )
    parser.add_argument("name", help="method name (see `bench list methods`; plugins with --plugin)")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="method parameter, repeatable"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablation", default="corrupted", help="corrupted (default), mean, zero or zero-token")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bench.cli.run_command import parse_options
    from bench.conformance import check_method
    from bench.registry import UnknownNameError
    from bench.runtime import ABLATION_KINDS

    if args.ablation not in ABLATION_KINDS:
        raise UnknownNameError("ablation", args.ablation, list(ABLATION_KINDS))
    from methods.spec import METHODS

    options = parse_options(args.option)
    try:
        METHODS.get(args.name).resolve_options(options)  # a bad --option is bad input: one line, exit 2
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    findings = check_method(args.name, options, ablation=args.ablation, seed=args.seed, progress=print)
    failed = [f for f in findings if not f.passed]
    print(f"{args.name}: {len(findings) - len(failed)} checks passed, {len(failed)} failed")
    return 1 if failed else 0
