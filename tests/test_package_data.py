"""Data files in a checkout and in an installed package: the lookup, the packaging list, the
writers that must never write into site-packages.
The installed wheel itself is exercised in test_wheel_install.py (slow)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bench import package_data, provenance
from bench.ground_truth import GROUND_TRUTH_DIR, GroundTruthError, write_ground_truth
from bench.regression import BASELINE_PATH

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Pretend `bench` sits in site-packages (no pyproject.toml beside it)."""
    package = tmp_path / "site-packages" / "bench"
    package.mkdir(parents=True)
    monkeypatch.setattr(package_data, "PACKAGE_DIR", package)
    monkeypatch.setattr(package_data, "PACKAGED_DATA_DIR", package / "_data")
    return package


def test_a_checkout_uses_its_own_files() -> None:
    assert package_data.checkout_root() == ROOT
    assert GROUND_TRUTH_DIR == ROOT / "ground_truth"
    assert BASELINE_PATH == ROOT / "results" / "baseline.json"


def test_an_installed_package_uses_its_packaged_copies(installed: Path) -> None:
    assert package_data.checkout_root() is None
    assert package_data.data_path("results/baseline.json") == installed / "_data" / "results" / "baseline.json"


def test_ground_truth_is_never_written_into_an_installed_package(installed: Path, tmp_path: Path) -> None:
    with pytest.raises(GroundTruthError, match="installed, not a checkout"):
        write_ground_truth({"task": "probe"})
    assert not list(installed.rglob("*.json"))
    assert write_ground_truth({"task": "probe"}, root=tmp_path) == tmp_path / "probe.json"


def test_git_is_not_asked_outside_a_checkout(installed: Path) -> None:
    assert provenance.git_commit() == "unknown"


def test_every_code_package_and_data_folder_is_packaged() -> None:
    """`packages` is written by hand (two entries are mapped data folders), so a new subpackage
    must be added to it; this names the one that was not."""
    mapped = SETUPTOOLS["package-dir"]
    code = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("bench", "methods", "tasks")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert set(SETUPTOOLS["packages"]) == code | set(mapped)
    for package, folder in mapped.items():
        for pattern in SETUPTOOLS["package-data"][package]:
            assert list((ROOT / folder).glob(pattern)), f"{package}: nothing in {folder}/ matches {pattern}"
