"""`bench run`: one method on one task, or every method on every runnable task."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.bootstrap_count import check_bootstrap
from bench.shards import parse_shard

if TYPE_CHECKING:  # the handlers import these: `python -m bench --help` must not pay for torch
    from bench.results import RunResult
    from bench.runner import RunRequest
    from bench.zoo import ModelStatus


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run method adapters and write their edge scores")
    parser.add_argument("--all", action="store_true", help="every method on every task whose model is here")
    parser.add_argument(
        "--method",
        help="method name (see `bench list methods`), or file:PATH for an MIB importance file or circuit folder",
    )
    parser.add_argument(
        "--task", help="task name (see `bench list tasks`), a JSONL file of prompt pairs, or a RASP program file (.py)"
    )
    parser.add_argument(
        "--model", help="zoo model, or a Hugging Face checkpoint directory (default: the task's own model)"
    )
    parser.add_argument(
        "--ablation",
        default="corrupted",
        help="corrupted (default), mean, zero, or zero-token (zero with the positional embedding kept, as MIB)",
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        help="precision of the model (default float32); a bf16 run is keyed as MODEL~bfloat16; scores "
        "accumulate in float32",
    )
    parser.add_argument(
        "--device",
        help="auto (CUDA where present, else the CPU; the default for one run), cpu, cuda, cuda:1 or mps; "
        "--all defaults to cpu, so the suite's scores are the same on every machine",
    )
    parser.add_argument(
        "--examples-per-pass",
        type=int,
        metavar="N",
        help="score the examples N at a time to cut peak memory, same scores up to float rounding (EAP, "
        "EAP-IG, EAP-GP, exact patching; default: all at once, or what fits a CUDA device's free memory)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, help="number of examples (default: the task's)")
    parser.add_argument("--data-seed", type=int, help="seed the examples are drawn with (default: the run's seed)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method parameter, repeatable (e.g. --option steps=20)",
    )
    parser.add_argument(
        "--task-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="setting of a task file, repeatable (JSONL: metric=logit-diff|prob-diff)",
    )
    parser.add_argument("--methods", type=_names, help="with --all: comma-separated methods (default: all)")
    parser.add_argument(
        "--tasks", type=_names, help="with --all: comma-separated tasks or task files (default: all built-in)"
    )
    parser.add_argument(
        "--models",
        type=_names,
        help="with --all: comma-separated models or checkpoint directories (default: each task's own)",
    )
    parser.add_argument("--seeds", type=_seeds, help="with --all: comma-separated seeds (default: 0)")
    parser.add_argument(
        "--ablations", type=_names, help="with --all: comma-separated ablations (default: each task's suite ablations)"
    )
    parser.add_argument("--results-dir", type=Path, help="where results go (default: results/runs)")
    parser.add_argument(
        "--force", action="store_true", help="recompute results (and, with --all, stability) that already exist"
    )
    parser.add_argument(
        "--stability",
        choices=["cheap", "all", "none"],
        default="cheap",
        help="with --all: after the runs, measure each cell's stability (one per method, task, model, ablation and "
        "variant; B bootstrap reruns, and B seeds for a stochastic method) into the stability folder beside the "
        "results: cheap (default: every method but those that train), all (Edge Pruning and subnetwork probing "
        "too: each rerun is a training run), none; with --executor ray it runs here, after the Ray runs",
    )
    parser.add_argument(
        "--bootstrap",
        type=_bootstrap,
        metavar="B",
        help="with --all: reruns per stability measurement, at least 2 (default 3)",
    )
    parser.add_argument(
        "--shard",
        type=parse_shard,
        metavar="I/N",
        help="with --all: run only the I-th of N exact parts of the plan (1 <= I <= N; for job arrays)",
    )
    parser.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="with --all: local (default; one run after another here) or ray (each run a Ray task; needs "
        "the cdbench[ray] extra)",
    )
    parser.add_argument("--address", help="with --executor ray: the Ray cluster (default: start a local Ray here)")
    parser.add_argument("--ray-cpus", type=int, help="with --executor ray and no --address: CPUs of the local Ray")
    parser.add_argument(
        "--ray-resources",
        action="append",
        default=[],
        metavar="NAME=NUMBER",
        help="with --executor ray: what every run asks for instead of its model's preset (num_cpus, num_gpus, memory)",
    )
    parser.add_argument(
        "--max-retries", type=int, default=2, help="with --executor ray: retries of a run whose worker dies (default 2)"
    )
    parser.set_defaults(handler=run)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _bootstrap(text: str) -> int:
    try:
        value: object = int(text)
    except ValueError:
        value = text  # not an integer, so refused below
    try:
        return check_bootstrap(value, given=text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"B {err}") from None


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None


def parse_options(pairs: list[str]) -> dict[str, object]:
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --option {pair!r} is not KEY=VALUE")
        for cast in (int, float):
            try:
                options[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            options[key] = value
    return options


def run(args: argparse.Namespace) -> int:
    from bench.results import DEFAULT_RESULTS_DIR
    from bench.runner import RunRequest, execute

    args.results_dir = args.results_dir or DEFAULT_RESULTS_DIR
    options = parse_options(args.option)
    task_options = parse_options(args.task_option)
    if args.all:
        if args.examples_per_pass is not None:
            print("error: --examples-per-pass applies to one run (--method and --task), not to --all", file=sys.stderr)
            return 2
        return _run_all(args, options, task_options)
    if args.shard is not None or args.executor != "local" or args.bootstrap is not None:
        print(
            "error: --shard, --executor and --bootstrap apply to the plan of --all; give them with --all",
            file=sys.stderr,
        )
        return 2
    method, task, model = args.method, args.task, args.model
    if method and method.startswith("file:"):  # an MIB/EAP-IG file scored as a method's output
        from bench.mib_import import file_request

        method, options, task, model = file_request(method, options, task, model)
    if not method or not task:
        print("error: give --method and --task, or --all", file=sys.stderr)
        return 2
    request = RunRequest(
        method,
        task,
        model,
        args.ablation,
        args.seed,
        args.examples,
        options,
        args.data_seed,
        task_options=task_options,
        dtype=args.dtype,
        device=args.device or "auto",
        examples_per_pass=args.examples_per_pass,
    )
    result, path = execute(request, args.results_dir)
    print(f"{_label(request)}: {len(result.edge_scores)} edges scored in {result.wall_time_s:.2f}s -> {path}")
    print("  " + summary(result))
    warning = no_signal_warning(result)
    if warning:
        print(warning, file=sys.stderr)
    return 0


def summary(result: RunResult) -> str:
    """One line of the headline scores."""
    faith = result.evaluation["faithfulness"]
    low, high = faith["faithfulness_auc_ci"]
    parts = [f"faithfulness AUC {faith['faithfulness_auc']:.3f} [{low:.3f}, {high:.3f}]", f"CPR {faith['cpr']:.3f}"]
    truth = result.evaluation.get("ground_truth", {})
    for which in ("full", "detectable"):
        if which in truth:
            parts.append(f"ROC AUC vs {which} ground truth {truth[which]['edge']['roc_auc']:.3f}")
    return ", ".join(parts)


def no_signal_warning(result: RunResult) -> str | None:
    """One line when the run's faithfulness has no signal (see `bench.scoring`), else None."""
    faith = result.evaluation["faithfulness"]
    if not faith["no_signal"]:
        return None
    low, high = faith["gap_ci"]
    n = result.n_examples
    if n < 2:
        reason = "one example cannot tell it from 0"
    elif faith["gap"] == 0:
        reason = "it is exactly 0"
    else:
        reason = "its interval contains 0"
    return (
        f"warning: no signal: m(model) - m(empty) = {faith['gap']:.3g} (95% interval [{low:.3g}, {high:.3g}] over "
        f"{n} example{'s' * (n != 1)}) and {reason}; faithfulness means nothing here and the leaderboard does "
        "not rank this run"
    )


