"""The built-in Tracr programs: one RASP program file per program in this directory.

Each file has the format of a user's `--task PATH.py` (`bench.zoo.rasp_files`) and is read by
the same loader; the file `<stem>.py` is the zoo model and the task `tracr-<stem>`. The set is
whatever files are here, so adding a built-in program is adding a file (and deriving its ground
truth with `python -m bench ground-truth derive tracr-<stem>`). Listing them costs no import of
tracr, torch or TransformerLens, so `bench list` stays fast.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.zoo.tracr_models import RaspProgram

PROGRAM_DIR = Path(__file__).resolve().parent
MODEL_PREFIX = "tracr-"


def program_names() -> tuple[str, ...]:
    """The stems of the program files here, sorted (files starting with `_` are not programs)."""
    return tuple(sorted(p.stem for p in PROGRAM_DIR.glob("*.py") if not p.name.startswith("_")))


def program_path(name: str) -> Path:
    """The file of built-in program `name`."""
    return PROGRAM_DIR / f"{name}.py"


def model_names() -> tuple[str, ...]:
    """The zoo names of the built-in Tracr models (and tasks): `tracr-<stem>`."""
    return tuple(MODEL_PREFIX + name for name in program_names())


def program_of(model_name: str) -> str | None:
    """The program behind a built-in Tracr model name, or None when it names none."""
    name = model_name.removeprefix(MODEL_PREFIX)
    return name if model_name.startswith(MODEL_PREFIX) and name in program_names() else None


@functools.cache
def load_program(name: str) -> RaspProgram:
    """Built-in program `name`, read once per process by the loader of a user's file (one
    `RaspProgram` per name, so its compilation is cached once too).

    Raises:
        ValueError: no file of that name here (the message lists the valid names).
    """
    from bench.zoo.rasp_files import load_rasp_file  # imports tracr: only when a program is asked for

    if name not in program_names():
        raise ValueError(f"unknown tracr program {name!r}; valid choices: {', '.join(program_names())}")
    return load_rasp_file(program_path(name), default_source=f"CDBench built-in RASP file {name}.py")
