"""`bench ground-truth`: derive the Tracr circuits from their weights, or check every file."""

from __future__ import annotations

import argparse
import sys

from bench.ground_truth import GROUND_TRUTH_DIR, GroundTruthError, load_ground_truth, write_ground_truth
from bench.zoo import TRACR_MODELS, load_model
from tasks import TASKS


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("ground-truth", help="derive or check ground-truth circuits")
    actions = parser.add_subparsers(dest="action", required=True)
    derive = actions.add_parser("derive", help="write ground_truth/<task>.json for a Tracr task")
    derive.add_argument("task", help="a task on a Tracr model (tracr-reverse, tracr-xproportion)")
    derive.set_defaults(handler=run_derive)
    check = actions.add_parser("check", help="load every ground-truth file against its model's graph")
    check.set_defaults(handler=run_check)


def run_derive(args: argparse.Namespace) -> int:
    from bench.zoo.tracr_circuits import ground_truth_payload

    task = TASKS.get(args.task)
    if task.model not in TRACR_MODELS:
        print(
            f"error: task {args.task!r} is not on a Tracr model; valid choices: "
            f"{', '.join(n for n in TASKS if TASKS.get(n).model in TRACR_MODELS)}",
            file=sys.stderr,
        )
        return 2
    path = write_ground_truth(ground_truth_payload(args.task))
    print(f"wrote {path}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from bench.graph import Graph

    failures = 0
    for path in sorted(GROUND_TRUTH_DIR.glob("*.json")):
        task = TASKS.get(path.stem)
        try:
            truth = load_ground_truth(path.stem, Graph.from_model(load_model(task.model)))
        except GroundTruthError as err:
            print(f"FAIL {err}")
            failures += 1
            continue
        detectable = ", ".join(f"{kind} {len(edges)}" for kind, edges in truth.detectable.items())
        print(f"ok   {path.name}: {len(truth.edges)} edges, {len(truth.nodes)} nodes; detectable: {detectable}")
    return 1 if failures else 0
