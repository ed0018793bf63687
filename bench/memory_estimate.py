"""Peak memory and pass counts of a run, predicted from the architecture table alone (no torch,
no weights), so a user knows before a run whether it fits.

The model counts what the runtime holds at its peak: the weights; the ablated run's source
outputs, the clean-minus-ablated deltas and the transient copies that build them
(`n_sources x tokens x d_model` each); the activations one forward keeps for its backward
(per layer: the per-head q/k/v inputs that make the graph's destinations, their normalised
copies, q/k/v/z, the attention pattern, the MLP's hidden activations); and the logits. The
per-layer constants were fitted to tensor-allocation peaks measured on CPU with torch's
profiler (`bench.profiling.tensor_peak_bytes`, the CPU counterpart of
`torch.cuda.max_memory_allocated`: the same on every machine, unlike resident memory) at 16
model sizes and batches; `tests/test_memory_estimate.py` checks three of them. A GPU adds its
CUDA context and the caching allocator's slack on top. Examples are independent in a
forward, so processing them in chunks divides the activations by the number of chunks;
`fit_chunk` says how many examples per chunk fit a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}
GRADIENT_METHODS = ("eap", "eap-ig-inputs", "eap-ig-activations", "eap-ig-activations-per-group", "eap-gp", "hisp")
MASKED_METHODS = ("exact-patching", "acdc", "edge-pruning", "subnetwork-probing", "random")
# Fitted on CPU (see the module docstring): activation tensors kept per layer, in units of
# tokens x d_model per query head (the split q/k/v inputs and their normalised copies),
# tokens x d_mlp, tokens x heads x d_head (q/k/v/z) and batch x heads x pos^2 (patterns).
PER_HEAD_INPUT_COPIES = 5.3
POST_NORM_PER_HEAD_COPIES = 7.4  # Gemma-2: each head's output normalised on its own
MLP_COPIES = 2.0  # pre- and post-activation
GATED_MLP_COPIES = 4.0  # gate, up, activation, product
HEAD_VECTOR_COPIES = 6.0
PATTERN_COPIES = 3.0
LOGIT_COPIES = 1.6  # the log-softmax and its gradient, beyond the full logits (float32)
# path methods: part of the previous point's graph is still alive when the next one is built
PATH_METHOD_ACTIVATIONS = 1.05


@dataclass(frozen=True)
class Estimate:
    """A run's predicted peak memory (bytes) and passes.

    Attributes:
        parts: bytes per component at the peak (weights, ablated run, deltas, activations, logits).
        forwards, backwards: the method's passes (evaluation adds `evaluation_forwards`).
        exact_passes: False where the count is an upper bound (ACDC stops early per edge).
    """

    method: str
    batch: int
    pos: int
    dtype: str
    parts: dict[str, int]
    forwards: int
    backwards: int
    exact_passes: bool
    evaluation_forwards: int

    @property
    def peak_bytes(self) -> int:
        return sum(self.parts.values())


def n_sources(config: dict[str, Any]) -> int:
    mlp = 0 if config.get("attn_only", False) else 1
    return 1 + config["n_layers"] * (config["n_heads"] + mlp)


def activation_bytes(config: dict[str, Any], batch: int, pos: int, dtype: str) -> int:
    """What one forward keeps for its backward, in the model's dtype (norms compute in float32
    for half precision, as TransformerLens does)."""
    b = DTYPE_BYTES[dtype]
    tokens = batch * pos
    d, h, e = config["d_model"], config["n_heads"], config["d_head"]
    d_mlp = 0 if config.get("attn_only", False) else config["d_mlp"]
    norm_extra = 1.5 if b < 4 else 1.0  # float32 intermediates of half-precision norms
    post_norm = POST_NORM_PER_HEAD_COPIES if config.get("use_normalization_before_and_after") else 0.0
    mlp = GATED_MLP_COPIES if config.get("gated_mlp") else MLP_COPIES
    per_layer = (
        tokens * d * h * (PER_HEAD_INPUT_COPIES * norm_extra + post_norm)
        + tokens * h * e * HEAD_VECTOR_COPIES
        + tokens * d_mlp * mlp
        + batch * h * pos * pos * PATTERN_COPIES
    )
    return int(config["n_layers"] * per_layer * b)


def estimate(
    method: str, config: dict[str, Any], batch: int, pos: int, dtype: str = "float32", options: dict | None = None
) -> Estimate:
    """Predict `method`'s peak memory and passes on a model of `config` at `batch` x `pos` tokens.

    Raises:
        ValueError: an unknown method or dtype, naming the valid ones.
    """
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; valid choices: {', '.join(DTYPE_BYTES)}")
    if method not in GRADIENT_METHODS + MASKED_METHODS:
        raise ValueError(f"unknown method {method!r}; valid choices: {', '.join(GRADIENT_METHODS + MASKED_METHODS)}")
    from bench.zoo.architectures import edge_count, parameter_count

    options = options or {}
    steps = int(options.get("steps", 5))
    b = DTYPE_BYTES[dtype]
    tokens = batch * pos
    sources = n_sources(config)
    source_bytes = sources * tokens * config["d_model"] * b
    logits = tokens * config["d_vocab"] * 4
    parts = {
        "weights": parameter_count(config) * b,
        "ablated run": source_bytes,
        "full logits": logits,
    }
    activations = activation_bytes(config, batch, pos, dtype) + LOGIT_COPIES * logits
    groups = 1 + config["n_layers"] * (1 if config.get("attn_only", False) else 2)
    n_layers = config["n_layers"]
    if method in GRADIENT_METHODS:
        parts["deltas"] = source_bytes
        path = method not in ("eap", "hisp")
        parts["activations"] = int(activations * (PATH_METHOD_ACTIVATIONS if path else 1.0))
        passes = {
            "eap": (3, 1),
            "hisp": (2, 1),
            "eap-ig-inputs": (2 + steps, steps),
            "eap-gp": (2 + 2 * steps, 2 * steps),
            "eap-ig-activations": (2 + groups * steps, groups * steps),
            "eap-ig-activations-per-group": (2 + groups * steps, groups * steps),
        }[method]
        exact = True
    else:
        masks = 1 if method in ("edge-pruning", "subnetwork-probing") else 4
        parts["mask buffer"] = masks * source_bytes
        parts["activations"] = int(masks * activations if method in ("edge-pruning", "subnetwork-probing") else 0)
        parts["masked forward"] = int(masks * activation_bytes(config, batch, pos, dtype) / max(n_layers, 1))
        n_steps = int(options.get("steps", 300))
        passes = {
            "exact-patching": (2 + edge_count(config), 0),
            "acdc": (2 + edge_count(config), 0),
            "edge-pruning": (2 + n_steps, n_steps),
            "subnetwork-probing": (2 + n_steps, n_steps),
            "random": (2, 0),
        }[method]
        exact = method != "acdc"
    return Estimate(method, batch, pos, dtype, parts, passes[0], passes[1], exact, evaluation_forwards=12)


def fit_chunk(
    method: str,
    config: dict[str, Any],
    batch: int,
    pos: int,
    dtype: str,
    device_bytes: float,
    options: dict | None = None,
) -> tuple[int, Estimate] | None:
    """The largest number of examples per chunk whose peak fits `device_bytes` (a gradient
    method's scores add up over examples, so chunks give the same scores), with that chunk's
    estimate; None when not even one example fits."""
    for chunk in range(batch, 0, -1):
        found = estimate(method, config, chunk, pos, dtype, options)
        if found.peak_bytes <= device_bytes:
            return chunk, found
    return None
