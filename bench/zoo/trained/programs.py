"""The Tracr programs the SIIT models implement: compiled high-level models, input domains
and high-level circuits.

`reverse` and `xproportion` are the zoo's Tracr models; `sort` (`make_sort_unique` over
distinct keys from {1..6}) and `hist` (`make_hist` over {a, b, c, d}) are compiled here with
the same conversion. Every input has the full length 5, as in the zoo's Tracr tasks.
"""

from __future__ import annotations

import functools
import itertools

import torch
from tracr.compiler import compiling, lib
from tracr.rasp import rasp

from bench.graph import Graph
from bench.zoo.tracr_models import (
    COMPILER_BOS,
    MAX_SEQ_LEN,
    TracrModel,
    _to_hooked_transformer,
    build_tracr_model,
)
from bench.zoo.tracr_programs import program_names

PROGRAMS: tuple[str, ...] = ("reverse", "xproportion", "sort", "hist")
CITATIONS = {
    "reverse": "tracr lib.make_reverse",
    "xproportion": "tracr lib.make_frac_prevs",
    "sort": "tracr lib.make_sort_unique",
    "hist": "tracr lib.make_hist",
}


@functools.cache
def tracr_program(program: str) -> TracrModel:
    """The compiled high-level model of `program`."""
    if program in program_names():
        return build_tracr_model(program)
    if program == "sort":
        sop, vocab = lib.make_sort_unique(rasp.tokens, rasp.tokens), (1, 2, 3, 4, 5, 6)
    elif program == "hist":
        sop, vocab = lib.make_hist(), ("a", "b", "c", "d")
    else:
        raise ValueError(f"unknown SIIT program {program!r}; valid choices: {', '.join(PROGRAMS)}")
    assembled = compiling.compile_rasp_to_model(
        sop, vocab=set(vocab), max_seq_len=MAX_SEQ_LEN, compiler_bos=COMPILER_BOS
    )
    model = _to_hooked_transformer(assembled, sop)
    return TracrModel(f"tracr-{program}", model, assembled, sop, vocab, MAX_SEQ_LEN)


@functools.cache
def domain(program: str) -> torch.Tensor:
    """Every input of the program's domain as token ids `[n, 1 + 5]` (BOS first); `sort`
    needs distinct keys, so its domain is the permutations."""
    tracr = tracr_program(program)
    if program == "sort":
        inputs = list(itertools.permutations(tracr.vocab, MAX_SEQ_LEN))
    else:
        inputs = list(itertools.product(tracr.vocab, repeat=MAX_SEQ_LEN))
    return tracr.encode(inputs)


def high_level_circuit(program: str) -> list[str]:
    """Edges of the Tracr model whose writer and reader share residual dimensions (the rule
    of `bench.zoo.tracr_circuits`), in graph order."""
    # Imported here: tracr_circuits reaches `tasks`, whose SIIT modules import this module.
    from bench.zoo.tracr_circuits import residual_reads_and_writes

    model = tracr_program(program).model
    graph = Graph.from_model(model)
    reads, writes = residual_reads_and_writes(model, graph)
    return [
        edge
        for edge, src, dst in zip(graph.edge_names, graph.edge_src.tolist(), graph.edge_dst.tolist(), strict=True)
        if writes[graph.sources[src]] & reads[graph.destinations[dst]]
    ]


def shape(program: str) -> dict[str, int]:
    """The Tracr model's layer count, vocabularies and context: the low-level model shares them."""
    cfg = tracr_program(program).model.cfg
    return {"n_layers": cfg.n_layers, "d_vocab": cfg.d_vocab, "d_vocab_out": cfg.d_vocab_out, "n_ctx": cfg.n_ctx}
