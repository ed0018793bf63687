"""`bench export`: results as an MIB circuit-track submission (see `bench.mib_export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("json", "pt")
RANKINGS = ("signed", "absolute", "both")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="write results in MIB's submission layout",
        description=(
            "Write results as MIB circuit-track folders OUT/abs-{True|False}/{task}_{model}/ (one folder per "
            "method first when there are several), each with one importance file or nine binary circuits."
        ),
    )
    parser.add_argument("source", type=Path, help="a result file, or a folder of them (e.g. results/runs/ioi)")
    parser.add_argument("--format", required=True, choices=["mib"], help="the target format (mib)")
    parser.add_argument("--out", type=Path, required=True, help="the submission folder to write")
    parser.add_argument("--file-type", default="json", choices=FORMATS, help="json (default) or pt")
    parser.add_argument(
        "--ranking",
        required=True,
        choices=RANKINGS,
        help="top-k convention, recorded as MIB's abs-False (signed: CPR) / abs-True (|score|: CMD) folder",
    )
    parser.add_argument(
        "--circuits",
        action="store_true",
        help="nine binary circuits at MIB's percentages instead of one importance file",
    )
    parser.add_argument("--method", help="only this method's results")
    parser.add_argument("--ablation", help="only results under this ablation")
    parser.add_argument("--seed", type=int, help="only this seed's results")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bench.mib_export import export_results
    from bench.mib_files import MibFileError
    from bench.report import load_results
    from bench.results import read_result

    if not args.source.exists():
        raise MibFileError(f"{args.source}: no such result file or folder")
    results = [read_result(args.source)] if args.source.is_file() else load_results(args.source)
    if not results:
        raise MibFileError(f"{args.source}: no result files in this folder (run `python -m bench run` first)")
    chosen = [
        r
        for r in results
        if (args.method is None or r.key.method == args.method)
        and (args.ablation is None or r.key.ablation == args.ablation)
        and (args.seed is None or r.key.seed == args.seed)
    ]
    if not chosen:
        found = sorted({f"{r.key.method}/{r.key.ablation}/seed {r.key.seed}" for r in results})
        raise MibFileError(f"{args.source}: no result matches the filters; found: {', '.join(found)}")
    results = chosen
    folders = export_results(results, args.out, args.file_type, args.ranking, args.circuits)
    for folder in folders:
        print(folder)
    print(f"exported {len(results)} result(s) into {len(folders)} MIB folder(s) under {args.out}")
    return 0
