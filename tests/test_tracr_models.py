"""The TransformerLens conversions of the tracr models reproduce tracr exactly.

Every input of each program's domain (all sequences of length 1..max_seq_len)
is checked against three references: tracr's compiled haiku model, tracr's own
unembedding (logits before argmax), and the RASP program evaluated directly.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import haiku as hk
import jax
import numpy as np
import pytest
import torch
from tracr.rasp import rasp

from bench.zoo.tracr_models import TracrModel, build_tracr_model
from bench.zoo.tracr_programs import program_names

ATOL = 1e-4


def _domain(tm: TracrModel) -> dict[int, list[tuple]]:
    """All program inputs, grouped by length."""
    return {n: list(itertools.product(tm.vocab, repeat=n)) for n in range(1, tm.max_seq_len + 1)}


@functools.cache
def _jitted_tracr(name: str) -> tuple[Callable, Callable]:
    """tracr's forward and its unembed module with the argmax switched off, jitted."""
    assembled = build_tracr_model(name.removeprefix("tracr-")).assembled

    @hk.without_apply_rng
    @hk.transform
    def unembed(x: jax.Array) -> jax.Array:
        return assembled.get_compiled_model().unembed(x, use_unembed_argmax=False)

    return jax.jit(assembled.forward), jax.jit(unembed.apply)


def _tracr_forward(tm: TracrModel, ids: torch.Tensor) -> tuple[list[list[Any]], np.ndarray]:
    """Batched equivalent of ``assembled.apply``: (decoded outputs, pre-argmax logits).

    Decoded outputs drop the BOS position; logits are ``[batch, seq, n_out]``
    from tracr's own unembed module.
    """
    forward, unembed = _jitted_tracr(tm.name)
    out = forward(tm.assembled.params, ids.numpy())
    logits = np.asarray(unembed(tm.assembled.params, out.transformer_output.output))
    if logits.ndim == 2:  # numerical output: tracr squeezes the single dimension
        logits = logits[..., None]
    unembedded = np.asarray(out.unembedded_output)[:, 1:].tolist()
    decoded = [tm.assembled.output_encoder.decode(row) for row in unembedded]
    return decoded, logits


def _assert_outputs_equal(tm: TracrModel, got: list[Any], want: list[Any], context: Any) -> None:
    if tm.categorical:
        assert got == want, context
    else:
        np.testing.assert_allclose(got, want, atol=ATOL, err_msg=str(context))


@pytest.fixture(scope="module", params=program_names())
def tracr_model(request: pytest.FixtureRequest) -> TracrModel:
    return build_tracr_model(request.param)


def test_tl_matches_tracr_and_rasp_on_full_domain(tracr_model: TracrModel) -> None:
    tm = tracr_model
    n_checked, max_diff = 0, 0.0
    for n, inputs in _domain(tm).items():
        ids = tm.encode(inputs)
        assert ids.shape == (len(inputs), n + 1)
        assert (ids[:, 0] == tm.assembled.input_encoder.bos_encoding).all()
        with torch.no_grad():
            tl_logits = tm.model(ids)
        assert tl_logits.shape == (len(inputs), n + 1, tm.model.cfg.d_vocab_out)
        tl_out = tm.decode(tl_logits)
        tracr_out, tracr_logits = _tracr_forward(tm, ids)

        # Logits over the output space (ignoring BOS) agree numerically.
        diff = np.abs(tl_logits[:, 1:].numpy() - tracr_logits[:, 1:]).max()
        assert diff < ATOL, f"length {n}: max |TL - tracr| = {diff}"
        max_diff = max(max_diff, float(diff))

        for x, got, want in zip(inputs, tl_out, tracr_out, strict=True):
            _assert_outputs_equal(tm, got, want, (x, "TL vs tracr"))
            _assert_outputs_equal(tm, got, rasp.evaluate(tm.program, list(x)), (x, "TL vs RASP"))
        n_checked += len(inputs)
    assert n_checked == sum(len(tm.vocab) ** n for n in range(1, tm.max_seq_len + 1))
    print(f"{tm.name}: {n_checked} inputs, max |TL - tracr| logit diff {max_diff:.2e}")


def test_batched_reference_matches_tracr_apply(tracr_model: TracrModel) -> None:
    """The batched tracr reference above is the same as tracr's public ``apply``.

    ``apply`` runs eagerly and re-traces per sequence length, so only the
    shortest and longest lengths are sampled here.
    """
    tm = tracr_model
    domain = _domain(tm)
    for n in (1, tm.max_seq_len):
        inputs = domain[n]
        sample = inputs[:: max(1, len(inputs) // 7)]
        batched, _ = _tracr_forward(tm, tm.encode(sample))
        for x, got in zip(sample, batched, strict=True):
            want = tm.assembled.apply([tm.assembled.input_encoder.bos_token, *x]).decoded[1:]
            _assert_outputs_equal(tm, got, want, (n, x))


def test_config(tracr_model: TracrModel) -> None:
    cfg = tracr_model.model.cfg
    assert cfg.d_model == len(tracr_model.assembled.residual_labels)
    assert cfg.n_ctx == tracr_model.max_seq_len + 1
    assert cfg.d_vocab == len(tracr_model.vocab) + 2  # + BOS + pad
    out_enc = tracr_model.assembled.output_encoder
    assert cfg.d_vocab_out == (len(out_enc.encoding_map) if tracr_model.categorical else 1)
    assert cfg.attention_dir == "bidirectional" and cfg.normalization_type is None
    assert not tracr_model.model.training


def test_unknown_program_raises() -> None:
    with pytest.raises(ValueError, match=r"valid choices: reverse, xproportion"):
        build_tracr_model("sort")
