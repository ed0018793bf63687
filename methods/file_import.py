"""`file:PATH`: scores read from an MIB / EAP-IG importance file (JSON or PT) or an MIB circuit
folder, scored as if a method had produced them on the run's task and model."""

from __future__ import annotations

from pathlib import Path

from bench.discovery import DiscoveryRun, EdgeScores
from bench.mib_files import MibFileError, content_sha256, read_scores
from methods.spec import register_method

FILE_METHOD = "file"
PREFIX = "file:"


def file_options(method: str) -> dict[str, object]:
    """The options of `--method file:PATH`: the absolute path and the sha256 of its content, so
    two different files never share a result and an edited file is a new run.

    Raises:
        MibFileError: no such file or folder, in one line naming it.
    """
    path = Path(method.removeprefix(PREFIX)).expanduser().resolve()
    if not path.exists():
        raise MibFileError(
            f"{path}: no such file or folder; give --method file:PATH with an MIB .json or .pt file or a circuit folder"
        )
    return {"path": str(path), "sha256": content_sha256(path)[:16]}


def _check(options: dict[str, object]) -> None:
    if not options.get("path"):
        raise ValueError("method 'file' reads a file: give it as --method file:PATH")


@register_method(
    FILE_METHOD,
    description="scores from an MIB/EAP-IG importance file (.json/.pt) or MIB circuit folder: --method file:PATH",
    citation="Mueller et al. 2025 (MIB), submission formats",
    defaults={"path": "", "sha256": ""},
    check=_check,
    discovers=False,
)
def file_scores(run: DiscoveryRun) -> EdgeScores:
    path = Path(str(run.options["path"]))
    if content_sha256(path)[:16] != run.options["sha256"]:
        raise MibFileError(f"{path}: the file changed since the run was planned; run it again")
    values, node_scores = read_scores(path, run.graph)
    return EdgeScores(values, node_scores)  # float64: exactly the file's numbers
