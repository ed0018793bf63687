"""Where a sweep stands, read from its results directory alone: which planned runs are done,
failed, running (and where), or still to do.

`run --all` drops a small `.running` marker beside where a run's result will go while the run
is in progress (host, pid, start time) and removes it when the run ends; a marker whose process
is gone on this host is stale (the run was killed) and the run counts as remaining. Under
`--executor ray` the driver writes one for each run it has submitted and not yet received
(its own host and pid, `"executor": "ray"`): such a run is queued or running on the cluster.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.results import RunKey
    from bench.runner import RunRequest


def marker_path(key: RunKey, root: Path) -> Path:
    return key.path(root).with_suffix(".running")


def write_marker(key: RunKey, root: Path, **extra: str) -> Path:
    """Mark `key` as running in `root` (written atomically): this host and process, the time,
    and `extra` fields (`executor="ray"`: submitted to Ray, queued or running there)."""
    path = marker_path(key, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), **extra}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".running")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle)
    os.replace(tmp, path)
    return path


@contextmanager
def running_marker(key: RunKey, root: Path) -> Iterator[Path]:
    """Mark `key` as running in `root` for the duration of the block."""
    path = write_marker(key, root)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_marker(path: Path) -> dict[str, Any] | None:
    """The marker's contents, or None when it is stale (its process is gone on this host) or
    unreadable."""
    try:
        data = json.loads(path.read_text())
        host, pid = str(data["host"]), int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname() and not _pid_alive(pid):
        return None
    return data


@dataclass
class SweepStatus:
    """The plan's runs by state, each as (label, detail)."""

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    running: list[tuple[str, str]] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)


def sweep_status(plan: list[RunRequest], root: Path) -> SweepStatus:
    """Classify every run of `plan` by what `root` holds for it: a result (done), a live
    marker (running), a failure record (failed; a rerun retries it), or nothing (remaining)."""
    from bench.regression import key_label

    status = SweepStatus()
    for request in plan:
        key = request.resolve()
        label = key_label(key, request.variant())
        result = key.path(root)
        failure = result.with_suffix(".failed.json")
        marker = read_marker(marker_path(key, root)) if marker_path(key, root).exists() else None
        if result.exists():
            status.done.append(label)
        elif marker is not None:
            minutes = (time.time() - float(marker.get("started", time.time()))) / 60
            where = f"on {marker['host']} pid {marker['pid']}, {minutes:.1f} min"
            if marker.get("executor") == "ray":  # the driver knows it submitted it, not whether it started
                where = f"queued or running on Ray (driver {where.removeprefix('on ')} since submitted)"
            status.running.append((label, where))
        elif failure.exists():
            try:
                record = json.loads(failure.read_text())
                why = f"{record.get('error', '?')}: {record.get('message', '')}"
            except (OSError, ValueError):
                why = "unreadable failure record"
            status.failed.append((label, why))
        else:
            status.remaining.append(label)
    return status
