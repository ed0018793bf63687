"""`induction-2l`: a 2-layer attention-only model trained on random tokens with repeated
segments, whose induction circuit is found after training by measurement, not by design.

Why measured: unlike the SIIT models nothing forces which heads do the work, so the ground
truth is identified from the trained weights: previous-token heads in layer 0 and induction
heads in layer 1 by their attention scores (Olsson et al. 2022, "In-context Learning and
Induction Heads"), and the K-composition edges between them by patching each
`a0.hX->a1.hY<k>` edge through the masked runtime and measuring the drop of the task metric.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformer_lens import HookedTransformer

from bench.graph import Graph
from bench.runtime import MaskedRuntime, enable_edge_hooks
from bench.zoo.trained.recipes import InductionRecipe
from bench.zoo.trained.training import TrainResult, train

NAME = "induction-2l"
TASK = "induction"
HALF = 12  # task sequences: HALF random tokens, then the same HALF tokens again
EVAL_EXAMPLES = 256
EVAL_SEED = 0

# Acceptance thresholds (tests check them).
MIN_REPEAT_LOGPROB = -1.5  # mean log-prob of the next token on repeats; chance is -ln(64) = -4.16
MIN_PREV_TOKEN_SCORE = 0.5  # a layer-0 head is a previous-token head above this attention score
MIN_INDUCTION_SCORE = 0.3  # a layer-1 head is an induction head above this attention score
MIN_EDGE_SHARE = 0.001  # ...and its removal alone costs at least this share of the metric
MIN_GT_FAITHFULNESS = 0.8  # the ground truth alone recovers this share of the metric (corrupted ablation)


def training_batch(recipe: InductionRecipe, gen: torch.Generator) -> torch.Tensor:
    """Random tokens where a segment of random length reappears at a random later offset,
    so neither position nor segment length gives the copy away: only induction does."""
    b, t = recipe.batch_size, recipe.n_ctx
    tokens = torch.randint(0, recipe.d_vocab, (b, t), generator=gen)
    length = torch.randint(recipe.min_segment, recipe.max_segment + 1, (b, 1), generator=gen)
    first = (torch.rand(b, 1, generator=gen) * (t - 2 * length + 1)).long()
    second = first + length + (torch.rand(b, 1, generator=gen) * (t - first - 2 * length + 1)).long()
    pos = torch.arange(t)[None]
    copied = (pos >= second) & (pos < second + length)
    source = torch.where(copied, pos - (second - first), pos)
    return tokens.gather(1, source)


def repeated_sequences(n: int, d_vocab: int, seed: int, half: int = HALF) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean: `half` random tokens then the same tokens again. Corrupted: the first occurrence
    resampled, so the second half is no longer a repeat and induction cannot predict it."""
    gen = torch.Generator().manual_seed(seed)
    first = torch.randint(0, d_vocab, (n, half), generator=gen)
    other = (first + torch.randint(1, d_vocab, (n, half), generator=gen)) % d_vocab
    return torch.cat([first, first], 1), torch.cat([other, first], 1)


def repeat_positions(half: int = HALF) -> slice:
    """Positions in the second occurrence whose next token is a repeat."""
    return slice(half, 2 * half - 1)


def repeat_logprob(tokens: torch.Tensor, half: int = HALF):
    """Per-example metric: mean log-probability of the correct next token on the repeats."""
    pos = repeat_positions(half)
    targets = tokens[:, pos.start + 1 : pos.stop + 1]

    def metric(logits: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(logits[..., pos, :], dim=-1)
        return logp.gather(-1, targets.expand(*logp.shape[:-1]).unsqueeze(-1)).squeeze(-1).mean(-1)

    return metric


def train_model(recipe: InductionRecipe, stop_after: int | None = None) -> tuple[HookedTransformer, TrainResult]:
    torch.manual_seed(recipe.seed)
    model = HookedTransformer(recipe.config())

    def step(gen: torch.Generator) -> dict[str, torch.Tensor]:
        tokens = training_batch(recipe, gen)
        logits = model(tokens)
        return {"next-token loss": F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())}

    result = train(NAME, model, step, steps=recipe.steps, lr=recipe.lr, seed=recipe.seed, stop_after=stop_after)
    return model, result


# --- identification by measurement -----------------------------------------------------------


@torch.no_grad()
def attention_scores(model: HookedTransformer, clean: torch.Tensor, half: int = HALF) -> dict[str, list[float]]:
    """Per head: previous-token score (layer 0) and induction score (layer 1) on repeats."""
    _, cache_ = model.run_with_cache(clean, names_filter=lambda n: n.endswith("hook_pattern"))
    prev = cache_["blocks.0.attn.hook_pattern"]  # [batch, head, query, key]
    t = clean.shape[1]
    q = torch.arange(1, t)
    prev_score = prev[:, :, q, q - 1].mean(dim=(0, 2))
    ind = cache_["blocks.1.attn.hook_pattern"]
    q = torch.arange(repeat_positions(half).start, repeat_positions(half).stop)
    ind_score = ind[:, :, q, q - half + 1].mean(dim=(0, 2))
    return {"previous_token": prev_score.tolist(), "induction": ind_score.tolist()}


