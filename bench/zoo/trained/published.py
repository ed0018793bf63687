"""The weights everyone scores: the trained models as shipped with CDBench.

Floating point differs between CPUs, so a model retrained on another machine is a different
model, with a different detectable ground truth and different scores. The weights are
therefore published with the package, as InterpBench publishes its SIIT models:
`published/<name>/model.safetensors` (no pickle) beside `published/<name>/card.json`, whose
`weights.sha256` is checked on every load. A missing or altered file is an error that says
how to restore it; it is never retrained silently. The ground-truth files and the committed
baseline are derived from exactly these weights.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.package_data import checkout_root
from bench.zoo.hub import ModelUnavailable

if TYPE_CHECKING:  # checking the shipped files needs no torch (`bench list`); loading them does
    import torch

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"


class TrainedWeightsError(ModelUnavailable):
    """A shipped weight file or card is missing or does not match its recorded sha256."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_path(name: str) -> Path:
    return PUBLISHED_DIR / name / WEIGHTS_FILE


def card_path(name: str) -> Path:
    return PUBLISHED_DIR / name / CARD_FILE


def _restore_hint(name: str, path: Path) -> str:
    return (
        f"restore it with `git checkout -- {_display(path)}` (or reinstall CDBench), or train new weights with "
        f"`python -m bench models build --retrain --publish {name}` (new weights: the committed scores no longer apply)"
    )


def _display(path: Path) -> str:
    """The path relative to the checkout when it is in one, so the hint can be pasted."""
    root = checkout_root()
    try:
        return str(path.relative_to(root)) if root is not None else str(path)
    except ValueError:
        return str(path)


def read_card(name: str) -> dict[str, Any]:
    path = card_path(name)
    if not path.exists():
        raise TrainedWeightsError(f"{name}: the model card {_display(path)} is missing; {_restore_hint(name, path)}")
    return json.loads(path.read_text())


def verified_weights(name: str) -> Path:
    """The shipped weight file of `name`, after checking it against its card's sha256.

    Raises:
        TrainedWeightsError: the file or its card is missing, or the file was altered.
    """
    card = read_card(name)
    path = weights_path(name)
    if not path.exists():
        raise TrainedWeightsError(f"{name}: the weight file {_display(path)} is missing; {_restore_hint(name, path)}")
    expected = card["weights"]["sha256"]
    actual = sha256_of(path)
    if actual != expected:
        raise TrainedWeightsError(
            f"{name}: the weight file {_display(path)} is altered (sha256 {actual[:12]}..., its card says "
            f"{expected[:12]}...); {_restore_hint(name, path)}"
        )
    return path


def load_state(name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(verified_weights(name))


def publish(name: str, weights: Path, card: dict[str, Any]) -> Path:
    """Copy freshly trained weights into the package with a card recording their sha256."""
    directory = PUBLISHED_DIR / name
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (WEIGHTS_FILE + ".tmp")
    shutil.copyfile(weights, tmp)
    tmp.replace(directory / WEIGHTS_FILE)
    shipped = {**card, "weights": {"file": WEIGHTS_FILE, "format": "safetensors", "sha256": sha256_of(weights)}}
    tmp_card = directory / (CARD_FILE + ".tmp")
    tmp_card.write_text(json.dumps(shipped, indent=1) + "\n")
    tmp_card.replace(directory / CARD_FILE)
    return directory
