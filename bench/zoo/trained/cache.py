"""Where trained models live: `$CDBENCH_CACHE/models/<name>/` (default `~/.cache/cdbench/models/<name>/`).

A model directory holds `model.pt` (the state dict), `card.json` (recipe, seed, training
curves, acceptance figures), `training.png`, the ground-truth file derived at build time,
and while training runs `checkpoint.pt`. A model counts as built only when its card's
recipe equals the current one, so changing a recipe rebuilds instead of loading stale weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

CACHE_ENV = "CDBENCH_CACHE"
WEIGHTS = "model.pt"
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


def save_model(name: str, state: dict[str, torch.Tensor], card: dict[str, Any]) -> Path:
    """Write weights, then the card (the card last: it is what marks the model built)."""
    directory = model_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_save(state, directory / WEIGHTS)
    tmp = directory / (CARD + ".tmp")
    tmp.write_text(json.dumps(card, indent=1) + "\n")
    tmp.replace(directory / CARD)
    _plot_curves(card, directory / CURVES_PNG)
    return directory


def load_weights(name: str) -> dict[str, torch.Tensor]:
    return torch.load(model_dir(name) / WEIGHTS, map_location="cpu", weights_only=True)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def save_checkpoint(name: str, state: dict[str, Any]) -> None:
    directory = model_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_save(state, directory / CHECKPOINT)


def load_checkpoint(name: str) -> dict[str, Any] | None:
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
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
