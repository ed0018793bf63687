"""A task from a researcher's own RASP program file: `--task PATH.py`.

The file defines `make_program()` (returning the program's output SOp), `VOCAB` (the input
tokens) and `MAX_SEQ_LEN`; optionally `BOS` (tracr's BOS token, default "BOS", not in VOCAB)
and `N_EXAMPLES` (the task's default number of examples). It goes through exactly the code of
the built-in Tracr tasks: compiled with tracr and converted to TransformerLens
(`bench.zoo.tracr_models`), inputs of every length 1..MAX_SEQ_LEN with a same-length
corruption and the negative L2 to the full model's output as metric (`tasks._tracr`), the
circuit derived from the compiled weights (`bench.zoo.tracr_circuits`) and its detectable part
measured per ablation (`bench.detectability`).

Names follow the file's content: the task is `<stem>.py@<10 hex digits of its sha256>`, its
model `rasp:<stem>@<the same digits>`. The derived ground truth is cached as
`$CDBENCH_CACHE/rasp/<task>.json` (default `~/.cache/cdbench`), so it is derived once per
version of the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import re
import sys
from functools import partial
from pathlib import Path

from bench.zoo.tracr_models import COMPILER_BOS, RaspProgram, TracrModel, build_tracr_model
from tasks._tracr import build_tracr_data
from tasks.base import Task, TaskInputError

REQUIRED = ("make_program", "VOCAB", "MAX_SEQ_LEN")
DEFINES = "a RASP file defines make_program(), VOCAB and MAX_SEQ_LEN (optionally BOS and N_EXAMPLES)"
WHOLE_DOMAIN_UP_TO = 512
SAMPLE_SIZE = 256


def _fail(path: Path, why: str) -> TaskInputError:
    return TaskInputError(f"RASP file {path}: {why}")


def load_rasp_file(path: Path) -> RaspProgram:
    """Import the file and check what it defines (one-line `TaskInputError` when it is wrong)."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    module_name = f"cdbench_rasp_{digest[:16]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise _fail(path, "cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise _fail(
            path, f"importing it raised {type(err).__name__}: {next(iter(str(err).splitlines()), '')}"
        ) from None
    missing = [name for name in REQUIRED if not hasattr(module, name)]
    if missing:
        raise _fail(path, f"defines no {missing[0]}; {DEFINES}")
    if not callable(module.make_program):
        raise _fail(path, f"make_program must be a function, got {type(module.make_program).__name__}; {DEFINES}")
    try:
        vocab = tuple(module.VOCAB)
    except TypeError:
        raise _fail(path, f"VOCAB must be a collection of tokens, got {module.VOCAB!r}") from None
    if len(vocab) < 2 or len(set(vocab)) != len(vocab):
        raise _fail(path, f"VOCAB must hold at least two distinct tokens (a corruption must differ), got {vocab!r}")
    max_len = module.MAX_SEQ_LEN
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise _fail(path, f"MAX_SEQ_LEN must be a positive integer, got {max_len!r}")
    bos = getattr(module, "BOS", COMPILER_BOS)
    if not isinstance(bos, str) or bos in vocab:
        raise _fail(path, f"BOS must be a string that is not in VOCAB, got {bos!r}")
    n_examples = getattr(module, "N_EXAMPLES", None)
    if n_examples is not None and (isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1):
        raise _fail(path, f"N_EXAMPLES must be a positive integer, got {n_examples!r}")
    if isinstance(module.VOCAB, set | frozenset):  # a set in sorted order (when it sorts); a sequence as given
        with contextlib.suppress(TypeError):
            vocab = tuple(sorted(vocab))
    return RaspProgram(
        name=_stem(path),
        make_program=module.make_program,
        vocab=vocab,
        max_seq_len=max_len,
        compiler_bos=bos,
        n_examples=n_examples,
        source=f"user RASP file {path.resolve()} (sha256 {digest})",
    )


def _stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem) or "program"


def default_examples(program: RaspProgram) -> int:
    """N_EXAMPLES when the file sets it; else every input when the domain (all lengths) has at
    most 512, else a sample of 256 with every length in proportion."""
    if program.n_examples is not None:
        return program.n_examples
    domain = sum(len(program.vocab) ** n for n in range(1, program.max_seq_len + 1))
    return domain if domain <= WHOLE_DOMAIN_UP_TO else SAMPLE_SIZE


def compile_checked(path: Path, program: RaspProgram) -> TracrModel:
    """Compile now, so a program tracr cannot compile is one line before any run starts."""
    try:
        return build_tracr_model(program)
    except Exception as err:
        raise _fail(
            path, f"tracr cannot compile it: {type(err).__name__}: {next(iter(str(err).splitlines()), '')}"
        ) from None


def rasp_file_task(path: Path) -> Task:
    """The task of a RASP program file: compiled, its model registered by name, its ground
    truth derived (and cached) the first time a run scores against it."""
    from bench.zoo.local import register_factory

    path = Path(path)
    program = load_rasp_file(path)
    tracr = compile_checked(path, program)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    model_name = f"rasp:{program.name}@{digest}"
    register_factory(model_name, lambda: tracr.model)
    task = Task(
        name=f"{program.name}.py@{digest}",
        model=model_name,
        description=f"RASP program {path.name}: vocab {list(program.vocab)}, lengths 1-{program.max_seq_len}",
        citation=program.source,
        build=partial(build_tracr_data, program),
        default_examples=default_examples(program),
        suite_ablations=("zero", "corrupted"),
        metric="neg. squared L2 to the full model's output",
        ground_truth_dir=lambda: derived_ground_truth_dir(task, tracr),
    )
    return task


def derived_ground_truth_dir(task: Task, tracr: TracrModel) -> Path:
    """The directory holding `<task>.json`, derived from the compiled weights on first use."""
    from bench.ground_truth import ground_truth_path, write_ground_truth
    from bench.zoo.tracr_circuits import ground_truth_payload
    from bench.zoo.trained.cache import cache_root

    root = cache_root().parent / "rasp"  # beside models/ in $CDBENCH_CACHE
    if not ground_truth_path(task.name, root).exists():
        root.mkdir(parents=True, exist_ok=True)
        write_ground_truth(ground_truth_payload(task, tracr), root)
    return root
