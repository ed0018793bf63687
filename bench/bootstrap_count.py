"""B, the number of reruns a stability measurement compares, checked in one place that imports
nothing heavy: `bench run --bootstrap` checks it while parsing (`python -m bench --help` must
not import torch) and `bench.stability_run` before any rerun."""

from __future__ import annotations


def check_bootstrap(value: object, *, given: object = None) -> int:
    """`value` if it is an integer of at least 2 (one rerun has no pair to compare).

    Args:
        value: B; a bool is not an integer here.
        given: what the error quotes instead of `value` (the text a command line was given).

    Raises:
        ValueError: "must be an integer of at least 2 (pairs to compare), got ...", for the
            caller to put its own name for B in front of.

    >>> check_bootstrap(3)
    3
    >>> check_bootstrap(1)
    Traceback (most recent call last):
    ValueError: must be an integer of at least 2 (pairs to compare), got 1
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        shown = value if given is None else given
        raise ValueError(f"must be an integer of at least 2 (pairs to compare), got {shown!r}")
    return value
