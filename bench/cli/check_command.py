"""`bench check`: rerun the default suite (or the part of it named by `--tasks`/`--methods`),
remeasure its cells' stability, and fail on any regression against the committed baseline
(`--update` writes a new baseline)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bench.package_data import checkout_root
from bench.shards import parse_shard

if TYPE_CHECKING:  # the handler imports these: `python -m bench --help` must not pay for torch
    from bench.runner import RunRequest
    from bench.stability import Stability
    from bench.stability_suite import Cell


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("check", help="rerun the default suite and compare with results/baseline.json")
    parser.add_argument("--baseline", type=Path, help="baseline file (default: the shipped results/baseline.json)")
    parser.add_argument("--update", action="store_true", help="write the fresh scores as the new baseline")
    parser.add_argument("--tasks", type=_names, help="comma-separated tasks: check only their runs (default: all)")
    parser.add_argument("--methods", type=_names, help="comma-separated methods: check only their runs (default: all)")
    parser.add_argument(
        "--shard", type=parse_shard, metavar="I/N", help="check only the I-th of N exact parts of the runs (CI jobs)"
    )
    parser.add_argument(
        "--stability",
        choices=["cheap", "all", "none"],
        default="cheap",
        help="which cells' stability to remeasure (with the baseline's B) and compare: cheap (default: every "
        "method but those that train), all, none; --update measures them with B = 3",
    )
    parser.set_defaults(handler=run)


def _expected(path: Path, plan: list[RunRequest] | None, cells: list[Cell]) -> dict[str, dict[str, object]]:
    """The baseline's entries of the runs (all, or those of `plan`, part of the suite) and of
    the stability of `cells`."""
    from bench.regression import STABILITY_PREFIX, key_label

    if not path.is_file():
        raise SystemExit(f"error: no baseline at {path}")
    baseline = json.loads(path.read_text())
    runs = {label: entry for label, entry in baseline.items() if not label.startswith(STABILITY_PREFIX)}
    if plan is not None:
        planned = {key_label(request.resolve(), request.variant()) for request in plan}
        runs = {label: entry for label, entry in runs.items() if label in planned}
        if not runs:
            raise SystemExit(f"error: {path} has no entries for the chosen runs")
    chosen = {cell.label for cell in cells}
    return {**runs, **{label: entry for label, entry in baseline.items() if label in chosen}}


def _measure(cells: list[Cell], expected: dict[str, dict[str, object]] | None) -> dict[str, Stability]:
    """Each cell's stability with the baseline's B (B = 3 when writing a new baseline), by label;
    a cell the baseline has no entry for is not measured, one that fails is one line."""
    from tqdm.auto import tqdm

    from bench.stability import DEFAULT_BOOTSTRAP
    from bench.stability_run import measure_stability

    measured = {}
    todo = [cell for cell in cells if expected is None or cell.label in expected]
    for cell in tqdm(todo, desc="check stability", unit="cell"):
        bootstrap = DEFAULT_BOOTSTRAP if expected is None else expected[cell.label]["bootstrap"]
        try:
            measured[cell.label] = measure_stability(cell.request, bootstrap, lambda _: None)  # type: ignore[arg-type]
        except Exception as err:
            tqdm.write(f"stability failed for {cell.label}: {type(err).__name__}: {err}")
    return measured


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from bench.regression import BASELINE_PATH, compare, write_baseline
    from bench.runner import execute
    from bench.stability_suite import plan_cells
    from bench.suite import plan_suite
    from bench.zoo import model_status

    args.baseline = args.baseline or BASELINE_PATH
    subset = bool(args.tasks or args.methods or args.shard)
    if args.update and subset:
        # a baseline written from part of the suite would silently drop every other entry
        extra = " or --shard" if args.shard else ""
        message = f"error: --update rewrites the whole baseline; run it without --tasks or --methods{extra}"
        print(message, file=sys.stderr)
        return 2
    if args.update and args.baseline == BASELINE_PATH and checkout_root() is None:
        print("error: CDBench is installed, not a checkout: give --baseline PATH to write a baseline", file=sys.stderr)
        return 2
    suite = plan_suite(methods=args.methods, tasks=args.tasks)
    # The guarded suite is the one every machine can run: models compiled or trained here,
    # never hub weights (present on some machines only, and hours of work on a CPU).
    kinds = {model: model_status(model).kind for model in {r.model for r in suite}}
    offline = [r for r in suite if kinds[r.model] != "hub"]
    plan = offline
    if args.shard is not None:
        from bench.shards import shard_plan

        plan = shard_plan(offline, args.shard)
    if not plan:
        print("error: nothing to check: the chosen tasks run only on hub models", file=sys.stderr)
        return 2
    # a cell is checked by the shard holding its lowest-seed run, as `run --all --shard` measures it
    cells = plan_cells(offline, plan if args.shard is not None else None, args.stability)
    cells = [cell for cell in cells if cell.skip is None]
    expected = None if args.update else _expected(args.baseline, plan if subset else None, cells)
    results = []
    with tempfile.TemporaryDirectory(prefix="cdbench-check-") as scratch:
        for request in tqdm(plan, desc="check", unit="run"):
            result, _ = execute(request, Path(scratch))
            results.append(result)
    stabilities = _measure(cells, expected)
    if expected is None:
        path = write_baseline(results, args.baseline, stabilities)
        print(f"wrote {path} ({len(results)} runs, {len(stabilities)} stability cells)")
        return 0
    problems = compare(results, expected, stabilities)
    for problem in problems:
        print(f"REGRESSION {problem}", file=sys.stderr)
    print(
        f"checked {len(results)} runs and {len(stabilities)} stability cells against {args.baseline}: "
        f"{len(problems)} regression(s)"
    )
    return 1 if problems else 0
