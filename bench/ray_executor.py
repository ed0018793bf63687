"""`run --all --executor ray`: every run of a sweep as a Ray task, on a cluster or a local Ray.

Each run asks for the resources of its model's preset (`RESOURCE_PRESETS`, by the model's
kind; a user may override them). A worker computes the result into a scratch directory of its
own and sends it back; the driver writes each result atomically as it arrives, so the cluster
needs no shared file system. A worker that dies is retried up to `max_retries` times by Ray;
after that, or when the method itself raises, the run is recorded as failed (`*.failed.json`)
and the sweep goes on. Runs whose result exists are skipped, so starting again resumes.

A CPU worker stays for further runs and keeps its last model (`WORKER_MODELS`, at most one),
and runs on one model are submitted together, so a worker loads a model once for its runs on it.
A GPU run's worker ends after the run (Ray's default: a process that has initialised CUDA keeps
its device, so a reused worker could land on another run's GPU); it loads its model afresh.
The driver's plugins are loaded on the workers (CDBENCH_PLUGINS, file paths made absolute: the
files must be at those paths on every node). While a run is submitted and not yet back, the
driver keeps a `.running` marker for it, so `bench status` shows it as queued or running.

Ray is an optional extra (`pip install -c constraints.txt -e ".[ray]"`); only this module
imports it, and only the ray executor imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.model_cache import ModelCache

if TYPE_CHECKING:
    from bench.results import RunKey
    from bench.runner import RunRequest

# What one run asks of the cluster, by the model's kind (`bench.zoo.model_status(...).kind`):
# models built here are small CPU models; hub models get a GPU and room for their data.
RESOURCE_PRESETS: dict[str, dict[str, float]] = {
    "tracr": {"num_cpus": 1},
    "trained": {"num_cpus": 1},
    "random": {"num_cpus": 1},
    "plugin": {"num_cpus": 1},
    "local": {"num_cpus": 2, "num_gpus": 1},
    "hub": {"num_cpus": 4, "num_gpus": 1},
}
RESOURCE_NAMES = ("num_cpus", "num_gpus", "memory")
DEFAULT_MAX_RETRIES = 2


@dataclass(frozen=True)
class SweepCounts:
    done: int
    skipped: int
    failed: int


def parse_resources(pairs: list[str]) -> dict[str, float]:
    """`--ray-resources num_cpus=2 --ray-resources num_gpus=0.5` as a dict, names checked."""
    found: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in RESOURCE_NAMES:
            raise ValueError(
                f"--ray-resources {pair!r}: expected NAME=NUMBER with NAME one of {', '.join(RESOURCE_NAMES)}"
            )
        try:
            found[name] = float(value)
        except ValueError:
            raise ValueError(f"--ray-resources {pair!r}: {value!r} is not a number") from None
    return found


def resources_for(kind: str, override: dict[str, float]) -> dict[str, float]:
    return {**RESOURCE_PRESETS.get(kind, {"num_cpus": 1}), **override}


WORKER_MODELS = ModelCache(size=1)
"""This worker process's last model, lent to each of its runs on that model (`bench.model_cache`)."""


def compute_result(request: RunRequest) -> dict[str, Any]:
    """Run one request on a worker and return its result as JSON (nothing written that lasts);
    the worker keeps the model for its next run on it."""
    import tempfile

    from bench.runner import execute

    try:
        with tempfile.TemporaryDirectory(prefix="cdbench-worker-") as scratch:
            result, _ = execute(request, Path(scratch), load=WORKER_MODELS.load)
    except BaseException:
        WORKER_MODELS.settle(None)
        raise
    WORKER_MODELS.settle(result.model_identity["weights_sha256"])
    return result.to_json()


def grouped_by_model(todo: list[tuple[RunRequest, RunKey]]) -> list[tuple[RunRequest, RunKey]]:
    """`todo` with the runs on one model (and seed, where the weights depend on it) next to each
    other, in the order each model first appears, so a worker's next run is likely on its model."""
    from bench.model_cache import cache_key

    groups: dict[tuple, list[tuple[RunRequest, RunKey]]] = {}
    for request, key in todo:
        groups.setdefault(cache_key(key.model, key.seed, request.device), []).append((request, key))
    return [item for group in groups.values() for item in group]


