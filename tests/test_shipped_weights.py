"""The trained models everyone scores: shipped weights checked on load, retraining kept
available, builds safe under concurrency."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.zoo import load_model, model_status
from bench.zoo.trained import (
    TRAINED_MODELS,
    TrainedWeightsError,
    cache,
    load_trained,
    publish_retrained,
    published,
    retrain,
    siit,
)
from bench.zoo.trained.recipes import RECIPES, SiitRecipe

ROOT = Path(__file__).resolve().parent.parent
TINY = SiitRecipe("hist", d_model=16, n_heads=2, d_head=4, d_mlp=16, steps=4, batch_size=8)


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch) -> Path:
    """The shipped weights copied to a temporary directory that loading reads instead."""
    copy = tmp_path / "published"
    shutil.copytree(published.PUBLISHED_DIR, copy)
    monkeypatch.setattr(published, "PUBLISHED_DIR", copy)
    return copy


def test_every_trained_model_ships_safetensors_whose_sha256_is_in_its_card() -> None:
    for name in TRAINED_MODELS:
        card = json.loads(published.card_path(name).read_text())
        assert card["weights"]["format"] == "safetensors"
        assert published.sha256_of(published.weights_path(name)) == card["weights"]["sha256"]
        assert card["name"] == name and card["recipe"]["seed"] == RECIPES[name].seed


def test_loading_uses_the_shipped_weights_bit_for_bit() -> None:
    from safetensors.torch import load_file

    state = load_file(published.weights_path("siit-hist"))
    model = load_trained("siit-hist")
    for key, value in model.state_dict().items():
        if key in state:
            assert torch.equal(value, state[key]), key


def test_an_altered_weight_file_is_one_line_naming_it_and_how_to_restore_it(shipped_copy, capsys) -> None:
    path = shipped_copy / "siit-hist" / published.WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(TrainedWeightsError) as caught:
        load_model("siit-hist")
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert "siit-hist" in message and "altered" in message and str(path) in message
    assert "git checkout" in message and "--retrain" in message
    status = model_status("siit-hist")
    assert not status.available and "altered" in status.reason
    assert main(["run", "--method", "random", "--task", "siit-hist", "--results-dir", str(shipped_copy / "r")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "altered" in err
    assert not (shipped_copy / "r").exists() or not list((shipped_copy / "r").rglob("*-seed*.json"))


def test_a_missing_weight_file_is_one_line_and_never_a_silent_retrain(shipped_copy, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CDBENCH_CACHE", str(tmp_path / "cache"))
    (shipped_copy / "induction-2l" / published.WEIGHTS_FILE).unlink()
    with pytest.raises(TrainedWeightsError, match=r"induction-2l: the weight file .* is missing; restore it"):
        load_model("induction-2l")
    assert not (tmp_path / "cache").exists(), "a missing file must not start training"
    assert main(["models", "build", "induction-2l"]) == 1


def test_retrain_and_publish_round_trip(shipped_copy, tmp_path, monkeypatch) -> None:
    """A retrained model lands in the cache with its sha256; publishing makes it the shipped one."""
    monkeypatch.setenv("CDBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(RECIPES, "siit-hist", TINY)
    from bench.zoo.trained import builder

    real_write, written = builder.write_ground_truth, []

    def write_elsewhere(payload: dict, root: Path | None = None) -> Path:
        """The cache's copy as usual; the repository's copy (no root) into tmp_path, recorded."""
        written.append(root)
        return real_write(payload, root=root or tmp_path)

    monkeypatch.setattr(builder, "write_ground_truth", write_elsewhere)
    card = retrain("siit-hist")
    assert card["weights"]["sha256"] == published.sha256_of(cache.model_dir("siit-hist") / cache.WEIGHTS)
    assert "trained_on" in card and card["recipe"]["steps"] == TINY.steps
    publish_retrained("siit-hist")
    assert written[-1] is None and (tmp_path / "siit-hist.json").exists(), "publishing writes the repository's copy"
    shipped = json.loads((shipped_copy / "siit-hist" / published.CARD_FILE).read_text())
    assert shipped["weights"]["sha256"] == card["weights"]["sha256"]
    model = load_trained("siit-hist")
    assert model.cfg.d_model == TINY.d_model


@pytest.mark.slow
def test_two_processes_needing_the_same_model_train_it_once(tmp_path) -> None:
    """Both wait on one lock: one trains, the other finds it built; neither reads half a file."""
    log = tmp_path / "trainings.log"
    script = textwrap.dedent(
        f"""
        import json, sys
        from bench.zoo.trained import recipes, retrain, siit
        from bench.zoo.trained.recipes import SiitRecipe
        recipes.RECIPES["siit-tiny"] = SiitRecipe("hist", d_model=16, n_heads=2, d_head=4, d_mlp=16, steps=40,
                                                  batch_size=8)
        original = siit.train_model
        def counted(*args, **kwargs):
            with open({str(log)!r}, "a") as handle:
                handle.write("trained\\n")
            return original(*args, **kwargs)
        siit.train_model = counted
        card = retrain("siit-tiny")
        print(json.dumps(card["weights"]))
        """
    )
    env = {"CDBENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert log.read_text().splitlines() == ["trained"], "the model must be trained exactly once"
    weights = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    assert weights[0] == weights[1]
    model_dir = tmp_path / "cache" / "models" / "siit-tiny"
    assert published.sha256_of(model_dir / cache.WEIGHTS) == weights[0]["sha256"]
    assert not list(model_dir.glob("*.tmp")), "no temporary file is left behind"


@pytest.mark.slow
def test_retraining_from_scratch_meets_the_thresholds(tmp_path, monkeypatch) -> None:
    """Training stays reproducible in the sense anyone can check: a model retrained from
    scratch on this machine passes every acceptance threshold (bit identity with the shipped
    weights is not promised across CPUs)."""
    monkeypatch.setenv("CDBENCH_CACHE", str(tmp_path))
    card = retrain("siit-hist")
    assert all(fig["passed"] for fig in card["acceptance"].values()), card["acceptance"]
    assert card["measurements"]["strictness"] >= siit.MIN_STRICTNESS
