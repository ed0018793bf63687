"""Time auto-circuit (`UFO-101/auto-circuit` 98db58c) beside CDBench's whole run on the
setting of `test_method_speed.py`: a random GPT-2-small-shaped model (32,491 edges), 8 pairs
of 16 tokens, 2 threads, medians of 3 after a first call that measures the peak memory.

    git clone https://github.com/UFO-101/auto-circuit /tmp/auto-circuit-git
    mkdir /tmp/auto-circuit && git -C /tmp/auto-circuit-git archive 98db58c auto_circuit | tar -x -C /tmp/auto-circuit
    python3 -m venv /tmp/acvenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/acvenv/lib/python3.11/site-packages/cdbench.pth
    echo "$PWD" >> /tmp/acvenv/lib/python3.11/site-packages/cdbench.pth
    /tmp/acvenv/bin/pip install --no-deps plotly==5.23.0 ordered-set==4.1.0 blobfile==2.1.1 lxml
    OMP_NUM_THREADS=2 TQDM_DISABLE=1 /tmp/acvenv/bin/python tests/benchmarks/peer_auto_circuit.py /tmp/auto-circuit

(`archive ... auto_circuit`: the whole tree at 98db58c names Git LFS files that a plain
archive may fail on; the package is all that runs. The four packages are what importing
`auto_circuit.utils.graph_utils` and `auto_circuit.prune_algos.mask_gradient` needs beyond
CDBench's environment, at the versions of the library's `poetry.lock` where it pins them.)

auto-circuit is run as its own demo (`experiments/demos/circuit_discovery.py`) runs it:
`load_tl_model`'s settings (attention results and per-head q/k/v inputs switched on, weights
frozen), `patchable_model(factorized=True, slice_output="last_seq", separate_qkv=True)`,
and `mask_gradient_prune_scores(grad_function="logit", answer_function="avg_diff")`, the
ablation its default (resample from the corrupted prompts, which is CDBench's `corrupted`):
- EAP: `mask_val=0.0`, its fast EAP (the docstring says it equals
  `edge_attribution_patching_prune_scores`, Syed et al.'s EAP).
- IEG: `integrated_grad_samples=5`, its "Integrated Edge Gradients": every edge mask at
  k/5 for k = 0..5 (6 forwards and backwards), the gradients summed. This is integrated
  gradients in edge-mask space (all edges moved together), not CDBench's `eap-ig-inputs`
  (the input embedding moved, 5 points); it is the library's nearest method and is timed
  beside `eap-ig-inputs` with 5 steps.

One change lets it run here, not in what it computes: the library imports
`HookedTransformerKeyValueCache` from `transformer_lens` and
`transformer_lens.past_key_value_caching` (TransformerLens 2.x), which TransformerLens 3.x
(CDBench's) renamed `TransformerLensKeyValueCache` in `transformer_lens.cache`; the old names
are aliased to it before the import. The class is only a type annotation and the key-value
cache the library passes to the model when one is given; none is given here. The model is
TransformerLens 3.x's `HookedTransformer`, as for CDBench and the EAP-IG library harness.
No tokenizer is needed: the prompts go in as token ids through the library's
`PromptDataset`/`PromptDataLoader`.

The script also checks that auto-circuit's graph has CDBench's edges (the same 32,491, name
for name) and that its EAP scores equal CDBench's `eap` scores on the same weights (auto-
circuit's gradient of -(logit difference) in the mask at 0, where 1 patches the edge, is
CDBench's estimate of metric(full) - metric(without the edge), sign included).
Not a pytest module (no `test_` prefix): it needs the library's source.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable

import torch
import transformer_lens
from transformer_lens import HookedTransformer
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

from bench.discovery import prepare_run
from bench.profiling import measure, median_time
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from methods import score_edges
from tasks.base import TaskData

BATCH, POS, STEPS, ROUNDS = 8, 16, 5, 3


def alias_key_value_cache() -> None:
    """TransformerLens 2.x's names for its key-value cache, which auto-circuit imports."""
    transformer_lens.HookedTransformerKeyValueCache = TransformerLensKeyValueCache
    old = types.ModuleType("transformer_lens.past_key_value_caching")
    old.HookedTransformerKeyValueCache = TransformerLensKeyValueCache
    sys.modules.setdefault(old.__name__, old)


