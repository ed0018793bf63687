"""Layering: the engine depends on the data contract, never on the task package; the command
line imports what a command needs; no import circle among CDBench's own modules."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "methods", "tasks")
HEAVY = ("torch", "transformer_lens", "jax", "tracr", "tasks", "methods", "datasets")


def modules_after(code: str) -> set[str]:
    """Every module a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def imported_after(code: str) -> set[str]:
    """The top-level packages among HEAVY that a fresh interpreter has imported after `code`."""
    return {name.split(".")[0] for name in modules_after(code)} & set(HEAVY)


# bench.runtime and bench.scoring are held to the same rule statically (below), without paying
# TransformerLens's import in a subprocess.
@pytest.mark.parametrize("module", ["bench.discovery", "bench.graph"])
def test_engine_imports_neither_tasks_nor_jax(module: str) -> None:
    found = imported_after(f"import {module}")
    assert not found & {"tasks", "methods", "jax", "tracr"}, f"importing {module} imported {sorted(found)}"


@pytest.mark.parametrize("module", ["bench.discovery", "bench.task_data"])
def test_contract_imports_torch_and_nothing_heavier(module: str) -> None:
    found = imported_after(f"import {module}")
    assert found == {"torch"}, f"importing {module} imported {sorted(found)}"


def test_public_api_costs_no_built_in_task_or_method() -> None:
    """A plugin author's `from bench.api import ...` costs torch's import and the registries
    (`tasks`, `methods.spec`, `tasks.base`), not TransformerLens, jax or any built-in adapter."""
    import methods
    import tasks

    loaded = modules_after("import bench.api")
    assert {name.split(".")[0] for name in loaded} & set(HEAVY) == {"torch", "tasks", "methods"}
    built_in = {f"tasks.{m}" for m in tasks.BUILTIN_MODULES} | {f"methods.{m}" for m in methods.BUILTIN_MODULES}
    assert not loaded & built_in, sorted(loaded & built_in)


def test_help_and_parser_import_no_torch() -> None:
    found = imported_after("from bench.cli import build_parser\nbuild_parser().format_help()")
    assert not found, f"building the command line imported {sorted(found)}"


def test_help_answers_without_heavy_imports() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONVERBOSE": ""}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bench", "--help"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "run" in proc.stdout and "list" in proc.stdout
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def module_level_imports(path: Path) -> list[str]:
    """Modules a file imports when it is imported (function bodies and TYPE_CHECKING blocks
    run later or never, so they do not count)."""
    names: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.append(node.module)
                names.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)

    visit(ast.parse(path.read_text()).body)
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules importing it runs, including the `__init__` of every
    package on the way (`import tasks.base` runs `tasks/__init__.py`) unless the importer is
    inside that package already."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in module_level_imports(path):
            parts = imported.split(".")
            for n in range(1, len(parts) + 1):
                prefix = ".".join(parts[:n])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    targets.add(prefix)
        graph[name] = targets
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of more than one module that import each other, directly or not."""
    reach = {module: reachable(graph, module) for module in graph}
    groups = {frozenset({m} | {n for n in reach[m] if m in reach[n]}) for m in graph}
    return sorted(sorted(group) for group in groups if len(group) > 1)


def test_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_parent_package_counts_as_imported(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("from tasks.base import TaskData\nif TYPE_CHECKING:\n    import jax\n")
    assert module_level_imports(tmp_path / "m.py") == ["tasks.base", "tasks.base.TaskData"]


@pytest.mark.parametrize("engine", ["bench.graph", "bench.runtime", "bench.discovery", "bench.scoring", "bench.zoo"])
def test_engine_and_zoo_never_reach_tasks_or_methods(engine: str) -> None:
    below = reachable(import_graph(), engine)
    assert not {m for m in below if m.split(".")[0] in ("tasks", "methods")}, sorted(below)


LIST_HEAVY = ("torch", "transformer_lens", "transformers", "jax", "tracr", "tasks", "methods", "datasets")


@pytest.mark.parametrize("what", ["all", "methods", "tasks", "models"])
def test_list_imports_no_torch_jax_or_registry_without_plugins(what: str) -> None:
    """`bench list` answers from the catalogue and the zoo's cheap status checks (issue #15)."""
    probe = (
        "import contextlib, io, json, sys\n"
        "from bench.cli import main\n"
        "from bench.plugins import plugins_configured\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    code = main(['list', {what!r}])\n"
        f"heavy = sorted({{m for m in sys.modules if m.split('.')[0] in {LIST_HEAVY!r}}})\n"
        "print(json.dumps([code, plugins_configured(), heavy, len(out.getvalue().splitlines())]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("CDBENCH_PLUGINS", None)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    code, configured, heavy, n_lines = json.loads(proc.stdout.splitlines()[-1])
    if configured:
        pytest.skip("a CDBench plugin is installed in this environment; `bench list` then loads the registries")
    assert code == 0 and n_lines > 5
    assert heavy == [], f"`bench list {what}` imported {sorted({m.split('.')[0] for m in heavy})}"