def _label(request: RunRequest) -> str:
    from bench.results import variant_text

    variant = variant_text(request.variant())
    return f"{request.find_task().name} / {request.method} / {request.ablation} / seed {request.seed}" + (
        f" / {variant}" if variant else ""
    )


def _run_on_ray(args: argparse.Namespace, requests: list[RunRequest]) -> int:
    from importlib.util import find_spec

    from bench.ray_executor import parse_resources, run_on_ray

    if find_spec("ray") is None:
        print('error: --executor ray needs Ray: pip install -c constraints.txt -e ".[ray]"', file=sys.stderr)
        return 2
    try:
        resources = parse_resources(args.ray_resources)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = run_on_ray(
        requests,
        args.results_dir,
        address=args.address,
        num_cpus=args.ray_cpus,
        resources=resources,
        max_retries=args.max_retries,
        force=args.force,
    )
    print(
        f"finished: {counts.done} run, {counts.skipped} skipped (already done or model unavailable), "
        f"{counts.failed} failed"
    )
    return 0


def planned_runs(
    args: argparse.Namespace, options: dict[str, object], task_options: dict[str, object]
) -> list[RunRequest]:
    """The runs `run --all` means by these filters, cut to `--shard` when given (shared by `status`)."""
    from bench.shards import shard_plan

    requests = _whole_plan(args, options, task_options)
    return requests if args.shard is None else shard_plan(requests, args.shard)


