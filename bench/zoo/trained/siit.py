"""Strict Interchange Intervention Training (SIIT) of a realistic transformer on a Tracr program.

Following Gupta et al. 2024 ("InterpBench: Semi-Synthetic Transformers for Evaluating
Mechanistic Interpretability Techniques"), the high-level model is the Tracr-compiled
program itself and each of its components (a head or an MLP of its circuit) is aligned with
one component of a randomly initialised low-level model of the same depth. Three losses:

- behaviour: the low-level output matches the program's on the base input;
- interchange: patching an aligned low-level component's output from a source input changes
  the output exactly as patching the corresponding Tracr component does;
- strictness: patching non-aligned components from a source input changes nothing.

Patches replace whole component outputs (a head's `hook_z` slice, an MLP's `hook_mlp_out`),
chosen per example, so one batched forward trains many interventions at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformer_lens import HookedTransformer

from bench.graph import Graph
from bench.runtime import MaskedRuntime, enable_edge_hooks
from bench.zoo.trained import programs
from bench.zoo.trained.edge_patch import RESID_PRE, EdgeResample, source_outputs
from bench.zoo.trained.recipes import SiitRecipe
from bench.zoo.trained.training import TrainResult, train

NUMERIC_TOL = 0.025  # xproportion's values differ by >= 1/20: within half of that decodes to the right one
EVAL_PAIRS = 1024
DEFAULT_EXAMPLES = 256  # task examples (and the pairs the ground truth is measured on)
EVAL_SEED = 1234
ABLATIONS = ("corrupted", "mean", "zero")
DETECT_MIN_FRACTION = 0.01  # an edge is detectable if its removal alone flips >= 1% of outputs

# Acceptance thresholds (tests check them).
MIN_ACCURACY = 0.99  # low-level output equals the program's, per output position, whole domain
MIN_IIA = 0.95  # interchange-intervention accuracy, averaged over aligned components
MIN_STRICTNESS = 0.95  # outputs kept when every non-aligned component is resampled at once
MIN_GT_AGREEMENT = 0.95  # outputs kept with only the ground-truth edges (corrupted ablation)


# --- components and patching -------------------------------------------------------------------


def components(model: HookedTransformer) -> list[str]:
    """Every head and MLP, in layer order (the patchable units)."""
    names = []
    for layer in range(model.cfg.n_layers):
        names += [f"a{layer}.h{head}" for head in range(model.cfg.n_heads)]
        if not model.cfg.attn_only:
            names.append(f"m{layer}")
    return names


def _hook_masks(model: HookedTransformer, chosen: torch.Tensor) -> dict[str, torch.Tensor]:
    """`[batch, n_components]` booleans -> per hook name, a mask broadcastable to its activation."""
    masks, col, n_heads = {}, 0, model.cfg.n_heads
    for layer in range(model.cfg.n_layers):
        masks[f"blocks.{layer}.attn.hook_z"] = chosen[:, col : col + n_heads][:, None, :, None]
        col += n_heads
        if not model.cfg.attn_only:
            masks[f"blocks.{layer}.hook_mlp_out"] = chosen[:, col][:, None, None]
            col += 1
    return masks


def capture(model: HookedTransformer, tokens: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and every component hook's activation, keeping gradients (unlike run_with_cache)."""
    names = [RESID_PRE, *_hook_masks(model, torch.zeros(1, len(components(model)), dtype=torch.bool))]
    acts: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hook: Any) -> None:
        acts[hook.name] = x

    logits = model.run_with_hooks(tokens, fwd_hooks=[(name, keep) for name in names])
    return logits, acts


def patched(
    model: HookedTransformer,
    base: torch.Tensor,
    source: dict[str, torch.Tensor],
    chosen: torch.Tensor,
    edge_hooks: list[tuple[str, Callable]] | None = None,
) -> torch.Tensor:
    """Logits on `base` with the `chosen` components' outputs taken from the source run (and
    `edge_hooks`, run after the component patches, e.g. an `EdgeResample`)."""

    def patch(mask: torch.Tensor):
        return lambda x, hook: torch.where(mask, source[hook.name], x)

    hooks = [(name, patch(mask)) for name, mask in _hook_masks(model, chosen).items() if mask.any()]
    return model.run_with_hooks(base, fwd_hooks=hooks + (edge_hooks or []))