def cdbench_edge_name(name: str) -> str:
    """auto-circuit's `A3.4->MLP 5`, `Resid Start->A1.2.Q` as CDBench's `a3.h4->m5`, `input->a1.h2<q>`."""

    def node(text: str) -> str:
        if text == "Resid Start":
            return "input"
        if text == "Resid End":
            return "logits"
        if match := re.fullmatch(r"MLP (\d+)", text):
            return f"m{match[1]}"
        match = re.fullmatch(r"A(\d+)\.(\d+)(?:\.([QKV]))?", text)
        assert match is not None, text
        return f"a{match[1]}.h{match[2]}" + (f"<{match[3].lower()}>" if match[3] else "")

    src, dest = name.split("->")
    return f"{node(src)}->{node(dest)}"


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """(median seconds of ROUNDS calls, peak extra MB of a first call)."""
    peak = measure(call).peak_extra_mb
    return median_time(call, ROUNDS), peak


def main(library_src: str) -> None:
    sys.path.insert(0, library_src)
    alias_key_value_cache()
    from auto_circuit.data import PromptDataLoader, PromptDataset
    from auto_circuit.prune_algos.mask_gradient import mask_gradient_prune_scores
    from auto_circuit.utils.graph_utils import patchable_model

    torch.set_num_threads(2)
    torch.set_grad_enabled(True)
    # test_method_speed.py's setting: the same model, batch and metric
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 50257, (BATCH, POS), generator=gen)
    corrupt = torch.randint(0, 50257, (BATCH, POS), generator=gen)
    answer, distractor = torch.randint(0, 50257, (2,), generator=gen).tolist()

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[..., -1, answer] - logits[..., -1, distractor]

    runtime = MaskedRuntime(load_model("random:gpt2"))
    data = TaskData(clean, corrupt, metric, "logit diff")

    # auto-circuit's model: the same weights (seed 0), with load_tl_model's settings
    model: HookedTransformer = load_model("random:gpt2")
    model.cfg.use_attn_result = True
    model.cfg.use_attn_in = True
    model.cfg.use_split_qkv_input = True
    model.cfg.use_hook_mlp_in = True
    model.eval().requires_grad_(False)
    model = patchable_model(model, factorized=True, slice_output="last_seq", separate_qkv=True)
    dataset = PromptDataset(clean, corrupt, torch.full((BATCH, 1), answer), torch.full((BATCH, 1), distractor))
    loader = PromptDataLoader(dataset, seq_len=None, diverge_idx=0, batch_size=BATCH, shuffle=False)

    names = [cdbench_edge_name(edge.name) for edge in model.edges]
    graph = runtime.graph
    same = set(names) == set(graph.edge_names)
    print(f"edges: auto-circuit {len(names)}, CDBench {graph.n_edges}, the same names: {same}")

    def library(samples: int | None) -> Callable[[], dict[str, torch.Tensor]]:
        mask_val = 0.0 if samples is None else None
        return lambda: mask_gradient_prune_scores(
            model, loader, None, grad_function="logit", answer_function="avg_diff", mask_val=mask_val,
            integrated_grad_samples=samples,
        )  # fmt: skip

    def cdbench(method: str) -> Callable[[], object]:
        return lambda: score_edges(method, prepare_run(runtime, data, "corrupted", options={"steps": STEPS}))

    scores = library(None)()
    index = graph.edge_position
    ours = score_edges("eap", prepare_run(runtime, data, "corrupted")).values
    theirs = torch.zeros_like(ours)
    for edge, name in zip(model.edges, names, strict=True):
        theirs[index[name]] = edge.prune_score(scores)
    gap = (theirs - ours).abs().max().item() / ours.abs().max().item()
    print(f"EAP scores: largest difference {gap:.1e} of the largest |score|")

    ig = f"CDBench eap-ig-inputs {STEPS} steps / auto-circuit IEG {STEPS} samples"
    for label, ours_call, theirs_call in (
        ("EAP, all edges", cdbench("eap"), library(None)),
        (ig, cdbench("eap-ig-inputs"), library(STEPS)),
    ):
        ours_s, ours_mb = timed(ours_call)
        theirs_s, theirs_mb = timed(theirs_call)
        print(
            f"{label}: CDBench whole run {ours_s:.2f} s, {ours_mb:.0f} MB; "
            f"auto-circuit {theirs_s:.2f} s, {theirs_mb:.0f} MB (medians of {ROUNDS}, peak extra memory)"
        )


if __name__ == "__main__":
    main(sys.argv[1])
