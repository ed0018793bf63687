"""Data files in a checkout and in an installed package: the lookup, the packaging list, the
writers that must never write into site-packages, and `bench check` on part of the suite.
The installed wheel itself is exercised in test_wheel_install.py (slow)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from bench import package_data, provenance
from bench.cli import check_command, main
from bench.ground_truth import GROUND_TRUTH_DIR, GroundTruthError, write_ground_truth
from bench.regression import BASELINE_PATH, STABILITY_PREFIX
from bench.stability_suite import plan_cells
from bench.suite import plan_suite

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


def test_check_on_part_of_the_suite_compares_only_those_runs(tmp_path: Path) -> None:
    baseline = json.loads(BASELINE_PATH.read_text())
    plan = plan_suite(methods=["exact-patching"], tasks=["tracr-reverse"])
    runs = [
        "exact-patching on tracr-reverse (tracr-reverse, corrupted ablation, seed 0)",
        "exact-patching on tracr-reverse (tracr-reverse, zero ablation, seed 0)",
    ]
    assert sorted(check_command._expected(BASELINE_PATH, plan, [])) == runs
    with_cells = check_command._expected(BASELINE_PATH, plan, plan_cells(plan))
    assert sorted(with_cells) == [*runs, *(STABILITY_PREFIX + label for label in runs)]
    everything = check_command._expected(BASELINE_PATH, None, plan_cells(plan_suite()))
    assert everything == baseline  # every stability entry is a cheap cell of the default suite
    assert not any(k.startswith(STABILITY_PREFIX) for k in check_command._expected(BASELINE_PATH, None, []))
    unrelated = tmp_path / "baseline.json"
    unrelated.write_text(json.dumps({k: v for k, v in baseline.items() if "tracr-reverse" not in k}))
    with pytest.raises(SystemExit, match="has no entries for the chosen runs"):
        check_command._expected(unrelated, plan, [])
    with pytest.raises(SystemExit, match="no baseline at"):
        check_command._expected(tmp_path / "missing.json", plan, [])


def test_check_refuses_to_write_a_partial_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--update", "--tasks", "tracr-reverse"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --update rewrites the whole baseline; run it without --tasks or --methods"
    ]


def test_check_never_writes_the_baseline_into_an_installed_package(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--update"]) == 2
    assert "give --baseline PATH" in capsys.readouterr().err


def test_check_names_an_unknown_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--tasks", "tracr-revers"]) == 2
    assert "'tracr-revers'" in capsys.readouterr().err
