"""The results store: one JSON file per (task, model, method, ablation, seed), written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DEFAULT_RESULTS_DIR = Path("results") / "runs"


@dataclass(frozen=True)
class RunKey:
    """Identifies one result; also its path under the results directory."""

    task: str
    model: str
    method: str
    ablation: str
    seed: int

    def path(self, root: Path) -> Path:
        model = self.model.replace(":", "_").replace("/", "_")
        return root / self.task / model / self.method / f"{self.ablation}-seed{self.seed}.json"


@dataclass(frozen=True)
class RunResult:
    """A method's edge scores plus everything needed to reproduce and compare them."""

    key: RunKey
    edge_scores: dict[str, float]
    n_examples: int
    metric: str
    options: dict[str, Any]
    wall_time_s: float
    peak_memory_mb: float  # resident memory the method call added at its peak
    versions: dict[str, str]
    git_commit: str
    machine: dict[str, str]
    evaluation: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        return cls(**{**data, "key": RunKey(**data["key"])})


def write_result(result: RunResult, root: Path = DEFAULT_RESULTS_DIR) -> Path:
    """Write atomically (temp file + rename), so an interrupted run never leaves half a file."""
    path = result.key.path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(result.to_json(), handle, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_result(path: Path) -> RunResult:
    return RunResult.from_json(json.loads(path.read_text()))


def result_exists(key: RunKey, root: Path = DEFAULT_RESULTS_DIR) -> bool:
    return key.path(root).exists()


def record_failure(key: RunKey, error: BaseException, root: Path = DEFAULT_RESULTS_DIR) -> Path:
    """Write why a run could not produce scores, beside where its result would be; a rerun
    tries again (a failure record does not count as a finished result)."""
    path = key.path(root).with_suffix(".failed.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"key": asdict(key), "error": type(error).__name__, "message": next(iter(str(error).splitlines()), "")}
    path.write_text(json.dumps(payload, indent=1))
    return path
