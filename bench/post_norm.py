"""How far Gemma-2's per-head split of its post-attention norm is from the true ablated forward.

The runtime splits `RMSNorm(sum_h o_h)` into per-head writes `w * o_h / scale`, with `scale` the
RMS of the sum in the same forward (`bench.runtime.post_norm_head_writes`). All edges on is then
exactly the clean forward and all off exactly the ablated one, and ablating every head of a layer
is exactly patching the layer's attention. Ablating a single head is not: the true forward
recomputes the norm's scale over the patched sum, while the split keeps the other heads'
writes at their own forward's scale and swaps in the head's ablated-run write. This module
measures that gap. (MIB's EAP-IG library runs Gemma-2 with its post-norms as they are: it
patches each head's pre-norm output `o_h` into the residual stream, outside the norm.)

    python -m bench.post_norm   # prints the gap on a random Gemma-2-shaped model
"""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer

from bench.runtime import AblatedRun, MaskedRuntime


def true_head_ablation(
    model: HookedTransformer, clean: torch.Tensor, corrupt: torch.Tensor, layer: int, heads: list[int]
) -> torch.Tensor:
    """Logits with `heads` of `layer` reading their corrupted-run z (the norm recomputed)."""
    _, cache = model.run_with_cache(corrupt, names_filter=f"blocks.{layer}.attn.hook_z")
    corrupted_z = cache[f"blocks.{layer}.attn.hook_z"]

    def patch(z: torch.Tensor, hook: object) -> torch.Tensor:
        z = z.clone()
        z[:, :, heads] = corrupted_z[:, :, heads]
        return z

    return model.run_with_hooks(clean, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", patch)])


def split_head_ablation(
    runtime: MaskedRuntime, clean: torch.Tensor, ablated: AblatedRun, layer: int, heads: list[int]
) -> torch.Tensor:
    """Logits with every out-edge of `heads` of `layer` off in the masked runtime."""
    graph = runtime.graph
    mask = graph.real_edge_mask.to(runtime.model.cfg.dtype).clone()
    for head in heads:
        mask[graph.src_index[f"a{layer}.h{head}"]] = 0
    return runtime.forward(clean, mask, ablated)


def relative_gap(
    runtime: MaskedRuntime, clean: torch.Tensor, corrupt: torch.Tensor, layer: int, heads: list[int]
) -> float:
    """||split - true|| / ||true - clean|| over the logits: the gap as a share of the ablation's effect."""
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    with torch.no_grad():
        true = true_head_ablation(runtime.model, clean, corrupt, layer, heads)
        split = split_head_ablation(runtime, clean, ablated, layer, heads)
        plain = runtime.model(clean)
    return float((split - true).norm() / (true - plain).norm())


def main() -> None:
    from bench.zoo import load_model

    name = "random:gemma2@n_layers=2,d_vocab=2048"  # Gemma-2-2B's width, heads and norms; 2 layers
    model = load_model(name, seed=0)
    runtime = MaskedRuntime(model)
    gen = torch.Generator().manual_seed(0)
    clean, corrupt = (torch.randint(0, 2048, (4, 16), generator=gen) for _ in range(2))
    n_heads = model.cfg.n_heads
    gaps = [relative_gap(runtime, clean, corrupt, 0, [head]) for head in range(n_heads)]
    whole = relative_gap(runtime, clean, corrupt, 0, list(range(n_heads)))
    print(
        f"{name}: one layer-0 head ablated, gap / effect: median {sorted(gaps)[n_heads // 2]:.4f}, max {max(gaps):.4f}"
    )
    print(f"every layer-0 head ablated (exact by construction): {whole:.2e}")


if __name__ == "__main__":
    main()