def _whole_plan(
    args: argparse.Namespace, options: dict[str, object], task_options: dict[str, object]
) -> list[RunRequest]:
    from bench.suite import plan_suite

    return plan_suite(
        args.methods,
        args.tasks,
        args.models,
        args.seeds,
        args.ablations,
        args.examples,
        options,
        args.data_seed,
        task_options,
    )


def _run_all(args: argparse.Namespace, options: dict[str, object], task_options: dict[str, object]) -> int:
    from bench.shards import shard_plan

    device = args.device or "cpu"  # the suite's scores are the same on every machine unless asked otherwise
    plan = [dataclasses.replace(request, device=device) for request in _whole_plan(args, options, task_options)]
    requests = plan if args.shard is None else shard_plan(plan, args.shard)
    if args.shard is not None:
        print(f"shard {args.shard}: {len(requests)} run(s) of the plan")
    code = _run_on_ray(args, requests) if args.executor == "ray" else _run_here(args, requests)
    return code or _stability_phase(args, plan, requests)


def _stability_phase(args: argparse.Namespace, plan: list[RunRequest], requests: list[RunRequest]) -> int:
    """Measure the stability of the cells whose runs are `requests` (`bench.stability_suite`)."""
    from bench.stability import DEFAULT_BOOTSTRAP, stability_dir
    from bench.stability_suite import plan_cells, run_stability
    from bench.zoo import model_status

    cells = plan_cells(plan, requests if args.shard is not None else None, args.stability)
    if not cells:
        return 0
    statuses: dict[str, bool] = {}

    def available(model: str) -> bool:
        if model not in statuses:
            statuses[model] = model_status(model).available
        return statuses[model]

    bootstrap = args.bootstrap or DEFAULT_BOOTSTRAP
    print(f"stability of {len(cells)} cell(s), B={bootstrap}, into {stability_dir(args.results_dir)}")
    counts = run_stability(cells, bootstrap, stability_dir(args.results_dir), force=args.force, available=available)
    print(counts)
    return 0


def _run_here(args: argparse.Namespace, requests: list[RunRequest]) -> int:
    """The runs one after another in this process (`--executor local`)."""
    from tqdm.auto import tqdm

    from bench.results import record_failure, result_exists
    from bench.runner import execute
    from bench.sweep_status import running_marker
    from bench.zoo import ModelUnavailable, model_status

    skipped, done, failed = 0, 0, 0
    statuses: dict[str, ModelStatus] = {}  # one availability probe per model, one line per missing model
    for request in tqdm(requests, desc="runs", unit="run"):
        key = request.resolve()
        if not args.force and result_exists(key, args.results_dir):
            skipped += 1
            continue
        if key.model not in statuses:
            statuses[key.model] = model_status(key.model)
            if not statuses[key.model].available:
                tqdm.write(f"skip every run on model {key.model}: {statuses[key.model].reason}")
        if not statuses[key.model].available:
            skipped += 1
            continue
        try:
            with running_marker(key, args.results_dir):  # `bench status` shows it as running
                result, _ = execute(request, args.results_dir)
        except ModelUnavailable as err:
            tqdm.write(f"skip {_label(request)}: {err}")
            skipped += 1
            continue
        except Exception as err:
            path = record_failure(key, err, args.results_dir)
            tqdm.write(f"failed {_label(request)}: {type(err).__name__}: {err} (recorded in {path})")
            failed += 1
            continue
        done += 1
        tqdm.write(f"{_label(request)}: {result.wall_time_s:.2f}s, {summary(result)}")
        warning = no_signal_warning(result)
        if warning:
            tqdm.write(warning, file=sys.stderr)
    print(f"finished: {done} run, {skipped} skipped (already done or model unavailable), {failed} failed")
    return 0
