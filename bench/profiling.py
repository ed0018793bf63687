"""Wall time and peak memory of a call, for results metadata and speed benchmarks."""

from __future__ import annotations

import ctypes
import ctypes.util
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import psutil

T = TypeVar("T")


@dataclass(frozen=True)
class Measured(Generic[T]):
    """What a call returned, how long it took and how much memory it added at its peak."""

    value: T
    seconds: float
    peak_extra_mb: float


def release_freed_memory() -> None:
    """Hand memory that earlier calls freed back to the OS (glibc only), so that a call
    re-using the allocator's cached blocks still shows up in resident memory."""
    name = ctypes.util.find_library("c")
    if name:
        libc = ctypes.CDLL(name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)


def measure(fn: Callable[[], T], interval_s: float = 0.005) -> Measured[T]:
    """Run `fn`, sampling this process's resident memory in a background thread.

    The peak is relative to the memory in use when the call started, so it shows what the
    call itself needed (tensors it allocated and freed count too).
    """
    release_freed_memory()
    process = psutil.Process()
    start_rss = process.memory_info().rss
    peak = start_rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        value = fn()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    peak = max(peak, process.memory_info().rss)
    return Measured(value, seconds, (peak - start_rss) / 2**20)


def fastest(fn: Callable[[], T], rounds: int) -> tuple[float, T]:
    """The least wall time of `rounds` calls of `fn`, and the last call's value.

    Timed bare, unlike `measure`: on a 2-core machine its sampler thread preempts one of
    torch's two threads and stalls the other at every sync, inflating whatever it times.
    """
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def median_time(fn: Callable[[], object], rounds: int) -> float:
    """The median wall time of `rounds` bare calls of `fn` (bare for the reason `fastest` gives)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tensor_peak_bytes(fn: Callable[[], T]) -> tuple[T, int]:
    """`fn`'s value and the most bytes of tensors it held alive at once, beyond those alive
    before it started.

    Counted from the CPU allocator's allocation events recorded by torch's profiler: the CPU
    counterpart of `torch.cuda.max_memory_allocated`. Unlike resident memory it does not depend
    on malloc's caching or the machine (the same run gave resident peaks 15% apart on two
    CPUs), so an estimate can be checked against it exactly.
    """
    from torch._C._profiler import _ExtraFields_Allocation
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        value = fn()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if isinstance(event.extra_fields, _ExtraFields_Allocation):
            events.append((event.start_time_ns, event.extra_fields.alloc_size))
    held = peak = 0
    for _, size in sorted(events):
        held += size
        peak = max(peak, held)
    return value, peak
