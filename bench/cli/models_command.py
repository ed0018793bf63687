"""`bench models`: check the shipped trained models (SIIT and induction), show them, or retrain them."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("models", help="check, list or retrain the models trained here with known circuits")
    actions = parser.add_subparsers(dest="action", required=True)
    make = actions.add_parser(
        "build",
        help="check the shipped weights against their sha256 (all models when no name is given); "
        "with --retrain, train new ones",
    )
    make.add_argument("names", nargs="*", metavar="NAME", help="a shipped trained model (see `bench models list`)")
    make.add_argument(
        "--retrain",
        action="store_true",
        help="train from scratch into the cache ($CDBENCH_CACHE, default ~/.cache/cdbench; one thread, "
        "resumes an interrupted run) and check the acceptance thresholds; scores still use the shipped weights",
    )
    make.add_argument("--force", action="store_true", help="with --retrain: train again even if the cache has it")
    make.add_argument(
        "--publish",
        action="store_true",
        help="with --retrain: replace the shipped weights and ground_truth/ with the retrained ones "
        "(then regenerate the baseline: `bench check --update`)",
    )
    make.set_defaults(handler=run_build)
    for alias in ("list", "status"):
        show = actions.add_parser(alias, help="show the shipped trained models and whether their weights verify")
        show.set_defaults(handler=run_list)


def _figures(card: dict[str, Any]) -> tuple[bool, str]:
    passed = all(fig["passed"] for fig in card["acceptance"].values())
    return passed, ", ".join(f"{k}={fig['value']:.4g}" for k, fig in card["acceptance"].items())


def run_build(args: argparse.Namespace) -> int:
    from bench.zoo.trained import (
        TRAINED_MODELS,
        TrainedWeightsError,
        is_retrained,
        publish_retrained,
        retrain,
        shipped_card,
    )

    if (args.force or args.publish) and not args.retrain:
        raise SystemExit("error: --force and --publish go with --retrain")
    names = args.names or list(TRAINED_MODELS)
    for name in names:
        is_retrained(name)  # fail on a bad name before any work
    failed = []
    for name in names:
        try:
            card = retrain(name, force=args.force) if args.retrain else shipped_card(name)
        except TrainedWeightsError as err:
            print(f"FAIL {err}")
            failed.append(name)
            continue
        passed, figures = _figures(card)
        where = f"retrained ({card['training']['seconds']:.0f} s)" if args.retrain else "shipped weights verified"
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {where}; {figures}")
        if not passed:
            failed.append(name)
        elif args.publish:
            publish_retrained(name)
            print(f"     published {name}: commit its weights, card and ground truth, then `bench check --update`")
    return 1 if failed else 0


def run_list(args: argparse.Namespace) -> int:
    from bench.zoo.trained import TRAINED_MODELS, trained_status

    width = max(len(name) for name in TRAINED_MODELS)
    for name in TRAINED_MODELS:
        print(f"{name.ljust(width)}  {trained_status(name)[1]}")
    return 0
