"""Time the EAP-IG library (`hannamw/EAP-IG`, the code MIB runs) on the setting of
`test_method_speed.py`: a random GPT-2-small-shaped model (32,491 edges), 8 pairs of 16
tokens, 2 threads, medians of 3 after a first call that measures the peak memory; and exact
patching of the first N edges (`--exact-edges`, default 200) by the library and by CDBench,
in the same process, on the same weights and data.

    git clone https://github.com/hannamw/EAP-IG /tmp/EAP-IG && git -C /tmp/EAP-IG checkout 795f560
    sed -i "s/device='cuda'/device=model.cfg.device/g" /tmp/EAP-IG/src/eap/attribute.py
    OMP_NUM_THREADS=2 python tests/benchmarks/peer_eap_ig_library.py /tmp/EAP-IG/src --exact-edges 200

`--exact-edges 0` skips exact patching; `--no-attribution` skips the EAP and EAP-IG-inputs
rows (for a short check: `--no-attribution --exact-edges 3`). Threads: `OMP_NUM_THREADS`
(2 if unset).

Two changes let it run here, neither in what it computes: its score matrices are created on
`device='cuda'` (pointed at the model's device by the `sed` above), and its `tokenize_plus`
needs a tokenizer, which a random model offline has not (replaced, in `eap.attribute` and
`eap.evaluate`, by one that passes token ids through). Its weights keep `requires_grad`, as
the library's gradients need.

Exact patching. The library's `get_scores_exact` calls `evaluate_graph` once per edge of
`graph.edges` (all 32,491) and cannot stop earlier; `library_exact` below is that loop, the
same calls with the same arguments, cut at the first N edges: it does not change what is
computed per edge. CDBench is timed as `test_method_speed.py`'s exact-patching row times it,
the whole run a user waits for (`prepare_run` plus `patch_effects`), on a copy of the model
(CDBench's runtime freezes the weights it is given) and on the same N edges, the first N of
the library's order (for 200: edges from the input and layer 0's heads into layers 0 and 1),
found in CDBench's graph by name (both suites name edges alike, `a3.h4->a5.h1<q>`). The
script prints the largest difference of the two score vectors: the library scores
metric(edge removed) - metric(full), CDBench metric(full) - metric(edge removed), so it
compares CDBench's with minus the library's.
CDBench's peak memory is that of a first measured call, its time the median of 3 bare calls
after it. The library's loop is timed bare, once (enough at its length: about 12 minutes for
200 edges on the 2-core machine); its peak memory is measured over the first
`LIBRARY_MEMORY_EDGES` edges only, since each edge's evaluation frees what it allocated.
Times are bare because the memory sampler slows what it runs beside on 2 cores
(`bench.profiling.fastest`).
Not a pytest module (no `test_` prefix): it needs the library's source.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import sys

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from bench.discovery import prepare_run
from bench.profiling import measure, median_time
from bench.runtime import MaskedRuntime
from methods.exact_patching import patch_effects
from tasks.base import TaskData

ROUNDS = 3
LIBRARY_MEMORY_EDGES = 5  # the library's peak is per edge: each evaluation frees what it allocated


def library_exact(model, graph, dataloader, metric, n_edges: int) -> None:
    """The EAP-IG library's `get_scores_exact` loop (795f560, `quiet=True`) cut at the first
    `n_edges` edges of `graph.edges`: the same calls with the same arguments, one
    `evaluate_graph` per edge, each edge's score written into `graph.scores` as there. This
    only stops the library's loop early; it does not change what is computed per edge."""
    from eap.evaluate import evaluate_baseline, evaluate_graph

    intervention, intervention_dataloader = "patching", None  # get_scores_exact's defaults
    graph.in_graph |= graph.real_edge_mask  # All edges that are real are now in the graph
    baseline = evaluate_baseline(model, dataloader, metric).mean().item()
    for edge in itertools.islice(graph.edges.values(), n_edges):
        edge.in_graph = False
        intervened_performance = evaluate_graph(
            model, graph, dataloader, metric, intervention=intervention,
            intervention_dataloader=intervention_dataloader, quiet=True, skip_clean=True,
        ).mean().item()  # fmt: skip
        edge.score = intervened_performance - baseline
        edge.in_graph = True