def _without_each(runtime: MaskedRuntime, clean: torch.Tensor, edges: list[str], ablated, metric) -> torch.Tensor:
    """The mean metric with each edge removed alone; a few masks per forward bound the memory."""
    ids = torch.tensor([runtime.graph.edge_index(e) for e in edges])
    parts = [
        metric(runtime.forward(clean, runtime.graph.masks_without(part), ablated)).mean(-1) for part in ids.split(8)
    ]
    return torch.cat(parts)


def k_composition_edges(n_heads: int) -> list[str]:
    return [f"a0.h{x}->a1.h{y}<k>" for x in range(n_heads) for y in range(n_heads)]


@torch.no_grad()
def measure(model: HookedTransformer) -> dict[str, Any]:
    """Attention scores, the share of the metric each K-composition edge carries, the heads
    and edges identified from them, and how faithful the resulting ground truth is."""
    clean, corrupted = repeated_sequences(EVAL_EXAMPLES, model.cfg.d_vocab, EVAL_SEED)
    runtime = MaskedRuntime(enable_edge_hooks(model))
    graph = runtime.graph
    metric = repeat_logprob(clean)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupted)
    full = float(metric(model(clean)).mean())
    empty = float(metric(runtime.forward(clean, torch.zeros_like(graph.mask()), ablated)).mean())
    scores = attention_scores(model, clean)
    candidates = k_composition_edges(model.cfg.n_heads)
    drops = full - _without_each(runtime, clean, candidates, ablated, metric)
    share = {edge: round(float(d) / (full - empty), 4) for edge, d in zip(candidates, drops, strict=True)}
    prev_heads = [h for h, s in enumerate(scores["previous_token"]) if s >= MIN_PREV_TOKEN_SCORE]
    ind_heads = [h for h, s in enumerate(scores["induction"]) if s >= MIN_INDUCTION_SCORE]
    k_edges = [
        f"a0.h{x}->a1.h{y}<k>" for y in ind_heads for x in prev_heads if share[f"a0.h{x}->a1.h{y}<k>"] >= MIN_EDGE_SHARE
    ]
    edges = circuit_edges(graph, k_edges)
    gt_mask = graph.mask(edges)
    with_gt = float(metric(runtime.forward(clean, gt_mask, ablated)).mean())
    without_k = float(metric(runtime.forward(clean, graph.mask() - graph.mask(k_edges), ablated)).mean())
    return {
        "metric": "mean log-prob of the next token on the repeated half",
        "full": round(full, 4),
        "empty_corrupted": round(empty, 4),
        "attention_scores": {k: [round(v, 4) for v in vals] for k, vals in scores.items()},
        "k_composition_share": share,
        "previous_token_heads": prev_heads,
        "induction_heads": ind_heads,
        "k_composition_edges": k_edges,
        "edges": edges,
        "gt_faithfulness": round((with_gt - empty) / (full - empty), 4),
        "k_edges_removed_share": round((full - without_k) / (full - empty), 4),
    }


def circuit_edges(graph: Graph, k_edges: list[str]) -> list[str]:
    """The K-composition edges plus each head's direct paths, in the graph's edge order:
    previous-token heads read the input at q, k and v; induction heads read the current
    token at q and the copied token at v, and write to the logits."""
    wanted = set(k_edges)
    for edge in k_edges:
        prev, ind = edge.removesuffix("<k>").split("->")
        wanted |= {f"input->{prev}<{x}>" for x in "qkv"}
        wanted |= {f"input->{ind}<q>", f"input->{ind}<v>", f"{ind}->logits"}
    return [e for e in graph.edge_names if e in wanted]


def acceptance(found: dict[str, Any]) -> dict[str, Any]:
    checks = {
        "repeat_logprob": (found["full"], MIN_REPEAT_LOGPROB),
        "gt_faithfulness": (found["gt_faithfulness"], MIN_GT_FAITHFULNESS),
        "max_previous_token_score": (max(found["attention_scores"]["previous_token"]), MIN_PREV_TOKEN_SCORE),
        "max_induction_score": (max(found["attention_scores"]["induction"]), MIN_INDUCTION_SCORE),
    }
    figures = {k: {"value": v, "threshold": t, "passed": v >= t} for k, (v, t) in checks.items()}
    figures["k_composition_edges_found"] = {
        "value": len(found["k_composition_edges"]),
        "threshold": 1,
        "passed": len(found["k_composition_edges"]) >= 1,
    }
    return figures


@torch.no_grad()
def detectable(model: HookedTransformer, edges: list[str]) -> dict[str, list[str]]:
    """Per ablation kind, the circuit edges whose removal alone costs >= MIN_EDGE_SHARE of the
    gap between the full model and the empty circuit on the task's default examples."""
    clean, corrupted = repeated_sequences(EVAL_EXAMPLES, model.cfg.d_vocab, EVAL_SEED)
    runtime = MaskedRuntime(enable_edge_hooks(model))
    graph = runtime.graph
    metric = repeat_logprob(clean)
    full = metric(model(clean)).mean()
    found = {}
    for kind in ("corrupted", "mean", "zero"):
        ablated = runtime.ablate(kind, corrupted_tokens=corrupted, reference_tokens=corrupted, like=clean)
        empty = metric(runtime.forward(clean, torch.zeros_like(graph.mask()), ablated)).mean()
        share = (full - _without_each(runtime, clean, edges, ablated, metric)) / (full - empty)
        found[kind] = [e for e, s in zip(edges, share.tolist(), strict=True) if s >= MIN_EDGE_SHARE]
    return found
