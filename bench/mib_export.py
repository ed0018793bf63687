"""`bench export --format mib`: CDBench results as an MIB circuit-track submission.

Layout (MIB-circuit-track README, "Submitting to the MIB Leaderboard"; the leaderboard's
`eval_submissions.py`): `OUT/[METHOD/]abs-{True|False}/{task}_{model}/` holding either one
importance file (`importances.json` or `importances.pt`) or, with `circuits=True`, nine binary
circuits at MIB's edge percentages 0.1 ... 50 % (`circuit-0.1pct.json`, ...). The `abs-*`
folder pins the top-k convention the leaderboard applies: `abs-True` is scored as CMD
(|score| top-k), `abs-False` as CPR (signed top-k). A METHOD level appears when the results
come from more than one method.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bench.graph import Graph
from bench.mib_files import MibFileError, to_json_dict, to_pt_dict
from bench.mib_layout import MibLayout, folder_name, ranking_folder
from bench.mib_scoring import MIB_PERCENTAGES, mib_edge_counts, mib_prune, mib_top_n
from bench.results import RunResult

FORMATS = ("json", "pt")
RANKINGS = {"signed": (False,), "absolute": (True,), "both": (False, True)}
D_MODEL = {"gpt2": 768, "Qwen/Qwen2.5-0.5B": 896, "google/gemma-2-2b": 2304, "meta-llama/Llama-3.1-8B": 4096}
"""d_model of MIB's models, so exporting them loads nothing; other models are read from the zoo."""


def d_model_of(model: str) -> int:
    """The model's width, which MIB's loaders need in `cfg` (for neuron-level graphs)."""
    if model in D_MODEL:
        return D_MODEL[model]
    from bench.zoo import load_model

    return int(load_model(model).cfg.d_model)


def _write(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    if path.suffix == ".pt":
        torch.save(payload, tmp)
    else:
        tmp.write_text(json.dumps(payload))
    tmp.replace(path)


def export_result(
    result: RunResult, folder: Path, fmt: str, absolute: bool, circuits: bool, graph: Graph, d_model: int
) -> list[Path]:
    """Write one result's importance file, or its nine circuits, into `folder`."""
    # float64 keeps every recorded score exact (methods return float32 or float64)
    values = torch.tensor([result.edge_scores[name] for name in graph.edge_names], dtype=torch.float64)
    extra = {"cdbench_task": result.key.task, "cdbench_model": result.key.model, "cdbench_method": result.key.method}
    write = to_pt_dict if fmt == "pt" else to_json_dict
    if not circuits:
        everything = torch.ones(graph.n_edges, dtype=torch.bool)
        path = folder / f"importances.{fmt}"
        _write(write(graph, values, everything, d_model, result.node_scores, extra), path)
        return [path]
    layout = MibLayout(graph)
    paths = []
    for pct, n in zip(MIB_PERCENTAGES[:-1], mib_edge_counts(graph.n_edges)[:-1], strict=True):
        keep = mib_prune(graph, mib_top_n(layout, values, n, absolute))
        path = folder / f"circuit-{pct * 100:g}pct.{fmt}"
        scores = None if fmt == "json" else torch.zeros(graph.n_edges)
        _write(write(graph, scores, keep, d_model, None, extra), path)
        paths.append(path)
    return paths


def export_results(results: list[RunResult], out: Path, fmt: str, ranking: str, circuits: bool = False) -> list[Path]:
    """Write every result into MIB's layout under `out`; returns the folders written.

    Raises:
        MibFileError: a bad format or ranking, or two results that would share one folder
            (e.g. two ablations of one method on one task: export them one at a time).
    """
    if fmt not in FORMATS:
        raise MibFileError(f"unknown format {fmt!r}; valid choices: {', '.join(FORMATS)}")
    if ranking not in RANKINGS:
        raise MibFileError(f"unknown ranking {ranking!r}; valid choices: {', '.join(RANKINGS)}")
    by_method = len({r.key.method for r in results}) > 1
    claimed: dict[Path, RunResult] = {}
    for result in results:
        base = out / result.key.method if by_method else out
        folder = base / folder_name(result.key.task, result.key.model)
        if folder in claimed:
            other = claimed[folder].key
            raise MibFileError(
                f"two results would share {folder.name}: {other.method}/{other.ablation}/seed {other.seed} and "
                f"{result.key.method}/{result.key.ablation}/seed {result.key.seed}; "
                "pick one with --method, --ablation, --seed"
            )
        claimed[folder] = result
    written = []
    graphs: dict[str, Graph] = {}
    widths: dict[str, int] = {}
    for folder, result in claimed.items():
        model = result.key.model
        if model not in graphs:
            graphs[model] = Graph.from_edge_names(result.edge_scores)
            widths[model] = d_model_of(model)
        for absolute in RANKINGS[ranking]:
            target = folder.parent / ranking_folder(absolute) / folder.name
            export_result(result, target, fmt, absolute, circuits, graphs[model], widths[model])
            written.append(target)
    return written
