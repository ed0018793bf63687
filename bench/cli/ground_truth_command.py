"""`bench ground-truth`: derive a ground-truth circuit (Tracr: from the weights; IOI, greater-than,
docstring: from ACDC's canonical rules), or check every file against its model's graph."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("ground-truth", help="derive or check ground-truth circuits")
    actions = parser.add_subparsers(dest="action", required=True)
    derive = actions.add_parser("derive", help="write ground_truth/<task>.json")
    derive.add_argument(
        "task",
        help="a built-in Tracr task (tracr-reverse, tracr-xproportion, ...), a canonical one (ioi, greater-than, "
        "docstring) or a RASP program file (.py)",
    )
    derive.add_argument(
        "--detectable",
        action="store_true",
        help="canonical tasks: also measure which edges are detectable per ablation (needs the real weights)",
    )
    derive.set_defaults(handler=run_derive)
    check = actions.add_parser("check", help="load every ground-truth file against its model's graph")
    check.set_defaults(handler=run_check)


def _tracr_tasks() -> list[str]:
    from bench.zoo.tracr_programs import model_names
    from tasks import TASKS

    return [name for name in TASKS if TASKS.get(name).model in model_names()]


def canonical_payload(task: str, detectable: bool) -> dict:
    from bench.canonical_circuits import ground_truth_payload, measure_detectable
    from bench.detectability import DETECTABLE_RULE

    payload = ground_truth_payload(task)
    if detectable:
        del payload["detectable_note"]
        payload["detectable_rule"] = DETECTABLE_RULE
        payload["detectable"] = measure_detectable(task)
    return payload


def run_derive(args: argparse.Namespace) -> int:
    from bench.canonical_circuits import CANONICAL
    from bench.ground_truth import ground_truth_path, write_ground_truth
    from tasks.user_tasks import find_task

    if args.task.endswith(".py"):  # a RASP program file: derived into its cache, not into the package
        task = find_task(args.task)
        print(f"wrote {ground_truth_path(task.name, task.ground_truth_dir())}")
        return 0
    if args.task in CANONICAL:
        payload = canonical_payload(args.task, args.detectable)
    elif args.task in _tracr_tasks():
        from bench.zoo.tracr_circuits import ground_truth_payload

        payload = ground_truth_payload(args.task)
    else:
        choices = [*_tracr_tasks(), *CANONICAL]
        print(
            f"error: no derivable ground truth for task {args.task!r}; valid choices: {', '.join(choices)}",
            file=sys.stderr,
        )
        return 2
    path = write_ground_truth(payload)
    print(f"wrote {path}")
    return 0


def _model_of(path: Path) -> str:
    """The model the file is a circuit of (its graph is what the file must fit)."""
    return json.loads(path.read_text())["model"]


def run_check(args: argparse.Namespace) -> int:
    from bench.ground_truth import GROUND_TRUTH_DIR, GroundTruthError, load_ground_truth
    from bench.zoo import model_graph

    failures = 0
    for path in sorted(GROUND_TRUTH_DIR.glob("*.json")):
        try:
            truth = load_ground_truth(path.stem, model_graph(_model_of(path)))
        except GroundTruthError as err:
            print(f"FAIL {err}")
            failures += 1
            continue
        detectable = ", ".join(f"{kind} {len(edges)}" for kind, edges in truth.detectable.items()) or "not measured"
        print(f"ok   {path.name}: {len(truth.edges)} edges, {len(truth.nodes)} nodes; detectable: {detectable}")
    return 1 if failures else 0