# --- the alignment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Alignment:
    """The correspondence between the Tracr model's circuit components and low-level ones."""

    high: tuple[str, ...]  # Tracr components in the circuit
    low: tuple[str, ...]  # their low-level counterparts, same order
    high_all: tuple[str, ...]  # every Tracr component (for patch masks)
    low_all: tuple[str, ...]  # every low-level component

    def node(self, name: str) -> str:
        return dict(zip(self.high, self.low, strict=True)).get(name, name)  # input/logits map to themselves

    def edge(self, hl_edge: str) -> str:
        src, dst = hl_edge.split("->")
        node, _, qkv = dst.partition("<")
        return f"{self.node(src)}->{self.node(node)}" + (f"<{qkv}" if qkv else "")

    def selection(self, names: tuple[str, ...] | list[str], which: torch.Tensor, side: str) -> torch.Tensor:
        """`[batch, n_components]` one-hot of `names[which[i]]` on the high or low side."""
        universe = self.high_all if side == "high" else self.low_all
        cols = torch.tensor([universe.index(n) for n in names])[which]
        chosen = torch.zeros(len(which), len(universe), dtype=torch.bool)
        chosen[torch.arange(len(which)), cols] = True
        return chosen

    @property
    def non_aligned(self) -> torch.Tensor:
        """`[n_low_components]` booleans: the low-level components outside the circuit."""
        return torch.tensor([n not in self.low for n in self.low_all])


def alignment(program: str, recipe: SiitRecipe, low_model: HookedTransformer) -> Alignment:
    """Tracr layer L maps to low-level layer L; each Tracr head to a seeded random head of that
    layer (so circuits do not sit at head 0), each MLP to the MLP."""
    tracr = programs.tracr_program(program)
    hl_nodes = Graph.from_model(tracr.model).nodes_of(programs.high_level_circuit(program))
    high = tuple(n for n in hl_nodes if n not in ("input", "logits"))
    gen = torch.Generator().manual_seed(recipe.seed)
    perms = [torch.randperm(recipe.n_heads, generator=gen).tolist() for _ in range(low_model.cfg.n_layers)]
    low = []
    for node in high:
        if node.startswith("a"):
            layer, head = (int(part[1:]) for part in node.split("."))
            low.append(f"a{layer}.h{perms[layer][head]}")
        else:
            low.append(node)
    return Alignment(high, tuple(low), tuple(components(tracr.model)), tuple(components(low_model)))


# --- targets, losses, agreement ------------------------------------------------------------------


def _categorical(program: str) -> bool:
    return programs.tracr_program(program).categorical


def targets(program: str, logits: torch.Tensor) -> torch.Tensor:
    """What the program outputs at positions 1..: labels (categorical) or values (numerical)."""
    out = logits[:, 1:]
    return out.argmax(-1) if _categorical(program) else out[..., 0]