def main(library_src: str, exact_edges: int, attribution: bool) -> None:
    sys.path.insert(0, library_src)
    import eap.attribute as attribute
    import eap.evaluate as evaluate
    from eap.graph import Graph

    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = HookedTransformerConfig(
        n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, n_ctx=1024, d_vocab=50257, act_fn="gelu_new",
        normalization_type="LN", use_attn_result=True, use_split_qkv_input=True, use_hook_mlp_in=True, seed=0,
    )  # fmt: skip
    model = HookedTransformer(config).eval()
    clean, corrupted = torch.randint(0, 50257, (8, 16)), torch.randint(0, 50257, (8, 16))
    labels = torch.randint(0, 50257, (8, 2))

    def token_ids(model: HookedTransformer, inputs: torch.Tensor, max_length: int | None = None) -> tuple:
        return inputs, torch.ones_like(inputs), torch.full((len(inputs),), inputs.shape[1]), inputs.shape[1]

    def logit_difference(logits: torch.Tensor, clean_logits: torch.Tensor, lengths: torch.Tensor, label: torch.Tensor):
        last = logits[torch.arange(len(logits)), lengths - 1]
        return (last.gather(1, label[:, :1]) - last.gather(1, label[:, 1:])).mean()

    attribute.tokenize_plus = token_ids
    evaluate.tokenize_plus = token_ids
    graph = Graph.from_model(model)
    batches = [(clean, corrupted, labels)]
    print(f"[{threads} threads, 8 pairs of 16 tokens, {len(graph.edges)} edges]")
    for method, steps in (("EAP", None), ("EAP-IG-inputs", 5)) if attribution else ():

        def call(method: str = method, steps: int | None = steps) -> None:
            attribute.attribute(model, graph, batches, logit_difference, method, ig_steps=steps, quiet=True)

        peak = measure(call).peak_extra_mb
        print(f"{method}: median {median_time(call, ROUNDS):.2f} s of {ROUNDS}, peak extra memory {peak:.0f} MB")
    if exact_edges <= 0:
        return

    # CDBench on a copy of the same weights (its runtime freezes them) and the same data
    runtime = MaskedRuntime(copy.deepcopy(model))
    rows = torch.arange(len(labels))

    def metric(logits: torch.Tensor) -> torch.Tensor:
        """`logit_difference` per example: `[..., n, pos, vocab]` -> `[..., n]`."""
        last = logits[..., -1, :]
        return last[..., rows, labels[:, 0]] - last[..., rows, labels[:, 1]]

    data = TaskData(clean, corrupted, metric, "logit diff")
    edges = list(itertools.islice(graph.edges.values(), exact_edges))
    ours_graph = runtime.graph
    same = set(graph.edges) == set(ours_graph.edge_names)
    print(f"edges: library {len(graph.edges)}, CDBench {ours_graph.n_edges}, the same names: {same}")
    edge_ids = torch.tensor([ours_graph.edge_index(edge.name) for edge in edges])

    def cdbench() -> torch.Tensor:
        return patch_effects(prepare_run(runtime, data, "corrupted"), edge_ids)

    def library(n_edges: int = exact_edges) -> None:
        library_exact(model, graph, batches, logit_difference, n_edges)

    measured = measure(cdbench)
    ours_mb, ours = measured.peak_extra_mb, measured.value
    ours_s = median_time(cdbench, ROUNDS)
    theirs_mb = measure(lambda: library(LIBRARY_MEMORY_EDGES)).peak_extra_mb
    theirs_s = median_time(library, 1)
    theirs = torch.tensor([edge.score for edge in edges])
    gap = (ours + theirs).abs().max().item()
    print(
        f"exact patching, {len(edges)} edges: CDBench whole run median {ours_s:.2f} s of {ROUNDS}, "
        f"peak extra memory {ours_mb:.0f} MB; library one bare run {theirs_s:.2f} s, "
        f"peak extra memory {theirs_mb:.0f} MB (first {LIBRARY_MEMORY_EDGES} edges); "
        f"library / CDBench {theirs_s / ours_s:.1f}x time, {theirs_mb / ours_mb:.1f}x memory"
    )
    print(
        f"exact patching scores, {len(edges)} edges: largest |CDBench - (-library)| {gap:.1e} "
        f"(largest |score| {ours.abs().max().item():.1e}; the library scores removed - full, CDBench full - removed)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("library_src", help="the library's src/ folder (holding the `eap` package)")
    parser.add_argument("--exact-edges", type=int, default=200, help="edges of exact patching to time (0: skip)")
    parser.add_argument("--no-attribution", action="store_true", help="skip the EAP and EAP-IG-inputs rows")
    args = parser.parse_args()
    main(args.library_src, args.exact_edges, not args.no_attribution)
