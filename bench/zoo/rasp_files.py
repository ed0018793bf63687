"""Reading a RASP program file into a `RaspProgram`: a user's `--task PATH.py` and every built-in
Tracr program (`bench.zoo.tracr_programs`) go through this one loader.

The file defines `make_program()` (returning the program's output SOp), `VOCAB` (the input
tokens) and `MAX_SEQ_LEN`; optionally `BOS` (tracr's BOS token, default "BOS", not in VOCAB),
`N_EXAMPLES` (the task's default number of examples), and the strings `DESCRIPTION` (one line
for `bench list`), `CITATION` (the papers it comes from) and `SOURCE` (where the program comes
from; default: the file and its sha256).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import re
import sys
from pathlib import Path

from bench.task_data import TaskInputError
from bench.zoo.tracr_models import COMPILER_BOS, RaspProgram

REQUIRED = ("make_program", "VOCAB", "MAX_SEQ_LEN")
OPTIONAL_TEXT = ("DESCRIPTION", "CITATION", "SOURCE")
DEFINES = (
    "a RASP file defines make_program(), VOCAB and MAX_SEQ_LEN (optionally BOS, N_EXAMPLES, DESCRIPTION, CITATION"
    " and SOURCE)"
)


def fail(path: Path, why: str) -> TaskInputError:
    """The one-line error about RASP file `path`."""
    return TaskInputError(f"RASP file {path}: {why}")


def load_rasp_file(path: Path, default_source: str | None = None) -> RaspProgram:
    """Import the file and check what it defines (one-line `TaskInputError` when it is wrong).

    Args:
        default_source: the program's `source` when the file sets no `SOURCE` (default: "user
            RASP file <path> (sha256 <digest>)").
    """
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    module = _import(path, f"cdbench_rasp_{digest[:16]}")
    missing = [name for name in REQUIRED if not hasattr(module, name)]
    if missing:
        raise fail(path, f"defines no {missing[0]}; {DEFINES}")
    if not callable(module.make_program):
        raise fail(path, f"make_program must be a function, got {type(module.make_program).__name__}; {DEFINES}")
    try:
        vocab = tuple(module.VOCAB)
    except TypeError:
        raise fail(path, f"VOCAB must be a collection of tokens, got {module.VOCAB!r}") from None
    if len(vocab) < 2 or len(set(vocab)) != len(vocab):
        raise fail(path, f"VOCAB must hold at least two distinct tokens (a corruption must differ), got {vocab!r}")
    max_len = module.MAX_SEQ_LEN
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise fail(path, f"MAX_SEQ_LEN must be a positive integer, got {max_len!r}")
    bos = getattr(module, "BOS", COMPILER_BOS)
    if not isinstance(bos, str) or bos in vocab:
        raise fail(path, f"BOS must be a string that is not in VOCAB, got {bos!r}")
    n_examples = getattr(module, "N_EXAMPLES", None)
    if n_examples is not None and (isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1):
        raise fail(path, f"N_EXAMPLES must be a positive integer, got {n_examples!r}")
    for name in OPTIONAL_TEXT:
        if not isinstance(getattr(module, name, ""), str):
            raise fail(path, f"{name} must be a string, got {getattr(module, name)!r}")
    default_source = default_source or f"user RASP file {path.resolve()} (sha256 {digest})"
    if isinstance(module.VOCAB, set | frozenset):  # a set in sorted order (when it sorts); a sequence as given
        with contextlib.suppress(TypeError):
            vocab = tuple(sorted(vocab))
    return RaspProgram(
        name=file_stem(path),
        make_program=module.make_program,
        vocab=vocab,
        max_seq_len=max_len,
        compiler_bos=bos,
        n_examples=n_examples,
        source=getattr(module, "SOURCE", None) or default_source,
        description=getattr(module, "DESCRIPTION", None) or None,
        citation=getattr(module, "CITATION", None) or None,
    )


def _import(path: Path, module_name: str) -> object:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise fail(path, "cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise fail(path, f"importing it raised {type(err).__name__}: {next(iter(str(err).splitlines()), '')}") from None
    return module


def file_stem(path: Path) -> str:
    """The file's stem with anything but letters, digits, `.`, `_` and `-` replaced."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem) or "program"
