"""The example plugin package installed into a fresh virtual environment beside CDBench: its
method, task and model show in `bench list` with the distribution's name and version, and run
through `run --all` and the report. Slow (two installs and a few subprocesses): `pytest -m slow`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_wheel_install import _copy_tracked, _env, _run, _venv_with_our_dependencies

pytestmark = pytest.mark.slow


def test_installed_example_plugin_lists_runs_and_reports(tmp_path: Path) -> None:
    source = _copy_tracked(tmp_path / "src")
    env = _env(tmp_path)
    python = _venv_with_our_dependencies(tmp_path / "venv")
    pip_install = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--ignore-installed"]
    _run(*pip_install, source, cwd=tmp_path, env=env)
    _run(*pip_install, source / "examples" / "cdbench-example-plugin", cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()

    listing = _run(python, "-m", "bench", "list", cwd=work, env=env)
    lines = {line.split()[0]: line for line in listing.stdout.splitlines() if line.startswith("  ")}
    for name in ("example-delta-norm", "example-first-token", "example-tiny"):
        assert lines[name].endswith("[plugin: cdbench-example-plugin 0.1.0]"), lines[name]
    assert "warning" not in listing.stderr, listing.stderr

    methods = "example-delta-norm,eap,random"
    _run(
        python, "-m", "bench", "run", "--all", "--tasks", "example-first-token", "--methods", methods, cwd=work, env=env
    )
    found = sorted(
        p.relative_to(work / "results" / "runs").parts[2] for p in (work / "results" / "runs").rglob("*.json")
    )
    assert found == ["eap", "example-delta-norm", "random", "random", "random"]  # random: seeds 0-2
    result = json.loads(next((work / "results" / "runs").rglob("example-delta-norm/*.json")).read_text())
    assert result["key"]["model"] == "example-tiny" and len(result["edge_scores"]) == 110

    report = _run(python, "-m", "bench", "report", cwd=work, env=env)
    assert "leaderboard.html" in report.stdout
    page = (work / "results" / "leaderboard.html").read_text()
    assert "example-delta-norm" in page and "example-first-token" in page
