"""Where retrained models live: `$CDBENCH_CACHE/models/<name>/` (default `~/.cache/cdbench/models/<name>/`).

Scores come from the shipped weights (`published.py`); this cache holds what
`bench models build --retrain` trains. A model directory holds `model.safetensors`,
`card.json` (recipe, seed, training curves, acceptance figures, the weights' sha256),
`training.png`, the ground-truth file derived at build time, and while training runs
`checkpoint.pt`. A model counts as built only when its card's recipe equals the current one,
so changing a recipe rebuilds instead of loading stale weights. Every write is atomic and a
build holds `build.lock`, so two processes that need the same model train it once and
neither reads a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from bench.zoo.trained.published import sha256_of

if TYPE_CHECKING:  # imported where weights are read or written, so `bench list` costs no torch
    import torch

CACHE_ENV = "CDBENCH_CACHE"
WEIGHTS = "model.safetensors"
LOCK = "build.lock"
CARD = "card.json"
CHECKPOINT = "checkpoint.pt"
CURVES_PNG = "training.png"


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "cdbench") / "models"


def model_dir(name: str) -> Path:
    return cache_root() / name


def read_card(name: str) -> dict[str, Any] | None:
    path = model_dir(name) / CARD
    return json.loads(path.read_text()) if path.exists() else None


def is_built(name: str, recipe: dict[str, Any]) -> bool:
    """Weights and a card written for exactly this recipe are in the cache."""
    card = read_card(name)
    return card is not None and card.get("recipe") == recipe and (model_dir(name) / WEIGHTS).exists()


@contextmanager
def build_lock(name: str) -> Iterator[None]:
    """Held while `name` is trained and written: a second process waits, then finds it built."""
    directory = model_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / LOCK):
        yield


def save_model(name: str, state: dict[str, torch.Tensor], card: dict[str, Any]) -> Path:
    """Write weights, then the card with their sha256 (the card last: it is what marks the model built)."""
    from safetensors.torch import save_file

    directory = model_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write(directory / WEIGHTS, lambda tmp: save_file({k: v.contiguous() for k, v in state.items()}, tmp))
    card = {**card, "weights": {"file": WEIGHTS, "format": "safetensors", "sha256": sha256_of(directory / WEIGHTS)}}
    _atomic_write(directory / CARD, lambda tmp: Path(tmp).write_text(json.dumps(card, indent=1) + "\n"))
    _plot_curves(card, directory / CURVES_PNG)
    return directory


def load_weights(name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(model_dir(name) / WEIGHTS)


def _atomic_write(path: Path, write: Any) -> None:
    """`write(tmp_path)` into a fresh temporary file beside `path`, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(name: str, state: dict[str, Any]) -> None:
    import torch

    directory = model_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write(directory / CHECKPOINT, lambda tmp: torch.save(state, tmp))


def load_checkpoint(name: str) -> dict[str, Any] | None:
    import torch

    path = model_dir(name) / CHECKPOINT
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


def drop_checkpoint(name: str) -> None:
    (model_dir(name) / CHECKPOINT).unlink(missing_ok=True)


def _plot_curves(card: dict[str, Any], path: Path) -> None:
    """One line per logged loss against the step, log-scaled, for the model card."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = card["training"]["curves"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, values in curves.items():
        if key != "step":
            ax.plot(curves["step"], values, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(card["name"])
    if len(curves["step"]):  # a run shorter than one logging interval has no curve
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
