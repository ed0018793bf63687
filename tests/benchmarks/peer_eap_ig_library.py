"""Time the EAP-IG library (`hannamw/EAP-IG`, the code MIB runs) on the setting of
`test_method_speed.py`: a random GPT-2-small-shaped model (32,491 edges), 8 pairs of 16
tokens, 2 threads, medians of 3 after a first call that measures the peak memory.

    git clone https://github.com/hannamw/EAP-IG /tmp/EAP-IG && git -C /tmp/EAP-IG checkout 795f560
    sed -i "s/device='cuda'/device=model.cfg.device/g" /tmp/EAP-IG/src/eap/attribute.py
    OMP_NUM_THREADS=2 python tests/benchmarks/peer_eap_ig_library.py /tmp/EAP-IG/src

Two changes let it run here, neither in what it computes: its score matrices are created on
`device='cuda'` (pointed at the model's device by the `sed` above), and its `tokenize_plus`
needs a tokenizer, which a random model offline has not (replaced by one that passes token
ids through). Its weights keep `requires_grad`, as the library's gradients need.
Not a pytest module (no `test_` prefix): it needs the library's source.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from bench.profiling import measure


def main(library_src: str) -> None:
    sys.path.insert(0, library_src)
    import eap.attribute as attribute
    from eap.graph import Graph

    torch.set_num_threads(2)
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
    graph = Graph.from_model(model)
    batches = [(clean, corrupted, labels)]
    for method, steps in (("EAP", None), ("EAP-IG-inputs", 5)):

        def call(method: str = method, steps: int | None = steps) -> None:
            attribute.attribute(model, graph, batches, logit_difference, method, ig_steps=steps, quiet=True)

        peak = measure(call).peak_extra_mb
        times = []
        for _ in range(3):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        print(f"{method}: median {statistics.median(times):.2f} s of 3, peak extra memory {peak:.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1])
