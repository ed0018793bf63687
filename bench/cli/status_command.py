"""`bench status`: a sweep's done, running, failed and remaining runs, from its results directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.run_command import _names, _seeds
from bench.shards import parse_shard


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "status",
        help="done, running, failed and remaining runs of a sweep (the plan of `run --all`); under "
        "--executor ray a run counts as running from its submission (queued or running)",
    )
    parser.add_argument("--results-dir", type=Path, help="the sweep's results (default: results/runs)")
    parser.add_argument("--methods", type=_names, help="comma-separated methods, as given to run --all")
    parser.add_argument("--tasks", type=_names, help="comma-separated tasks, as given to run --all")
    parser.add_argument("--models", type=_names, help="comma-separated models, as given to run --all")
    parser.add_argument("--seeds", type=_seeds, help="comma-separated seeds, as given to run --all")
    parser.add_argument("--ablations", type=_names, help="comma-separated ablations, as given to run --all")
    parser.add_argument("--examples", type=int, help="number of examples, as given to run --all")
    parser.add_argument("--data-seed", type=int, help="data seed, as given to run --all")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="as given to run --all")
    parser.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE", help="as given to run --all")
    parser.add_argument("--shard", type=parse_shard, metavar="I/N", help="only the runs of this shard")
    parser.add_argument("--list", action="store_true", help="name every run that is not done")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bench.cli.run_command import parse_options, planned_runs
    from bench.results import DEFAULT_RESULTS_DIR
    from bench.sweep_status import sweep_status

    root = args.results_dir or DEFAULT_RESULTS_DIR
    plan = planned_runs(args, parse_options(args.option), parse_options(args.task_option))
    status = sweep_status(plan, root)
    for label, where in status.running:
        print(f"running  {label}: {where}")
    for label, why in status.failed:
        print(f"failed   {label}: {why}")
    if args.list:
        for label in status.remaining:
            print(f"to do    {label}")
    print(
        f"{len(plan)} planned in {root}: {len(status.done)} done, {len(status.running)} running, "
        f"{len(status.failed)} failed, {len(status.remaining)} remaining"
    )
    return 0
