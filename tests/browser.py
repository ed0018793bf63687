"""Debian's Chromium for the tests that read the report as a person would: where it is and the
flags that keep it offline and quiet (no sandbox, GPU, first-run, sync or update traffic)."""

from __future__ import annotations

import shutil

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian's chromium is needed to test the report (bash setup.sh installs it)"
    return path
