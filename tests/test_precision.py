"""bf16 runs: keyed apart from fp32 runs, scores accumulated in float32, rankings close to fp32's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from scipy.stats import spearmanr

from bench.registry import UnknownNameError
from bench.runner import RunRequest, execute
from bench.runtime import MaskedRuntime
from bench.zoo import load_model

MIN_RANK_CORRELATION = 0.99  # Spearman, bf16 vs fp32 edge scores (measured: 0.999 or more)


@pytest.mark.parametrize("family", ["llama3", "gemma2"])
@pytest.mark.parametrize("method", ["eap", "eap-ig-inputs"])
def test_bf16_scores_rank_edges_as_fp32_does(family: str, method: str, tmp_path: Path) -> None:
    model = f"random:{family}@tiny"
    fp32, fp32_path = execute(RunRequest(method, "induction", model, n_examples=16), tmp_path)
    bf16, bf16_path = execute(RunRequest(method, "induction", model, n_examples=16, dtype="bfloat16"), tmp_path)
    assert (fp32.dtype, bf16.dtype) == ("float32", "bfloat16")
    assert bf16.key.model == f"{model}~bfloat16" and bf16_path != fp32_path  # two results, two keys
    assert fp32.model_identity["weights_sha256"] != bf16.model_identity["weights_sha256"]
    names = list(fp32.edge_scores)
    rho = spearmanr([fp32.edge_scores[n] for n in names], [bf16.edge_scores[n] for n in names]).statistic
    assert rho >= MIN_RANK_CORRELATION


def test_gradient_scores_accumulate_in_float32() -> None:
    model = load_model("random:llama3@tiny~bfloat16")
    assert model.cfg.dtype == torch.bfloat16
    runtime = MaskedRuntime(model)
    clean = torch.randint(0, 512, (2, 6), generator=torch.Generator().manual_seed(0))
    ablated = runtime.ablate("zero", like=clean)
    scores = runtime.edge_gradients(
        clean, lambda logits: logits[..., -1, 0].float().mean(), runtime.deltas(clean, ablated)
    )
    assert scores.dtype == torch.float32 and bool(scores.abs().sum() > 0)


def test_unknown_dtype_names_the_choices() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown dtype 'bf8'.*float32, bfloat16, float16"):
        load_model("random:llama3@tiny~bf8")
