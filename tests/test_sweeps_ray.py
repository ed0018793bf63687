"""`run --all --executor ray` on a local Ray with 2 CPUs: the same scores as the local executor,
a worker that dies is retried (and one that always dies is recorded as failed) without losing or
redoing finished runs, a worker loads a model once for its runs on it, a `--plugin` method runs
on the workers, `bench status` shows the runs in flight; and the default path never imports Ray.
Ray's start and its workers' imports take tens of seconds on a small machine: slow."""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cli import main
from bench.regression import headline
from bench.results import read_result
from bench.runner import RunRequest, execute
from bench.suite import plan_suite
from bench.sweep_status import sweep_status

ROOT = Path(__file__).resolve().parent.parent
METHODS = ["exact-patching", "eap", "random"]  # random is seeded: deterministic too
TASK = "tracr-xproportion"


def identity(request: RunRequest) -> str:
    return request.resolve().path(Path()).as_posix()


def die_then_compute(request: RunRequest, log: Path, once: str, always: str) -> dict[str, object]:
    """A worker's job that records each attempt, kills its worker on the first attempt at `once`
    and on every attempt at `always`, and otherwise computes the run."""
    from bench.ray_executor import compute_result

    name = identity(request)
    with log.open("a") as handle:
        handle.write(name + "\n")
    died = log.with_name("died-once")
    if name == once and not died.exists():
        died.touch()
        os._exit(1)  # the worker process dies, as on a lost node or an out-of-memory kill
    if name == always:
        os._exit(1)
    return compute_result(request)


def logged_compute(request: RunRequest, log: Path) -> dict[str, object]:
    """The worker's job, logging its process, the run's model and how many loads the run cost."""
    from bench.ray_executor import WORKER_MODELS, compute_result

    before = WORKER_MODELS.loads
    result = compute_result(request)
    with log.open("a") as handle:
        handle.write(f"{os.getpid()} {request.resolve().model} {WORKER_MODELS.loads - before}\n")
    return result


def gated_compute(request: RunRequest, gate: Path) -> dict[str, object]:
    """The worker's job, held until `gate` exists (so the runs stay in flight)."""
    from bench.ray_executor import compute_result

    while not gate.exists():
        time.sleep(0.1)
    return compute_result(request)


def nothing(request: RunRequest) -> dict[str, object]:
    return {}


