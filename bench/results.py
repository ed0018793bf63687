"""The results store: one JSON file per run identity, written atomically, checked on read.

A run's identity (`RunKey`) is everything its scores depend on: task, model, method,
ablation, seed, the method's resolved options (defaults filled in, so an explicit default
is the same run as none), the number of examples and the seed the examples are drawn with.
Runs that differ in any of these never share a file, so variants coexist on disk and
`run --all` resumes exactly the ones not done yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.faithful_size import FaithfulSize
from bench.mib_scoring import MibScores
from bench.result_schema import ResultFileError, check_fields, check_value
from bench.scoring import Faithfulness

SCHEMA_VERSION = 2
OPTIONAL_FIELDS = frozenset({"nodes", "examples_per_pass"})
"""Fields added within schema version 2: files written before them still read."""
DEFAULT_RESULTS_DIR = Path("results") / "runs"


def canonical(value: object) -> object:
    """`value` as JSON would compare it: tuples as lists, dicts by sorted key and floats that
    are whole numbers as ints (so `--option init=5` and a default of 5.0 are one run)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    return value


def options_hash(options: dict[str, Any]) -> str:
    """8 hex digits of the sha256 of the resolved options in canonical JSON."""
    text = json.dumps(canonical(options), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class RunKey:
    """Identifies one result; also its path under the results directory.

    Attributes:
        n_examples: the number of examples asked for (the task's default when not given);
            the result's own `n_examples` is how many the task could draw.
        data_seed: the seed the task's examples are drawn with (the run seed by default).
        options_hash: `options_hash` of the method's resolved options.
    """

    task: str
    model: str
    method: str
    ablation: str
    seed: int
    n_examples: int
    data_seed: int
    options_hash: str

    def path(self, root: Path) -> Path:
        """`<task>/<model>/<method>/<ablation>-seed<S>-data<D>-n<N>-<options hash>.json`."""
        model = self.model.replace(":", "_").replace("/", "_")
        name = f"{self.ablation}-seed{self.seed}-data{self.data_seed}-n{self.n_examples}-{self.options_hash}.json"
        return root / self.task / model / self.method / name


@dataclass(frozen=True)
class RunResult:
    """A method's edge scores plus everything needed to reproduce and compare them.

    Attributes:
        options: the method's resolved options (defaults filled in).
        variant: what the run set away from the defaults when it ran: {"options": the options
            that differ from the method's defaults} plus "n_examples" and "data_seed" where
            those differ from the task's default and from the run seed; empty parts are left
            out, so a default run's variant is {} (see `variant_text`).
        data_fingerprint: sha256 of the examples (`provenance.data_fingerprint`).
        model_identity: {"name", "weights_sha256"} (`provenance.weights_sha256`).
        dtype: the model's parameter dtype, e.g. "float32".
        device: where the model ran, e.g. "cpu".
        cdbench_version: the version of CDBench that produced the result.
        higher_is_better: for each score in `evaluation`, whether larger is better.
        node_scores: for methods that score nodes and derive edge scores from them (HISP,
            subnetwork probing), each node's score; None for edge methods.
        nodes: the graph's nodes in order (`Graph.nodes`), so a reader needs neither the model
            nor CDBench's graph code to know the components; None in files written before it
            was recorded (their graph is rebuilt from the edge names).
        examples_per_pass: the chunk size the method scored its examples in (`bench.chunking`);
            None when it scored them all at once.
    """

    key: RunKey
    edge_scores: dict[str, float]
    n_examples: int
    metric: str
    options: dict[str, Any]
    variant: dict[str, Any]
    wall_time_s: float
    peak_memory_mb: float  # resident memory the method call added at its peak
    versions: dict[str, str]
    git_commit: str
    cdbench_version: str
    machine: dict[str, str]
    data_fingerprint: str
    model_identity: dict[str, str]
    dtype: str
    device: str
    higher_is_better: dict[str, bool]
    evaluation: dict[str, Any] = field(default_factory=dict)
    node_scores: dict[str, float] | None = None
    schema_version: int = SCHEMA_VERSION
    nodes: list[str] | None = None
    examples_per_pass: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        return cls(**{**data, "key": RunKey(**data["key"])})


def variant_text(variant: dict[str, Any]) -> str:
    """A variant in words, empty for a default run: "steps=20, 100 examples, data seed 3"."""
    parts = [f"{name}={value}" for name, value in variant.get("options", {}).items()]
    if "n_examples" in variant:
        n = variant["n_examples"]
        parts.append(f"{n} example{'s' * (n != 1)}")
    if "data_seed" in variant:
        parts.append(f"data seed {variant['data_seed']}")
    return ", ".join(parts)


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
    """Load and check a result file.

    Raises:
        ResultFileError: one line naming the file and the field that is missing, of the
            wrong type, or from another schema version.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultFileError(f"{path}: not a readable JSON result ({err})") from None
    if not isinstance(data, dict):
        raise ResultFileError(f"{path}: the file must be an object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultFileError(
            f"{path}: field 'schema_version' is {version!r}, this CDBench reads version {SCHEMA_VERSION} "
            "(rerun the result with --force)"
        )
    check_fields(data, RunResult, path, optional=OPTIONAL_FIELDS)
    check_fields(data["evaluation"].get("faithfulness"), Faithfulness, path, "evaluation.faithfulness")
    if "mib" in data["evaluation"]:  # optional: results written before MIB's scores were added lack it
        check_fields(data["evaluation"]["mib"], MibScores, path, "evaluation.mib")
    # optional: results written before the edges-for-faithfulness sizes lack it
    for i, size in enumerate(data["evaluation"].get("faithful_size", [])):
        check_fields(size, FaithfulSize, path, f"evaluation.faithful_size[{i}]")
    if "ground_truth" in data["evaluation"]:
        check_value(
            data["evaluation"]["ground_truth"], dict[str, dict[str, dict[str, float]]], path, "evaluation.ground_truth"
        )
    expected = options_hash(data["options"])
    if data["key"]["options_hash"] != expected:
        raise ResultFileError(
            f"{path}: field 'key.options_hash' is {data['key']['options_hash']!r} but the recorded options "
            f"hash to {expected!r}"
        )
    return RunResult.from_json(data)


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