def _call(work: Callable[[RunRequest], dict[str, Any]], request: RunRequest) -> dict[str, Any]:
    """What a Ray task runs: `work` travels with it (any callable, e.g. a partial)."""
    return work(request)


def _call_on_gpu(work: Callable[[RunRequest], dict[str, Any]], request: RunRequest) -> dict[str, Any]:
    """`_call` for a run that asks for a GPU: a function of its own, as Ray's `max_calls` is
    per function."""
    return work(request)


def _start(address: str | None, num_cpus: int | None) -> None:
    import ray

    import bench

    # workers import this checkout's CDBench, whatever their working directory
    source_root = str(Path(bench.__file__).resolve().parent.parent)
    runtime_env = {"env_vars": {"PYTHONPATH": source_root, "OMP_NUM_THREADS": "1"}}
    if address is None:
        ray.init(num_cpus=num_cpus, runtime_env=runtime_env, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)


def run_on_ray(
    requests: list[RunRequest],
    root: Path,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    resources: dict[str, float] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    force: bool = False,
    work: Callable[[RunRequest], dict[str, Any]] = compute_result,
    say: Callable[[str], None] = print,
) -> SweepCounts:
    """Run `requests` as Ray tasks and write their results under `root` as they arrive.

    `address` None starts a local Ray with `num_cpus` (default: all here); `work` is what a
    worker runs for one request (tests swap in one that dies once).
    """
    import ray
    from tqdm.auto import tqdm

    from bench.plugins import ENV_VAR, plugins_for_workers
    from bench.results import RunResult, record_failure, result_exists, write_result
    from bench.sweep_status import marker_path, write_marker
    from bench.zoo import model_status

    todo, skipped = [], 0
    kinds: dict[str, str] = {}
    for request in requests:
        key = request.resolve()
        if not force and result_exists(key, root):
            skipped += 1
            continue
        if key.model not in kinds:
            status = model_status(key.model)
            kinds[key.model] = status.kind if status.available else ""
            if not status.available:
                say(f"skip every run on model {key.model}: {status.reason}")
        if not kinds[key.model]:
            skipped += 1
            continue
        todo.append((request, key))
    if not todo:
        return SweepCounts(0, skipped, 0)
    started_here = not ray.is_initialized()
    if started_here:
        _start(address, num_cpus)
    retries = {"max_retries": max_retries, "retry_exceptions": False}
    # a CPU worker stays for the next run and keeps its model (max_calls=0, unlimited); a GPU
    # run's worker ends after it (Ray's default for GPU tasks; see the module's docstring)
    on_cpu, on_gpu = ray.remote(max_calls=0, **retries)(_call), ray.remote(**retries)(_call_on_gpu)
    # the driver's plugins (`--plugin`, CDBENCH_PLUGINS), loaded by each worker before its run
    task_env = {"runtime_env": {"env_vars": {ENV_VAR: plugins}}} if (plugins := plugins_for_workers()) else {}
    pending: dict[Any, tuple[RunRequest, RunKey]] = {}
    done = failed = 0
    try:
        for request, key in grouped_by_model(todo):
            write_marker(key, root, executor="ray")  # `bench status`: queued or running
            options = {**resources_for(kinds[key.model], resources or {}), **task_env}
            remote = on_gpu if options.get("num_gpus") else on_cpu
            pending[remote.options(**options).remote(work, request)] = (request, key)
        with tqdm(total=len(pending), desc="runs (ray)", unit="run") as progress:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                request, key = pending[ready[0]]
                try:
                    result = RunResult.from_json(ray.get(ready[0]))
                except Exception as err:  # the method raised, or its worker died max_retries + 1 times
                    cause = getattr(err, "cause", None) or err
                    path = record_failure(key, cause, root)
                    tqdm.write(f"failed {key.path(Path())}: {type(cause).__name__}: {cause} (recorded in {path})")
                    failed += 1
                else:
                    write_result(result, root)
                    done += 1
                del pending[ready[0]]
                marker_path(key, root).unlink(missing_ok=True)
                progress.update(1)
                progress.set_postfix(queued_or_running=len(pending), failed=failed)
    finally:  # an interrupt or a crash here: nothing submitted is running any more
        for _, key in todo:
            marker_path(key, root).unlink(missing_ok=True)
        if started_here:
            ray.shutdown()
    return SweepCounts(done, skipped, failed)