@pytest.mark.slow
def test_a_plugin_method_runs_on_ray_workers(tmp_path: Path) -> None:
    """Own Ray, in a subprocess started before this module's Ray; the plugin is given by a path
    relative to the driver's directory, which the workers do not share."""
    pytest.importorskip("ray")
    (tmp_path / "ones_on_ray.py").write_text(
        "import torch\n"
        "from bench.api import EdgeScores, register_method\n"
        "@register_method('ones-on-ray', description='one per edge', citation='test')\n"
        "def ones(run):\n"
        "    return EdgeScores(torch.ones(run.graph.n_edges))\n"
    )
    results = tmp_path / "results"
    command = [sys.executable, "-m", "bench", "run", "--all", "--methods", "ones-on-ray", "--tasks", TASK]
    command += ["--executor", "ray", "--ray-cpus", "1", "--results-dir", str(results), "--plugin", "ones_on_ray.py"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan = plan_suite(methods=["eap"], tasks=[TASK])  # one run per suite ablation, as for ones-on-ray
    assert f"finished: {len(plan)} run, 0 skipped (already done or model unavailable), 0 failed" in proc.stdout
    paths = list((results / TASK / TASK / "ones-on-ray").glob("*.json"))
    assert len(paths) == len(plan) and all(set(read_result(p).edge_scores.values()) == {1.0} for p in paths)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    pytest.importorskip("ray")  # the cdbench[ray] extra, which setup.sh installs
    import ray

    from bench.ray_executor import _start

    _start(None, 2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("local")
    for request in plan_suite(methods=METHODS, tasks=[TASK]):
        execute(request, root)
    return root


@pytest.mark.slow
def test_ray_gives_the_local_executors_scores(local_ray: None, local_results: Path, tmp_path: Path) -> None:
    from bench.ray_executor import run_on_ray

    plan = plan_suite(methods=METHODS, tasks=[TASK])
    counts = run_on_ray(plan, tmp_path, say=lambda _: None)
    assert (counts.done, counts.failed) == (len(plan), 0)
    for request in plan:
        key = request.resolve()
        mine, theirs = read_result(key.path(tmp_path)), read_result(key.path(local_results))
        assert mine.edge_scores.keys() == theirs.edge_scores.keys()
        assert max(abs(mine.edge_scores[e] - theirs.edge_scores[e]) for e in mine.edge_scores) <= 1e-6
        for name, value in headline(theirs).items():
            assert headline(mine)[name] == pytest.approx(value, abs=1e-6), (key, name)


@pytest.mark.slow
def test_dead_worker_is_retried_and_nothing_finished_is_lost_or_redone(
    local_ray: None, local_results: Path, tmp_path: Path
) -> None:
    from bench.ray_executor import run_on_ray

    plan = plan_suite(methods=METHODS, tasks=[TASK])
    names = sorted(identity(r) for r in plan)
    finished, once, always = names[:2], names[2], names[3]
    root = tmp_path / "results"
    for name in finished:  # done before this start: a resume must not redo them
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_results / name, root / name)
    before = {name: (root / name).read_bytes() for name in finished}
    log = tmp_path / "attempts.log"
    work = functools.partial(die_then_compute, log=log, once=once, always=always)
    counts = run_on_ray(plan, root, max_retries=1, work=work, say=lambda _: None)
    attempts = Counter(log.read_text().split())
    assert not set(finished) & set(attempts)
    assert attempts[once] == 2 and attempts[always] == 2  # one retry each (max_retries=1)
    assert all(attempts[name] == 1 for name in names[4:])
    assert (counts.done, counts.skipped, counts.failed) == (len(plan) - 3, 2, 1)
    assert before == {name: (root / name).read_bytes() for name in finished}
    assert all((root / name).exists() for name in names if name != always)
    assert not (root / always).exists() and (root / always).with_suffix(".failed.json").exists()
    # starting again resumes: only the failed run is tried again
    log.unlink()
    again = run_on_ray(plan, root, max_retries=0, work=work, say=lambda _: None)
    assert Counter(log.read_text().split()) == Counter({always: 1})
    assert (again.done, again.skipped, again.failed) == (0, len(plan) - 1, 1)


@pytest.mark.slow
def test_a_worker_loads_each_model_once_for_its_runs(local_ray: None, local_results: Path, tmp_path: Path) -> None:
    from bench.ray_executor import run_on_ray

    ours = plan_suite(methods=METHODS, tasks=[TASK])
    theirs = plan_suite(methods=["random", "eap"], tasks=["tracr-reverse"])
    plan = [r for pair in itertools.zip_longest(ours, theirs) for r in pair if r is not None]  # models interleaved
    log = tmp_path / "loads.log"
    work = functools.partial(logged_compute, log=log)
    # both CPUs per run: one run at a time, as on a 1-CPU Ray
    counts = run_on_ray(plan, tmp_path / "ray", resources={"num_cpus": 2}, work=work, say=lambda _: None)
    assert (counts.done, counts.failed) == (len(plan), 0)
    loads: Counter[tuple[str, str]] = Counter()
    for pid, model, n in (line.split() for line in log.read_text().splitlines()):
        loads[(pid, model)] += int(n)
    assert set(loads.values()) == {1}, loads  # each worker loaded each of its models once
    assert sum(loads.values()) < len(plan)
    for request in theirs:
        execute(request, local_results)
    for request in plan:
        key = request.resolve()
        mine, local = read_result(key.path(tmp_path / "ray")), read_result(key.path(local_results))
        assert mine.edge_scores == pytest.approx(local.edge_scores, abs=1e-6), key
        for name, value in headline(local).items():
            assert headline(mine)[name] == pytest.approx(value, abs=1e-6), (key, name)


@pytest.mark.slow
def test_status_shows_a_ray_sweeps_runs_in_flight(
    local_ray: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.ray_executor import run_on_ray

    plan = plan_suite(methods=METHODS, tasks=[TASK])
    root, gate = tmp_path / "results", tmp_path / "gate"
    work = functools.partial(gated_compute, gate=gate)
    counts = []
    sweep = threading.Thread(target=lambda: counts.append(run_on_ray(plan, root, work=work, say=lambda _: None)))
    sweep.start()
    try:
        deadline = time.monotonic() + 120
        while len(list(root.rglob("*.running"))) < len(plan) and time.monotonic() < deadline:
            time.sleep(0.2)
        status = sweep_status(plan, root)
        assert len(status.running) == len(plan) and not status.done
        assert all(where.startswith("queued or running on Ray (driver ") for _, where in status.running)
        assert main(["status", "--methods", ",".join(METHODS), "--tasks", TASK, "--results-dir", str(root)]) == 0
        assert f"0 done, {len(plan)} running, 0 failed, 0 remaining" in capsys.readouterr().out
    finally:
        gate.touch()
        sweep.join(timeout=600)
    assert counts[0].done == len(plan)
    assert not list(root.rglob("*.running")) and len(sweep_status(plan, root).done) == len(plan)


@pytest.mark.slow
def test_an_interrupted_ray_sweep_leaves_no_markers(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from bench.ray_executor import run_on_ray

    plan = plan_suite(methods=METHODS, tasks=[TASK])
    root, seen = tmp_path / "results", []

    def interrupted(refs: list, num_returns: int = 1) -> None:
        seen.append(len(list(root.rglob("*.running"))))
        raise KeyboardInterrupt

    monkeypatch.setattr(ray, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_on_ray(plan, root, work=nothing, say=lambda _: None)
    assert seen == [len(plan)]  # every submitted run was marked
    assert not list(root.rglob("*.running"))


def test_the_default_executor_never_imports_ray(tmp_path: Path) -> None:
    code = (
        "import sys; from bench.cli import main; "
        f"rc = main(['run', '--all', '--methods', 'random', '--seeds', '0', '--tasks', '{TASK}', "
        f"'--results-dir', {str(tmp_path)!r}]); "
        "assert rc == 0 and 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(tmp_path.rglob("*-seed0-*.json"))


def test_bad_ray_resource_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    args = ["run", "--all", "--methods", "random", "--tasks", TASK, "--executor", "ray", "--ray-resources", "gpus=1"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --ray-resources 'gpus=1'") and "num_cpus, num_gpus, memory" in err[-1]
