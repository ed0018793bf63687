"""`run --all --executor ray` on a local Ray with 2 CPUs: the same scores as the local executor,
a worker that dies is retried (and one that always dies is recorded as failed) without losing or
redoing finished runs; and the default path never imports Ray. Ray's start and its workers'
imports take tens of seconds on a small machine: slow."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cli import main
from bench.regression import headline
from bench.results import read_result
from bench.runner import RunRequest, execute
from bench.suite import plan_suite

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
