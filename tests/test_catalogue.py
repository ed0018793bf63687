"""The catalogue `bench list` reads instead of importing every adapter and task: it matches the
registries (so it cannot drift from the code), it ships in the wheel, and a plugin still shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench import catalogue, plugins
from bench.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generated() -> str:
    """The catalogue built from the registries of a fresh interpreter, as `--write` builds it:
    in this process other tests may have registered methods or tasks of their own."""
    code = "from bench import catalogue; print(catalogue.render(catalogue.build()), end='')"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CDBENCH_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    ).stdout


def test_committed_catalogue_matches_the_registries(generated: str) -> None:
    """Fails after a built-in method or task is added or changed without regenerating."""
    assert catalogue.CATALOGUE_PATH.read_text() == generated, (
        "bench/catalogue.json is stale: run `python -m bench.catalogue --write` and commit it"
    )


def test_catalogue_lists_every_built_in_and_no_plugin(generated: str) -> None:
    import tasks

    listed = catalogue.read()
    assert [m["name"] for m in listed["method"]] == [m["name"] for m in json.loads(generated)["method"]]
    assert "eap" in [m["name"] for m in listed["method"]]
    assert len(listed["task"]) >= len(tasks.BUILTIN_MODULES)
    assert all(set(t) == {"name", "model", "default_examples", "metric", "description"} for t in listed["task"])


def test_check_fails_on_a_stale_copy_and_write_repairs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text(catalogue.CATALOGUE_PATH.read_text().replace('"eap"', '"eap-renamed"', 1))
    monkeypatch.setattr(catalogue, "CATALOGUE_PATH", path)
    assert catalogue.main(["--check"]) == 1
    assert "python -m bench.catalogue --write" in capsys.readouterr().err
    assert catalogue.main(["--write"]) == 0
    assert catalogue.main(["--check"]) == 0
    assert path.read_text() == (ROOT / "bench" / "catalogue.json").read_text()


def test_catalogue_ships_in_the_wheel() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert catalogue.CATALOGUE_PATH.name in package_data["bench"]


def test_list_prints_the_same_from_the_catalogue_and_from_the_registries(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a plugin configured, `list` goes through the registries (so plugins show, after the
    built-ins); with none loaded, that prints exactly what the catalogue prints."""
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    monkeypatch.setattr(plugins, "plugins_configured", lambda: False)
    outputs = []
    for what in ("methods", "tasks"):
        assert main(["list", what]) == 0
        outputs.append(capsys.readouterr().out)
    calls: list[str] = []
    live = catalogue.live_entries
    monkeypatch.setattr(plugins, "plugins_configured", lambda: True)
    monkeypatch.setattr(catalogue, "live_entries", lambda kind: calls.append(kind) or live(kind))
    for what, from_catalogue in zip(("methods", "tasks"), outputs, strict=True):
        assert main(["list", what]) == 0
        assert capsys.readouterr().out == from_catalogue
    assert calls == ["method", "task"]


def test_plugins_configured_sees_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [])
    monkeypatch.setattr(plugins, "REQUESTED", [])
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    assert not plugins.plugins_configured()
    monkeypatch.setenv(plugins.ENV_VAR, "my_plugin.py")
    assert plugins.plugins_configured()
