"""`bench check`: rerun the default suite and fail on any score regression against the
committed baseline (`--update` writes a new baseline instead)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tqdm.auto import tqdm

from bench.regression import BASELINE_PATH, compare, write_baseline
from bench.runner import execute
from bench.suite import plan_suite
from bench.zoo import model_status


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("check", help="rerun the default suite and compare with results/baseline.json")
    parser.add_argument("--baseline", type=Path, default=BASELINE_PATH)
    parser.add_argument("--update", action="store_true", help="write the fresh scores as the new baseline")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="cdbench-check-") as scratch:
        suite = plan_suite()
        # The guarded suite is the one every machine can run: models compiled or trained here,
        # never hub weights (present on some machines only, and hours of work on a CPU).
        kinds = {model: model_status(model).kind for model in {r.model for r in suite}}
        plan = [r for r in suite if kinds[r.model] != "hub"]
        for request in tqdm(plan, desc="check", unit="run"):
            result, _ = execute(request, Path(scratch))
            results.append(result)
    if args.update:
        print(f"wrote {write_baseline(results, args.baseline)} ({len(results)} runs)")
        return 0
    problems = compare(results, json.loads(args.baseline.read_text()))
    for problem in problems:
        print(f"REGRESSION {problem}", file=sys.stderr)
    print(f"checked {len(results)} runs against {args.baseline}: {len(problems)} regression(s)")
    return 1 if problems else 0