def loss(program: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    out = logits[:, 1:]
    if _categorical(program):
        return F.cross_entropy(out.flatten(0, 1), target.flatten())
    return F.mse_loss(out[..., 0], target)


def agreement(program: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per output position: whether the low-level output equals the target."""
    out = logits[..., 1:, :]
    if _categorical(program):
        return out.argmax(-1) == target
    return (out[..., 0] - target).abs() < NUMERIC_TOL


# --- training ----------------------------------------------------------------------------------


def new_model(recipe: SiitRecipe) -> HookedTransformer:
    torch.manual_seed(recipe.seed)
    return enable_edge_hooks(HookedTransformer(recipe.config(programs.shape(recipe.program))))


def train_model(name: str, recipe: SiitRecipe, stop_after: int | None = None) -> tuple[HookedTransformer, TrainResult]:
    program = recipe.program
    hl = programs.tracr_program(program).model
    data = programs.domain(program)
    with torch.no_grad():
        base_targets = targets(program, hl(data))
    model = new_model(recipe)
    align = alignment(program, recipe, model)
    graph = Graph.from_model(model)
    outside = graph.real_edge_mask & ~graph.mask(circuit(program, align, graph)[0]).bool()

    def step(gen: torch.Generator) -> dict[str, torch.Tensor]:
        n = recipe.batch_size
        b = torch.randint(0, len(data), (n,), generator=gen)
        s = torch.randint(0, len(data), (n,), generator=gen)
        node = torch.randint(0, len(align.high), (n,), generator=gen)
        # Strictness rows resample edges outside the circuit, each row with its own share, so
        # single edges and nearly all of them at once (the ground truth alone) are both trained.
        share = torch.rand(n, 1, 1, generator=gen)
        off = (torch.rand(n, *outside.shape, generator=gen) < share) & outside
        base, source = data[b], data[s]
        with torch.no_grad():
            _, hl_source = capture(hl, source)
            iit_target = targets(program, patched(hl, base, hl_source, align.selection(align.high, node, "high")))
        _, ll_source = capture(model, source)
        # One forward for all three losses: plain base rows, interchange rows, strictness rows.
        iit_rows = align.selection(align.low, node, "low")
        chosen = torch.cat([torch.zeros_like(iit_rows), iit_rows, torch.zeros_like(iit_rows)])
        sources = {k: v.repeat(3, *([1] * (v.dim() - 1))) for k, v in ll_source.items()}
        edges = EdgeResample(
            model, graph, torch.cat([torch.zeros_like(off), torch.zeros_like(off), off]), source_outputs(model, sources)
        )
        logits, iit_logits, strict_logits = patched(model, base.repeat(3, 1), sources, chosen, edges.hooks()).split(n)
        return {
            "behaviour": recipe.behaviour_weight * loss(program, logits, base_targets[b]),
            "interchange": recipe.interchange_weight * loss(program, iit_logits, iit_target),
            "strictness": recipe.strict_weight * loss(program, strict_logits, base_targets[b]),
        }

    result = train(name, model, step, steps=recipe.steps, lr=recipe.lr, seed=recipe.seed, stop_after=stop_after)
    return model, result


# --- acceptance --------------------------------------------------------------------------------


def eval_pairs(program: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (clean, corrupted) inputs: distinct clean inputs, each paired with a different input."""
    data = programs.domain(program)
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randperm(len(data), generator=gen)[: min(n, len(data))]
    corrupt = (clean + torch.randint(1, len(data), (len(clean),), generator=gen)) % len(data)
    return data[clean], data[corrupt]


@torch.no_grad()
def interchange_figures(program: str, model: HookedTransformer, align: Alignment) -> dict[str, Any]:
    """IIA per aligned component, and strictness, on EVAL_PAIRS random (base, source) pairs."""
    hl = programs.tracr_program(program).model
    data = programs.domain(program)
    gen = torch.Generator().manual_seed(EVAL_SEED)
    base = data[torch.randint(0, len(data), (EVAL_PAIRS,), generator=gen)]
    source = data[torch.randint(0, len(data), (EVAL_PAIRS,), generator=gen)]
    hl_base = targets(program, hl(base))
    _, hl_source = capture(hl, source)
    _, ll_source = capture(model, source)
    iia, changed = {}, {}
    for i, (high, low) in enumerate(zip(align.high, align.low, strict=True)):
        which = torch.full((EVAL_PAIRS,), i)
        want = targets(program, patched(hl, base, hl_source, align.selection(align.high, which, "high")))
        got = patched(model, base, ll_source, align.selection(align.low, which, "low"))
        iia[f"{high}={low}"] = round(float(agreement(program, got, want).float().mean()), 4)
        changed[f"{high}={low}"] = round(float((~agreement(program, hl(base), want)).float().mean()), 4)
    everything_else = align.non_aligned.expand(EVAL_PAIRS, -1)
    strict = agreement(program, patched(model, base, ll_source, everything_else), hl_base)
    return {
        "accuracy": round(float(agreement(program, model(data), targets(program, hl(data))).float().mean()), 4),
        "iia": round(sum(iia.values()) / len(iia), 4),
        "iia_per_component": iia,
        "outputs_changed_by_high_level_patch": changed,
        "strictness": round(float(strict.float().mean()), 4),
    }


def circuit(program: str, align: Alignment, graph: Graph) -> tuple[list[str], dict[str, str]]:
    """The low-level ground truth: the Tracr circuit's edges mapped through the alignment."""
    mapped = {align.edge(e): e for e in programs.high_level_circuit(program)}
    edges = [e for e in graph.edge_names if e in mapped]
    return edges, {e: mapped[e] for e in edges}


@torch.no_grad()
def masked_figures(program: str, model: HookedTransformer, edges: list[str], n: int) -> dict[str, Any]:
    """Through the masked runtime, on the task's default pairs: how often the ground truth alone
    keeps each output, and which of its edges are detectable, per ablation kind."""
    clean, corrupted = eval_pairs(program, n, 0)
    runtime = MaskedRuntime(enable_edge_hooks(model))
    graph = runtime.graph
    full = targets(program, model(clean))
    kept, detectable = {}, {}
    for kind in ABLATIONS:
        ablated = runtime.ablate(kind, corrupted_tokens=corrupted, reference_tokens=corrupted, like=clean)
        alone = runtime.forward(clean, graph.mask(edges), ablated)
        kept[kind] = round(float(agreement(program, alone, full).float().mean()), 4)
        ids = torch.tensor([graph.edge_index(e) for e in edges]).split(8)  # a few masks per forward
        without = torch.cat([runtime.forward(clean, graph.masks_without(part), ablated) for part in ids])
        flipped = (~agreement(program, without, full)).flatten(1).float().mean(1)
        detectable[kind] = [e for e, f in zip(edges, flipped.tolist(), strict=True) if f >= DETECT_MIN_FRACTION]
    return {"gt_agreement": kept, "detectable": detectable}


def acceptance(figures: dict[str, Any]) -> dict[str, Any]:
    checks = {
        "accuracy": (figures["accuracy"], MIN_ACCURACY),
        "iia": (figures["iia"], MIN_IIA),
        "strictness": (figures["strictness"], MIN_STRICTNESS),
        "gt_agreement_corrupted": (figures["gt_agreement"]["corrupted"], MIN_GT_AGREEMENT),
    }
    return {k: {"value": v, "threshold": t, "passed": v >= t} for k, (v, t) in checks.items()}
