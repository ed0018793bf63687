"""`bench estimate`: a run's peak memory and passes, predicted from the architecture table alone."""

from __future__ import annotations

import argparse

DEVICE_GB_DEFAULT = 80.0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "estimate",
        help="predict a run's peak memory and forward/backward passes without loading weights",
        description="Predicted from the architecture table (bench/zoo/architectures.py): no weights are "
        "loaded, nothing is downloaded. Hub models, aliases and random:<name>[@size] are accepted.",
    )
    parser.add_argument("--method", required=True, help="method name (see `bench list methods`)")
    parser.add_argument("--model", required=True, help="hub model, alias or random:<name>[@size], e.g. llama3")
    parser.add_argument("--task", default="induction", help="task (sets the prompt length; default induction)")
    parser.add_argument("--batch", type=int, default=None, help="examples (default: the task's)")
    parser.add_argument("--pos", type=int, default=None, help="tokens per example (default: the task's length)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--steps", type=int, default=None, help="integration / training steps (default: method's)")
    parser.add_argument("--device-gb", type=float, default=DEVICE_GB_DEFAULT, help="device memory to fit (default 80)")
    parser.set_defaults(handler=run)


TASK_LENGTHS = {"induction": 25}
"""Tokens per example of tasks whose length is fixed by construction (others: pass --pos)."""


def run(args: argparse.Namespace) -> int:
    import sys

    from bench.memory_estimate import estimate, fit_chunk
    from bench.zoo import hub_architecture

    arch = hub_architecture(args.model)
    if arch is None:
        print(
            f"error: no architecture for model {args.model!r}; bench estimate reads hub models, their aliases "
            "and random:<name>[@size] (see `bench list models`)",
            file=sys.stderr,
        )
        return 2
    pos = args.pos or TASK_LENGTHS.get(args.task)
    if pos is None:
        print(f"error: task {args.task!r} has no fixed length; give --pos N (tokens per example)", file=sys.stderr)
        return 2
    batch = args.batch or 64
    options = {} if args.steps is None else {"steps": args.steps}
    try:
        found = estimate(args.method, arch.config, batch, pos, args.dtype, options)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    gib = 2**30
    print(f"{args.method} on {arch.name} ({args.dtype}), {batch} x {pos} tokens:")
    print(f"  predicted peak memory: {found.peak_bytes / gib:.2f} GiB")
    for part, size in found.parts.items():
        print(f"    {part:<17} {size / gib:8.2f} GiB")
    bound = "" if found.exact_passes else "at most "
    print(
        f"  passes: {bound}{found.forwards} forward, {found.backwards} backward "
        f"(+{found.evaluation_forwards} masked forwards to score faithfulness)"
    )
    device = args.device_gb * 1e9
    if found.peak_bytes > device:
        chunk = fit_chunk(args.method, arch.config, batch, pos, args.dtype, device)
        if chunk is None:
            print(f"  does not fit {args.device_gb:g} GB even one example at a time")
        else:
            size, part = chunk
            print(
                f"  exceeds {args.device_gb:g} GB; in chunks of {size} examples the peak is "
                f"{part.peak_bytes / gib:.2f} GiB (chunked execution: see README, Memory)"
            )
    else:
        print(f"  fits {args.device_gb:g} GB")
    return 0
