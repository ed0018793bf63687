"""The built wheel on its own: installed into a clean virtual environment and run from a folder
outside the repository, it still has its ground truth and its baseline (they are package data,
not files beside the checkout). Slow (a build, a venv and a few runs): `pytest -m slow`.

The new environment sees this one's dependencies through a `.pth` line naming this environment's
site-packages. Python does not read `.pth` files inside a folder that a `.pth` line added, so this
environment's editable install of CDBench stays out; the probe below checks that it does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import json, sys, bench
from importlib import metadata
from bench.package_data import checkout_root
print(json.dumps({
    "bench": bench.__file__,
    "finders": [getattr(f, "__module__", "") for f in sys.meta_path],
    "checkout": str(checkout_root()),
    "version_from": str(metadata.distribution("cdbench").locate_file("")),
}))
"""

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def _tracked_files() -> list[str]:
    listing = _run("git", "ls-files", "-z", cwd=ROOT).stdout
    return [name for name in listing.split("\0") if name and (ROOT / name).is_file()]


def _copy_tracked(dest: Path) -> Path:
    """The tracked files only, so the build sees what a clone would and writes nothing here."""
    for name in _tracked_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    return dest


def _venv_with_our_dependencies(path: Path) -> Path:
    """A fresh venv whose python also imports this environment's packages (minus its editable CDBench)."""
    _run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent)
    python = path / "bin" / "python"
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=path).stdout.strip()
    (Path(site) / "cdbench_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # the trained-model cache starts empty, so nothing here waits on (or writes to) the user's
    return {**env, "HF_HUB_OFFLINE": "1", "CDBENCH_CACHE": str(tmp / "cache"), "PIP_NO_INDEX": "1"}


def _build_artefacts() -> set[Path]:
    return {p for p in [ROOT / "build", *ROOT.glob("**/*.egg-info")] if p.exists()}


def test_wheel_ships_its_data_and_works_outside_a_checkout(tmp_path: Path) -> None:
    before = _build_artefacts()
    source = _copy_tracked(tmp_path / "src")
    dist = tmp_path / "dist"
    env = _env(tmp_path)
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, ".", cwd=source, env=env
    )
    assert _build_artefacts() == before, "building the wheel wrote into the checkout"

    (wheel,) = dist.glob("cdbench-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    tracked = _tracked_files()
    expected = {
        f"bench/_data/{name}" for name in tracked if name.startswith("ground_truth/") and name.endswith(".json")
    }
    expected.add("bench/_data/results/baseline.json")
    expected |= {
        name
        for name in tracked
        if name.startswith("bench/zoo/trained/published/") and name.endswith(("model.safetensors", "card.json"))
    }
    expected |= {name for name in tracked if name.startswith("bench/zoo/tracr_programs/") and name.endswith(".py")}
    assert "bench/_data/ground_truth/tracr-reverse.json" in expected
    assert "bench/zoo/tracr_programs/reverse.py" in expected  # the built-in Tracr programs are files
    assert expected <= shipped, f"missing from the wheel: {sorted(expected - shipped)}"

    python = _venv_with_our_dependencies(tmp_path / "venv")
    _run(python, "-m", "pip", "install", "--no-deps", "--ignore-installed", wheel, cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()
    probe = json.loads(_run(python, "-c", PROBE, cwd=work, env=env).stdout)
    venv = str(tmp_path / "venv")
    assert probe["bench"].startswith(venv), f"bench imported from {probe['bench']}, not the installed wheel"
    assert not any("__editable__" in module for module in probe["finders"]), probe["finders"]
    assert probe["checkout"] == "None" and probe["version_from"].startswith(venv)

    listing = _run(python, "-m", "bench", "list", "tasks", cwd=work, env=env).stdout
    for task in ("tracr-reverse", "tracr-xproportion"):
        line = next(line for line in listing.splitlines() if line.split()[:1] == [task])
        assert "ground truth" in line and "no ground truth" not in line, line

    shipped_models = _run(python, "-m", "bench", "models", "build", cwd=work, env=env).stdout
    assert shipped_models.count("shipped weights verified") == 5, shipped_models  # the trained weights came along

    run = _run(python, "-m", "bench", "run", "--method", "exact-patching", "--task", "tracr-reverse", cwd=work, env=env)
    assert "ROC AUC vs full ground truth" in run.stdout, run.stdout
    (result_file,) = (work / "results" / "runs").rglob("*.json")
    result = json.loads(result_file.read_text())
    roc = result["evaluation"]["ground_truth"]["full"]["edge"]["roc_auc"]
    assert 0.5 < roc <= 1.0
    assert result["git_commit"] == "unknown"  # git is not asked about whatever repository holds the venv

    check = _run(
        python, "-m", "bench", "check", "--tasks", "tracr-xproportion", "--methods", "exact-patching", cwd=work, env=env
    )
    assert "bench/_data/results/baseline.json: 0 regression(s)" in check.stdout, check.stdout
    assert sorted(p.name for p in work.iterdir()) == ["results"]  # only the run's results, in the working folder


def test_editable_install_reads_and_writes_the_checkouts_files(tmp_path: Path) -> None:
    source = _copy_tracked(tmp_path / "src")
    env = _env(tmp_path)
    python = _venv_with_our_dependencies(tmp_path / "venv")
    pip_install = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--ignore-installed"]
    _run(*pip_install, "-e", source, cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()
    probe = json.loads(_run(python, "-c", PROBE, cwd=work, env=env).stdout)
    assert Path(probe["bench"]).resolve() == (source / "bench" / "__init__.py").resolve()
    assert Path(probe["checkout"]).resolve() == source.resolve()
    code = "from bench.ground_truth import GROUND_TRUTH_DIR, write_ground_truth; "
    code += "from bench.regression import BASELINE_PATH; "
    code += "print(GROUND_TRUTH_DIR); print(BASELINE_PATH); print(write_ground_truth({'task': 'probe'}))"
    paths = _run(python, "-c", code, cwd=work, env=env).stdout.split()
    expected = [source / "ground_truth", source / "results" / "baseline.json", source / "ground_truth" / "probe.json"]
    assert [Path(p).resolve() for p in paths] == [p.resolve() for p in expected]
