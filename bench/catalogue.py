"""What `bench list` shows of the built-in methods and tasks, kept as package data (catalogue.json).

Listing a method or task from its registry imports its module, and the adapters and tasks import
torch, TransformerLens, jax and tracr: seconds of imports to print a few lines. The catalogue holds
those lines' static facts instead, generated from the real registries, so `bench list` imports
none of them. Whatever can change on a machine (model availability, which ground-truth files
exist) is not in it: `bench list` works that out each time. tests/test_catalogue.py regenerates
it and fails when the committed copy is stale.

After adding or changing a built-in method or task:

    python -m bench.catalogue --write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.package_data import checkout_root

if TYPE_CHECKING:
    from methods.spec import MethodSpec
    from tasks.base import Task

CATALOGUE_PATH = Path(__file__).resolve().parent / "catalogue.json"
KINDS = ("method", "task")
GENERATED_BY = "python -m bench.catalogue --write (from the registries; do not edit by hand)"

Entry = dict[str, Any]
"""One listed method (name, description) or task (name, model, default_examples, metric,
description)."""


def method_entry(spec: MethodSpec) -> Entry:
    """A registered method as `bench list` shows it."""
    return {"name": spec.name, "description": spec.description}


def task_entry(task: Task) -> Entry:
    """A registered task as `bench list` shows it (whether it has ground truth is looked up
    when listing: the files can change without the code)."""
    return {
        "name": task.name,
        "model": task.model,
        "default_examples": task.default_examples,
        "metric": task.metric,
        "description": task.description,
    }


def live_entries(kind: str) -> list[Entry]:
    """Every registered method or task, in registry order (built-ins, then plugins), from the
    registries themselves: this imports every adapter or task module."""
    if kind == "method":
        from methods import METHODS

        return [method_entry(METHODS.get(name)) for name in METHODS]
    from tasks import TASKS

    return [task_entry(TASKS.get(name)) for name in TASKS]


def build() -> dict[str, Any]:
    """The catalogue of the built-ins as the code defines them now (plugins left out)."""
    from bench.plugins import ORIGINS

    built_in = {kind: [e for e in live_entries(kind) if (kind, e["name"]) not in ORIGINS] for kind in KINDS}
    return {"generated_by": GENERATED_BY, **built_in}


def render(catalogue: dict[str, Any]) -> str:
    """The file's text: one stable layout, so a stale copy shows as a readable diff."""
    return json.dumps(catalogue, indent=1, ensure_ascii=False) + "\n"


def read(path: Path = CATALOGUE_PATH) -> dict[str, Any]:
    """The committed catalogue (no adapter or task module imported)."""
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.catalogue --write` regenerates the file; `--check` exits 1 when it is stale."""
    parser = argparse.ArgumentParser(prog="python -m bench.catalogue", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help=f"regenerate {CATALOGUE_PATH.name} from the registries")
    action.add_argument("--check", action="store_true", help="exit 1 when the committed file differs from the code")
    args = parser.parse_args(argv)
    if args.write and checkout_root() is None:
        parser.error("this is an installed package, not a checkout: regenerate the catalogue in a checkout")
    text = render(build())
    if args.write:
        CATALOGUE_PATH.write_text(text)
        print(f"wrote {CATALOGUE_PATH}")
        return 0
    if CATALOGUE_PATH.exists() and CATALOGUE_PATH.read_text() == text:
        return 0
    print(f"{CATALOGUE_PATH} is stale; regenerate it with `python -m bench.catalogue --write`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
