"""What produced a result: package versions, git commit and machine."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bench.package_data import checkout_root

PACKAGES = ("cdbench", "torch", "transformer-lens", "tracr-pypi", "jax", "scikit-learn", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


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
