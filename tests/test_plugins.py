"""Plugins: entry points, `--plugin` modules and files, CDBENCH_PLUGINS; broken ones cost one line."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

import bench.model_registry
import methods.spec
import tasks
from bench import plugins
from bench.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SRC = ROOT / "examples" / "cdbench-example-plugin" / "src"


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> dict[str, Registry]:
    """Empty registries in place of the real ones, so what a test loads stays in the test."""
    registries = {"method": Registry("method"), "task": Registry("task"), "model": Registry("model")}
    monkeypatch.setattr(methods.spec, "METHODS", registries["method"])
    monkeypatch.setattr(tasks, "TASKS", registries["task"])
    monkeypatch.setattr(bench.model_registry, "MODELS", registries["model"])
    monkeypatch.setattr(plugins, "REQUESTED", [])
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    plugins.reset()
    yield registries
    plugins.reset()


def _entry_points(monkeypatch: pytest.MonkeyPatch, group_entries: dict[str, list[tuple[str, str]]]) -> None:
    def entry_points(group: str) -> list[metadata.EntryPoint]:
        return [metadata.EntryPoint(name, value, group) for name, value in group_entries.get(group, [])]

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)


def test_entry_points_register_plain_objects_and_report_broken_ones(
    fresh: dict[str, Registry], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _entry_points(
        monkeypatch,
        {
            "cdbench.methods": [
                ("by-index", "tests.plugin_samples:edge_index_scores"),
                ("two-args", "tests.plugin_samples:needs_two_arguments"),
                ("not-callable", "tests.plugin_samples:NOT_CALLABLE"),
                ("missing", "tests.no_such_module:thing"),
            ],
            "cdbench.tasks": [("renamed-task", "tests.plugin_samples:SAMPLE_TASK")],
            "cdbench.models": [("tiny", "tests.plugin_samples:tiny_loader")],
        },
    )
    plugins.load_plugins()
    assert fresh["method"].names() == ["by-index"]
    spec = fresh["method"].get("by-index")
    assert spec.description == "Scores each edge by its position in the graph (a test plugin)."
    assert fresh["task"].get("renamed-task").name == "renamed-task"  # registered under the entry point's name
    assert fresh["model"].get("tiny").description == "A test plugin model."
    assert plugins.ORIGINS[("method", "by-index")] == "unknown distribution"  # no dist behind a bare EntryPoint
    problems = {p.plugin.split()[0]: p.cause for p in plugins.PROBLEMS}
    assert set(problems) == {"two-args", "not-callable", "missing"}
    assert "does not take 1 argument" in problems["two-args"]
    assert "is not callable" in problems["not-callable"]
    assert problems["missing"].startswith("ModuleNotFoundError")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: plugin")]
    assert len(warnings) == 3 and all("\n" not in w for w in warnings)
    plugins.load_plugins()  # once only: nothing is registered twice
    assert len(plugins.PROBLEMS) == 3


def test_loose_files_and_modules_register_through_the_api(
    fresh: dict[str, Registry], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    good = tmp_path / "my_method.py"
    good.write_text(
        "import torch\n"
        "from bench.api import EdgeScores, register_method\n"
        "@register_method('ones', description='one per edge', citation='test')\n"
        "def ones(run):\n"
        "    return EdgeScores(torch.ones(run.graph.n_edges))\n"
    )
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('this plugin is broken\\nsecond line')\n")
    duplicate = tmp_path / "duplicate.py"
    duplicate.write_text(
        "from bench.api import register_method\nregister_method('ones', description='', citation='')(len)\n"
    )
    monkeypatch.setattr(plugins, "REQUESTED", [str(good), str(broken)])
    monkeypatch.setenv(plugins.ENV_VAR, f"{duplicate}, {tmp_path / 'absent.py'}")
    plugins.load_plugins()
    assert fresh["method"].names() == ["ones"]
    assert plugins.ORIGINS[("method", "ones")] == f"file {good}"
    assert [str(p) for p in plugins.PROBLEMS] == [
        f"plugin {broken} skipped: RuntimeError: this plugin is broken",
        f"plugin {duplicate} skipped: ValueError: method 'ones' is registered twice",
        f"plugin {tmp_path / 'absent.py'} skipped: FileNotFoundError: no such file '{tmp_path / 'absent.py'}'",
    ]


def _fake_distribution(site: Path) -> None:
    """An installed distribution as importlib.metadata sees it: a dist-info folder with entry points."""
    info = site / "cdbench_fake_plugin-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cdbench-fake-plugin\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        "[cdbench.methods]\nfake-by-index = fake_plugin_module:by_index\nfake-broken = fake_plugin_module:nothing\n"
    )
    (site / "fake_plugin_module.py").write_text(
        "import torch\nfrom bench.api import EdgeScores\n\n"
        "def by_index(run):\n    'Edge position as score (fake installed plugin).'\n"
        "    return EdgeScores(torch.arange(run.graph.n_edges, dtype=torch.float32))\n"
    )


def _bench(*args: str, pythonpath: list[Path], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(str(p) for p in [ROOT, *pythonpath])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}
    env.pop(plugins.ENV_VAR, None)
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.slow  # a subprocess or a measured run: tens of seconds
def test_list_shows_plugins_marked_and_survives_a_broken_one(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _fake_distribution(site)
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("import no_such_package_anywhere\n")
    proc = _bench(
        "list", "--plugin", "cdbench_example_plugin.register", f"--plugin={broken}", pythonpath=[EXAMPLE_SRC, site]
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert "eap" in lines and "tracr-reverse" in lines  # the built-ins are all still there
    assert lines["fake-by-index"].endswith(
        "Edge position as score (fake installed plugin). [plugin: cdbench-fake-plugin 0.3]"
    )
    for name in ("example-delta-norm", "example-first-token", "example-tiny"):
        assert lines[name].endswith("[plugin: module cdbench_example_plugin.register]"), lines[name]
    warnings = [line for line in proc.stderr.splitlines() if "warning: plugin" in line]
    assert len(warnings) == 2, proc.stderr  # the broken file, and the entry point naming nothing
    assert f"plugin {broken} skipped: ModuleNotFoundError: No module named 'no_such_package_anywhere'" in warnings[1]
    assert "fake-broken (cdbench-fake-plugin 0.3, cdbench.methods) skipped: AttributeError" in warnings[0]
    assert "plugins that did not load:" in proc.stdout


def test_example_plugin_runs_and_scores_what_plain_transformer_lens_gives(tmp_path: Path) -> None:
    results = tmp_path / "results"
    args = ["run", "--method", "example-delta-norm", "--task", "example-first-token", "--results-dir", str(results)]
    proc = _bench(*args, "--plugin", "cdbench_example_plugin.register", pythonpath=[EXAMPLE_SRC])
    assert proc.returncode == 0, proc.stderr
    (path,) = results.rglob("*.json")
    scores = json.loads(path.read_text())["edge_scores"]

    # The `input` node's output is token + position embedding: its clean - corrupted difference,
    # computed here with TransformerLens alone, is what every edge out of `input` must score.
    sys.path.insert(0, str(EXAMPLE_SRC))
    try:
        from cdbench_example_plugin.model import tiny_model
        from cdbench_example_plugin.task import build
    finally:
        sys.path.remove(str(EXAMPLE_SRC))
    model = tiny_model(seed=0)
    data = build(model, 16, seed=0)
    with torch.no_grad():
        embed = lambda tokens: model.embed(tokens) + model.pos_embed(tokens)  # noqa: E731
        expected = (embed(data.clean) - embed(data.corrupted)).norm().item()
    from_input = [value for edge, value in scores.items() if edge.startswith("input->")]
    assert len(from_input) > 1
    assert from_input == pytest.approx([expected] * len(from_input), rel=1e-5)
    assert expected > 0


def readme_plugin_files(dest: Path) -> list[Path]:
    """The README's "Add your own" examples (```python blocks starting `# my_<name>.py`), written to `dest`."""
    text = (ROOT / "README.md").read_text()
    files = []
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        first = block.splitlines()[0]
        match = re.fullmatch(r"# (my_\w+\.py)", first)
        if match:
            path = dest / match.group(1)
            path.write_text(block)
            files.append(path)
    return files


