"""Running one request (method, task, model, ablation, seed, options, data parameters) and
storing what it produced, with the identities of its data and weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import provenance
from bench.chunking import score_in_chunks
from bench.discovery import DiscoveryRun, EdgeScores, prepare_run
from bench.faithful_size import faithful_sizes
from bench.ground_truth import GROUND_TRUTH_DIR, has_ground_truth, load_ground_truth
from bench.mib_scoring import mib_scores
from bench.profiling import measure
from bench.registry import UnknownNameError
from bench.results import DEFAULT_RESULTS_DIR, RunKey, RunResult, canonical, options_hash, write_result
from bench.runtime import ABLATION_KINDS, MaskedRuntime
from bench.scoring import HIGHER_IS_BETTER, faithfulness, ground_truth_recovery
from bench.task_data import TaskData
from bench.zoo import is_model_name, load_model, model_names, split_dtype, with_dtype
from bench.zoo.local import is_local_name, local_model_name, model_directory
from methods import METHODS
from methods.spec import MethodSpec
from tasks.base import Task, TaskInputError
from tasks.user_tasks import find_task


class IncompatibleChoice(ValueError):
    """A valid name used where it does not fit (e.g. a model the task cannot run on)."""


class MethodContractError(RuntimeError):
    """A method (often a plugin) returned something other than one score per edge."""


def _require_positive_int(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise IncompatibleChoice(f"{what} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class RunRequest:
    """What a user asks for; None means the default (the task's model and number of examples,
    the method's options, examples drawn with the run seed)."""

    method: str
    task: str
    model: str | None = None
    ablation: str = "corrupted"
    seed: int = 0
    n_examples: int | None = None
    options: dict[str, Any] | None = None
    data_seed: int | None = None
    task_options: dict[str, Any] | None = None
    dtype: str | None = None
    device: str = "cpu"
    examples_per_pass: int | None = None  # score the examples this many at a time (`bench.chunking`)

    def find_task(self) -> Task:
        """The task named (or the task file given), with its `task_options`."""
        return find_task(self.task, self.task_options)

    def resolve(self) -> RunKey:
        """Check every name and option before any work starts; fill in the defaults."""
        options = self.resolved_options()
        task = self.find_task()
        model = self.model or task.model
        if model is None:
            raise IncompatibleChoice(
                f"task {task.name!r} has no model of its own; give one with --model ({task.needs.describe()})"
                if task.needs is not None
                else f"task {task.name!r} has no model of its own; give one with --model"
            )
        if model not in model_names() and is_local_name(model):  # a zoo name wins over a directory
            base, dtype = local_model_name(model), self.dtype or "float32"
        else:
            base, dtype = split_dtype(with_dtype(model, self.dtype))
            if base not in model_names() and is_local_name(base):
                base = local_model_name(base)
            elif not is_model_name(base):
                raise UnknownNameError("model", base, [*model_names(), "PATH (a Hugging Face checkpoint directory)"])
        if not task.runs_on(base):
            raise IncompatibleChoice(
                f"task {task.name!r} cannot run on model {base!r}; valid choices: {', '.join(task.models)}"
            )
        model = with_dtype(base, dtype)  # a bf16 model is keyed apart; float32 keeps the plain name
        if self.ablation not in task.ablations:
            if self.ablation not in ABLATION_KINDS:
                raise UnknownNameError("ablation", self.ablation, list(ABLATION_KINDS))
            raise IncompatibleChoice(
                f"task {self.task!r} does not support ablation {self.ablation!r}; "
                f"valid choices: {', '.join(task.ablations)}"
            )
        n_examples = task.default_examples if self.n_examples is None else self.n_examples
        _require_positive_int(n_examples, "the number of examples")
        data_seed = self.seed if self.data_seed is None else self.data_seed
        self._check_examples_per_pass()
        return RunKey(
            task.name, model, self.method, self.ablation, self.seed, n_examples, data_seed, options_hash(options)
        )

    def _check_examples_per_pass(self) -> None:
        if self.examples_per_pass is None:
            return
        _require_positive_int(self.examples_per_pass, "--examples-per-pass")
        if not METHODS.get(self.method).additive_over_examples:
            chunkable = ", ".join(n for n in METHODS.names() if METHODS.get(n).additive_over_examples)
            raise IncompatibleChoice(
                f"method {self.method!r} cannot score its examples in chunks (its scores are not a mean over "
                f"examples); --examples-per-pass works with: {chunkable}"
            )

    def resolved_options(self) -> dict[str, Any]:
        """The method's defaults overlaid with the request's options, checked."""
        try:
            return METHODS.get(self.method).resolve_options(self.options)
        except ValueError as err:
            raise IncompatibleChoice(str(err)) from None

    def variant(self) -> dict[str, Any]:
        """What this request sets away from the defaults (see `RunResult.variant`); {} for a
        default run, so the default suite's labels stay short."""
        defaults = METHODS.get(self.method).defaults
        options = self.resolved_options()
        key = self.resolve()
        changed = {
            name: options[name] for name in sorted(options) if canonical(options[name]) != canonical(defaults[name])
        }
        found: dict[str, Any] = {"options": changed} if changed else {}
        if key.n_examples != self.find_task().default_examples:
            found["n_examples"] = key.n_examples
        if key.data_seed != key.seed:
            found["data_seed"] = key.data_seed
        return found


def execute(
    request: RunRequest, root: Path = DEFAULT_RESULTS_DIR, *, load: Callable[..., Any] | None = None
) -> tuple[RunResult, Path]:
    """Run the method and write its result; raises before any work on a bad request. `load`
    gives the model, `(name, seed=, device=)` (default `load_model`; a Ray worker lends its
    kept one, `bench.model_cache`)."""
    key = request.resolve()
    task = request.find_task()
    method = METHODS.get(key.method)
    model = (load or load_model)(key.model, seed=key.seed, device=request.device)
    if task.needs is not None and (problem := task.needs.problem(model)) is not None:
        raise TaskInputError(f"task {task.name!r} cannot run here: {problem}; it needs {task.needs.describe()}")
    runtime = MaskedRuntime(model)
    data = task.build(model, key.n_examples, key.data_seed)
    options = method.resolve_options(request.options)
    parameter = next(model.parameters())
    run = prepare_run(runtime, data, key.ablation, key.seed, options)
    per_pass = request.examples_per_pass or auto_examples_per_pass(method, key, data, options, parameter.device)
    if per_pass is None or per_pass >= data.n_examples:
        per_pass = None
        measured = measure(lambda: method.func(run))
    else:
        size = per_pass
        measured = measure(lambda: score_in_chunks(method.func, runtime, data, key.ablation, key.seed, options, size))
    scores = measured.value
    if scores.values.shape != (runtime.graph.n_edges,):
        raise MethodContractError(
            f"method {key.method!r} returned {tuple(scores.values.shape)} scores for {runtime.graph.n_edges} edges"
        )
    evaluation = evaluate(run, scores, key, task.ground_truth_dir() if task.ground_truth_dir is not None else None)
    result = RunResult(
        key=key,
        edge_scores=dict(zip(runtime.graph.edge_names, scores.values.tolist(), strict=True)),
        n_examples=data.n_examples,
        metric=data.metric_name,
        options=options,
        variant=request.variant(),
        wall_time_s=measured.seconds,
        peak_memory_mb=measured.peak_extra_mb,
        versions=provenance.package_versions(),
        git_commit=provenance.git_commit(),
        cdbench_version=provenance.cdbench_version(),
        machine=provenance.machine(),
        data_fingerprint=provenance.data_fingerprint(data),
        model_identity=model_identity(key.model, model),
        dtype=str(parameter.dtype).removeprefix("torch."),
        device=str(parameter.device),
        higher_is_better=dict(HIGHER_IS_BETTER),
        evaluation=evaluation,
        node_scores=scores.node_scores,
        nodes=list(runtime.graph.nodes),
        examples_per_pass=per_pass,
    )
    return result, write_result(result, root)


def auto_examples_per_pass(
    method: MethodSpec, key: RunKey, data: TaskData, options: dict[str, Any], device: torch.device
) -> int | None:
    """On a CUDA device, the examples per pass that fit its free memory by the estimate
    (`bench.memory_estimate`), for a hub model and a method that can be chunked; None where the
    whole draw fits, or the estimate does not apply (CPU, models built here)."""
    if device.type != "cuda" or not method.additive_over_examples:
        return None
    from bench.chunking import examples_per_pass_for
    from bench.zoo import hub_architecture

    base, dtype = split_dtype(key.model)
    arch = hub_architecture(base)
    if arch is None:
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return examples_per_pass_for(method.name, arch.config, data.n_examples, data.clean.shape[1], dtype, free, options)


def model_identity(name: str, model: Any) -> dict[str, str]:
    """The model's name and weights hash, and for a local checkpoint the directory it came from."""
    identity = {"name": name, "weights_sha256": provenance.weights_sha256(model)}
    directory = model_directory(split_dtype(name)[0])
    if directory is not None:
        identity["directory"] = directory
    return identity


def evaluate(run: DiscoveryRun, scores: EdgeScores, key: RunKey, truth_root: Path | None = None) -> dict[str, Any]:
    """Score the ranking the same way for every method: faithfulness, and recovery of the
    ground truth when the task has one for this very model (a circuit of GPT-2 small says
    nothing about a random-weight twin or about GPT-2 XL). `truth_root` is where the task
    keeps its ground truth (default: the package's `ground_truth/`)."""
    faith = faithfulness(run, scores, seed=key.seed)
    evaluation: dict[str, Any] = {"faithfulness": faith.to_json()}
    evaluation["mib"] = mib_scores(run, scores).to_json()  # MIB's CPR/CMD, beside CDBench's own areas
    evaluation["faithful_size"] = [size.to_json() for size in faithful_sizes(run, scores, faith)]
    root = GROUND_TRUTH_DIR if truth_root is None else truth_root
    if has_ground_truth(key.task, key.model, root):
        truth = load_ground_truth(key.task, run.graph, root)
        evaluation["ground_truth"] = ground_truth_recovery(run.graph, scores, truth, key.ablation)
    return evaluation
