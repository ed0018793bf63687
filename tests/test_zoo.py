"""The model zoo: offline behaviour of hub models and random-weight stand-ins."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.registry import UnknownNameError
from bench.zoo import ModelUnavailable, load_model, model_names, model_status
from bench.zoo.architectures import HUB_ARCHITECTURES


@pytest.fixture
def offline_empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path))


@pytest.mark.parametrize("name", list(HUB_ARCHITECTURES))
def test_unreachable_hub_model_fails_fast_in_one_line(name: str, offline_empty_cache: None) -> None:
    start = time.perf_counter()
    with pytest.raises(ModelUnavailable) as err:
        load_model(name)
    message = str(err.value)
    assert "\n" not in message
    assert repr(name) in message and "unreachable" in message and f"random:{name}" in message
    assert time.perf_counter() - start < 10
    assert not model_status(name).available


@pytest.mark.parametrize("name", ["gpt2", "attn-only-4l", "redwood_attn_2l"])
def test_random_stand_in_has_the_hub_architecture(name: str) -> None:
    model = load_model(f"random:{name}", seed=3)
    for key, value in HUB_ARCHITECTURES[name].config.items():
        if key != "tokenizer_name":
            assert getattr(model.cfg, key) == value, key
    assert model.cfg.use_split_qkv_input and (model.cfg.attn_only or model.cfg.use_hook_mlp_in)


def test_random_models_are_seeded() -> None:
    a, b, c = (load_model("random:redwood_attn_2l", seed=s) for s in (0, 0, 1))
    assert (a.W_Q == b.W_Q).all()
    assert not (a.W_Q == c.W_Q).all()


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown model 'gpt3'.*valid choices: .*gpt2.*tracr-reverse"):
        load_model("gpt3")
    assert "random:gpt2-xl" in model_names()


def test_cli_reports_unavailable_model_without_traceback(tmp_path) -> None:
    code = "from bench.zoo import load_model; load_model('gpt2')"
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "ModelUnavailable" in proc.stderr
