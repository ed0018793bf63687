"""Comparing derived JSON payloads with committed ones across machines: structure, names and
integers exactly, floats to a relative tolerance (another CPU rounds the last bits differently)."""

from __future__ import annotations

import math
from typing import Any


def assert_json_close(committed: Any, fresh: Any, rel: float = 1e-5, path: str = "") -> None:
    """Raise AssertionError naming the first place where `fresh` differs from `committed`."""
    if isinstance(committed, float) or isinstance(fresh, float):
        where = f"{path}: {committed!r} vs {fresh!r}"
        assert isinstance(fresh, int | float) and isinstance(committed, int | float), where
        assert math.isclose(committed, fresh, rel_tol=rel, abs_tol=rel), where
    elif isinstance(committed, dict):
        assert isinstance(fresh, dict) and committed.keys() == fresh.keys(), f"{path}: keys differ"
        for key in committed:
            assert_json_close(committed[key], fresh[key], rel, f"{path}.{key}")
    elif isinstance(committed, list | tuple):
        assert isinstance(fresh, list | tuple) and len(committed) == len(fresh), f"{path}: lengths differ"
        for i, (a, b) in enumerate(zip(committed, fresh, strict=True)):
            assert_json_close(a, b, rel, f"{path}[{i}]")
    else:
        assert committed == fresh, f"{path}: {committed!r} vs {fresh!r}"
