"""What produced a result: package versions, git commit, machine, and the identities of the
data and the weights (hashes, so two results can be shown to share their inputs)."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from bench.task_data import TaskData

from bench.package_data import checkout_root

PACKAGES = ("cdbench", "torch", "transformer-lens", "tracr-pypi", "jax", "scikit-learn", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["cdbench"] = cdbench_version()
    return versions


def cdbench_version() -> str:
    """The version of the CDBench code that is running: a checkout's own pyproject.toml when
    run from one (the installed metadata may belong to another checkout), else the installed
    package's metadata."""
    root = checkout_root()
    if root is not None:
        text = (root / "pyproject.toml").read_text()
        if re.search(r'^name = "cdbench"$', text, re.MULTILINE):
            found = re.search(r'^version = "([^"]+)"$', text, re.MULTILINE)
            if found:
                return found.group(1)
    try:
        return metadata.version("cdbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def git_commit(repo: Path | None = None) -> str:
    """The checkout's commit, with '+dirty' when tracked files differ from it; "unknown" for an
    installed package (git there would answer for whatever repository holds the environment)."""
    cwd = repo or checkout_root()
    if cwd is None:
        return "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine() -> dict[str, str]:
    return {"platform": platform.platform(), "processor": platform.machine()}


def _add_tensor(digest: hashlib._Hash, name: str, tensor: torch.Tensor) -> None:
    """Name, dtype, shape and raw bytes; bytes through a uint8 view, which numpy can hold for
    every dtype (bfloat16 included)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    digest.update(f"{name}|{str(tensor.dtype).removeprefix('torch.')}|{tuple(tensor.shape)}\n".encode())
    digest.update(flat.view(torch.uint8).numpy())


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over the state dict sorted by name: each tensor's name, dtype, shape and bytes.
    Equal for bit-identical weights, whatever machine loaded them."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        _add_tensor(digest, name, tensor)
    return digest.hexdigest()


def data_fingerprint(data: TaskData) -> str:
    """sha256 of what defines a task's examples: clean and corrupted token ids, the mean-ablation
    reference, the output positions, the metric's name and the examples' dataset (answer and
    distractor ids, positions, prompts), so equal fingerprints mean the same examples."""
    digest = hashlib.sha256()
    _add_tensor(digest, "clean", data.clean)
    _add_tensor(digest, "corrupted", data.corrupted)
    if data.reference is not None:
        _add_tensor(digest, "reference", data.reference)
    if isinstance(data.output_positions, torch.Tensor):
        _add_tensor(digest, "output_positions", data.output_positions)
    else:
        digest.update(f"output_positions|{data.output_positions!r}\n".encode())
    digest.update(f"metric|{data.metric_name}\n".encode())
    if data.dataset is not None:
        rows = json.dumps(data.dataset.to_dict(), sort_keys=True, default=str)
        digest.update(f"dataset|{rows}\n".encode())
    return digest.hexdigest()
