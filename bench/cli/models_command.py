"""`bench models`: build the locally trained models (SIIT and induction) or show their status."""

from __future__ import annotations

import argparse

from bench.zoo.trained import TRAINED_MODELS, build, is_built, status_line


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("models", help="build or list the models trained here with known circuits")
    actions = parser.add_subparsers(dest="action", required=True)
    make = actions.add_parser("build", help="train, measure and cache models (all when no name is given)")
    make.add_argument("names", nargs="*", metavar="NAME", help=f"any of: {', '.join(TRAINED_MODELS)}")
    make.add_argument("--force", action="store_true", help="retrain even if a cached model exists")
    make.set_defaults(handler=run_build)
    for alias in ("list", "status"):
        show = actions.add_parser(alias, help="show which trained models are built")
        show.set_defaults(handler=run_list)


def run_build(args: argparse.Namespace) -> int:
    names = args.names or list(TRAINED_MODELS)
    for name in names:
        is_built(name)  # fail on a bad name before training anything
    failed = []
    for name in names:
        card = build(name, force=args.force)
        passed = all(fig["passed"] for fig in card["acceptance"].values())
        figures = ", ".join(f"{k}={fig['value']}" for k, fig in card["acceptance"].items())
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {figures} ({card['training']['seconds']:.0f} s training)")
        if not passed:
            failed.append(name)
    return 1 if failed else 0


def run_list(args: argparse.Namespace) -> int:
    width = max(len(name) for name in TRAINED_MODELS)
    for name in TRAINED_MODELS:
        print(f"{name.ljust(width)}  {status_line(name)}")
    return 0
