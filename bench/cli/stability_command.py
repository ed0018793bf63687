"""`bench stability`: how stable one method's circuit is over bootstrap resamples of the
examples (and seeds, for a stochastic method); writes a small JSON beside the results."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "stability",
        help="rerun a method on bootstrap resamples and report the agreement of its circuits",
        description="Mean Jaccard of the top-k circuits and Spearman correlation of the scores over every "
        "pair of B reruns on bootstrap resamples of the examples (and B seeds for stochastic methods), "
        "with the 2.5-97.5 percentile range over the pairs.",
    )
    parser.add_argument("--method", required=True, help="method name (see `bench list methods`)")
    parser.add_argument("--task", required=True, help="task name (see `bench list tasks`)")
    parser.add_argument("--model", help="zoo model (default: the task's own model)")
    parser.add_argument("--ablation", default="corrupted", help="corrupted (default), mean, zero or zero-token")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, help="number of examples (default: the task's)")
    parser.add_argument("--bootstrap", type=int, help="number of resamples B, at least 2 (default 3)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps, or auto")
    parser.add_argument(
        "--out-dir", type=Path, help="where the JSON goes (default: results/stability, where `bench report` looks)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bench.runner import RunRequest
    from bench.stability import DEFAULT_BOOTSTRAP, DEFAULT_STABILITY_DIR, stability_path, write_record
    from bench.stability_run import measure_stability

    request = RunRequest(
        args.method, args.task, args.model, args.ablation, args.seed, args.examples, device=args.device
    )
    bootstrap = DEFAULT_BOOTSTRAP if args.bootstrap is None else args.bootstrap
    stability = measure_stability(request, bootstrap)
    root = args.out_dir or DEFAULT_STABILITY_DIR
    path = write_record(stability, stability_path(root, request.resolve(), bootstrap))
    print(f"{stability.method} on {stability.task}, B={bootstrap}, k={stability.k} ({stability.k_rule}):")
    print("  " + stability.summary())
    print(f"wrote {path}")
    return 0
