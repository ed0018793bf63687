"""Where CDBench's data files are, in a checkout and in an installed wheel.

The repository keeps its data at the top level (`ground_truth/`, `results/baseline.json`), beside
the code rather than inside it. pyproject.toml maps those folders into the package as
`bench/_data/...`, so a wheel carries copies of them. In a checkout (an editable install, or
`python -m bench` run from the repository) the repository's own files are the ones to read and the
only ones to write, so a regenerated ground-truth file lands where git sees it.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_DATA_DIR = PACKAGE_DIR / "_data"


def checkout_root() -> Path | None:
    """The source checkout this package is imported from, or None for an installed wheel.

    A checkout is recognised by the pyproject.toml beside `bench/`; an installed package sits in
    site-packages, which has none.
    """
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def data_path(relative: str) -> Path:
    """A data file or folder named as in the repository (e.g. "results/baseline.json"): the
    checkout's own in a checkout, else the copy packaged with the wheel."""
    root = checkout_root()
    return (root if root is not None else PACKAGED_DATA_DIR) / relative