def test_readme_examples_run_as_written(tmp_path: Path) -> None:
    files = readme_plugin_files(tmp_path)
    assert sorted(p.name for p in files) == ["my_method.py", "my_model.py", "my_task.py"]
    plugin_args = [arg for path in files for arg in ("--plugin", str(path))]
    results = tmp_path / "results"
    proc = _bench(
        "run", *plugin_args, "--method", "delta-norm", "--task", "my-first-token", "--option", "power=2",
        "--results-dir", str(results), pythonpath=[],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning: plugin" not in proc.stderr
    (path,) = results.rglob("*.json")
    result = json.loads(path.read_text())
    assert result["options"] == {"power": 2} and result["key"]["model"] == "my-tiny"
    values = list(result["edge_scores"].values())
    assert len(values) == 110 and all(math.isfinite(v) and v >= 0 for v in values) and max(values) > 0


@pytest.mark.slow  # a subprocess or a measured run: tens of seconds
def test_a_plugin_method_breaking_the_contract_is_one_line(tmp_path: Path) -> None:
    plugin = tmp_path / "short_method.py"
    plugin.write_text(
        "import torch\nfrom bench.api import EdgeScores, register_method\n"
        "@register_method('short', description='one score too few', citation='test')\n"
        "def short(run):\n    return EdgeScores(torch.zeros(run.graph.n_edges - 1))\n"
    )
    results = tmp_path / "results"
    proc = _bench(
        "run", "--plugin", str(plugin), "--method", "short", "--task", "tracr-reverse", "--results-dir", str(results),
        pythonpath=[],
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: method 'short' returned ({tracr_reverse_edges() - 1},) scores for {tracr_reverse_edges()} edges"
    ]
    assert not results.exists() or not list(results.rglob("*.json"))


def tracr_reverse_edges() -> int:
    from bench.graph import Graph
    from bench.zoo import load_model

    return Graph.from_model(load_model("tracr-reverse")).n_edges
