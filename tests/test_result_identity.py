"""A result's identity: variants of a run (options, number of examples, data seed) coexist on
disk and resume, each result records what produced it (data fingerprint, weights hash, dtype,
device, version, metric directions), and a bad result file fails on load naming file and field."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest
import torch

from bench import provenance
from bench.cli import main
from bench.regression import HEADLINE_METRICS, baseline_payload, run_label
from bench.results import ResultFileError, RunKey, read_result
from bench.runner import IncompatibleChoice, RunRequest, execute
from bench.scoring import HIGHER_IS_BETTER
from bench.zoo import load_model
from tasks import TASKS
from tests.conftest import tiny_model

ROOT = Path(__file__).resolve().parent.parent


def results_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if not p.name.endswith(".failed.json"))


def test_two_option_values_coexist_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "--all", "--methods", "eap-ig-inputs", "--tasks", "tracr-xproportion", "--ablations", "zero"]
    args += ["--stability", "none", "--results-dir", str(tmp_path)]

    def run_all(*extra: str) -> str:
        assert main([*args, *extra]) == 0
        return capsys.readouterr().out

    assert "finished: 1 run, 0 skipped" in run_all("--option", "steps=2")
    assert "finished: 1 run, 0 skipped" in run_all("--option", "steps=3")
    files = results_in(tmp_path)
    assert sorted(read_result(p).options["steps"] for p in files) == [2, 3]
    written = {p: p.stat().st_mtime_ns for p in files}
    assert "finished: 0 run, 1 skipped" in run_all("--option", "steps=2")
    assert "finished: 0 run, 1 skipped" in run_all("--option", "steps=3")
    assert {p: p.stat().st_mtime_ns for p in results_in(tmp_path)} == written, "neither variant was recomputed"
    # the default is a third variant; naming the default explicitly is that same run
    assert "finished: 1 run, 0 skipped" in run_all()
    assert "finished: 0 run, 1 skipped" in run_all("--option", "steps=5")
    assert len(results_in(tmp_path)) == 3


def test_numbers_of_examples_coexist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in ("20", "40"):
        assert (
            main(
                [
                    "run",
                    "--method",
                    "random",
                    "--task",
                    "tracr-reverse",
                    "--examples",
                    n,
                    "--results-dir",
                    str(tmp_path),
                ]
            )
            == 0
        )
    results = [read_result(p) for p in results_in(tmp_path)]
    assert sorted(r.n_examples for r in results) == [20, 40]
    assert sorted(r.key.n_examples for r in results) == [20, 40]
    assert results[0].data_fingerprint != results[1].data_fingerprint
    assert "20 examples" in capsys.readouterr().out


def test_key_is_the_resolved_request() -> None:
    """Defaults filled in: an explicit default is no option; every data parameter counts."""
    default = RunRequest("eap-ig-inputs", "tracr-reverse").resolve()
    assert default == RunRequest("eap-ig-inputs", "tracr-reverse", options={"steps": 5}, n_examples=363).resolve()
    assert default == RunRequest("eap-ig-inputs", "tracr-reverse", data_seed=0).resolve()
    assert default.n_examples == TASKS.get("tracr-reverse").default_examples and default.data_seed == 0
    variants = [
        RunRequest("eap-ig-inputs", "tracr-reverse", options={"steps": 6}),
        RunRequest("eap-ig-inputs", "tracr-reverse", n_examples=100),
        RunRequest("eap-ig-inputs", "tracr-reverse", data_seed=1),
        RunRequest("eap-ig-inputs", "tracr-reverse", seed=1),
    ]
    paths = {r.resolve().path(Path("r")) for r in variants} | {default.path(Path("r"))}
    assert len(paths) == len(variants) + 1
    assert default.path(Path("r")).parent == Path("r/tracr-reverse/tracr-reverse/eap-ig-inputs")
    assert default.path(Path("r")).name == f"corrupted-seed0-data0-n363-{default.options_hash}.json"
    # a whole-number float is the same option as the int the command line gives
    pruning = RunRequest("edge-pruning", "tracr-reverse")
    assert pruning.resolve() == RunRequest("edge-pruning", "tracr-reverse", options={"init": 5}).resolve()
    assert RunRequest("eap-ig-inputs", "tracr-reverse", options={"steps": 5}).variant() == {}
    assert variants[0].variant() == {"options": {"steps": 6}}
    assert RunRequest("random", "tracr-reverse", seed=2, data_seed=0, n_examples=9).variant() == {
        "n_examples": 9,
        "data_seed": 0,
    }


def test_bad_number_of_examples_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(IncompatibleChoice, match="positive integer, got 0"):
        RunRequest("random", "tracr-reverse", n_examples=0).resolve()
    assert (
        main(
            ["run", "--method", "random", "--task", "tracr-reverse", "--examples", "-3", "--results-dir", str(tmp_path)]
        )
        == 2
    )
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: the number of examples must be a positive integer, got -3"
    ]
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def one_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, path = execute(RunRequest("random", "tracr-reverse", n_examples=30), tmp_path_factory.mktemp("results"))
    return path


def test_result_records_what_produced_it(one_result: Path) -> None:
    path = one_result
    result = read_result(path)
    model = load_model("tracr-reverse")
    data = TASKS.get("tracr-reverse").build(model, 30, 0)
    assert result.data_fingerprint == provenance.data_fingerprint(data)
    assert result.model_identity == {"name": "tracr-reverse", "weights_sha256": provenance.weights_sha256(model)}
    assert result.dtype == "float32" and result.device == "cpu"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert result.cdbench_version == version == result.versions["cdbench"]
    assert result.git_commit and result.git_commit != "unknown"
    assert result.higher_is_better == HIGHER_IS_BETTER and result.higher_is_better["cmd"] is False
    assert set(result.evaluation["faithfulness"]) >= {"faithfulness_auc", "cpr", "cmd"}
    assert all(HEADLINE_METRICS[m] == HIGHER_IS_BETTER[m] for m in ("faithfulness_auc", "cpr", "cmd"))
    assert HEADLINE_METRICS["roc_auc_full"] is HEADLINE_METRICS["roc_auc_detectable"] is HIGHER_IS_BETTER["roc_auc"]
    assert json.loads(path.read_text())["key"] == {
        "task": "tracr-reverse",
        "model": "tracr-reverse",
        "method": "random",
        "ablation": "corrupted",
        "seed": 0,
        "n_examples": 30,
        "data_seed": 0,
        "options_hash": result.key.options_hash,
    }


def test_data_fingerprint_follows_the_data_seed_only(tmp_path: Path) -> None:
    task = TASKS.get("tracr-reverse")
    model = load_model(task.model)
    first, again, other = (provenance.data_fingerprint(task.build(model, 30, s)) for s in (0, 0, 1))
    assert first == again != other
    assert provenance.data_fingerprint(task.build(model, 31, 0)) != first

    def run_fingerprint(**fields: int) -> str:
        result, _ = execute(RunRequest("random", "tracr-reverse", n_examples=30, **fields), tmp_path)
        return result.data_fingerprint

    # the run seed draws the examples unless a data seed is given
    assert run_fingerprint(seed=1, data_seed=0) == first
    assert run_fingerprint(seed=0, data_seed=1) == other == run_fingerprint(seed=1)


def test_weights_hash_sees_every_bit_and_dtype() -> None:
    model = tiny_model()
    digest = provenance.weights_sha256(model)
    assert digest == provenance.weights_sha256(tiny_model()) and len(digest) == 64
    with torch.no_grad():
        model.blocks[1].attn.W_Q[0, 0, 0] += 1e-6
    assert provenance.weights_sha256(model) != digest
    half = tiny_model(dtype=torch.bfloat16)
    assert provenance.weights_sha256(half) == provenance.weights_sha256(tiny_model(dtype=torch.bfloat16)) != digest
    with torch.no_grad():  # the smallest step bf16 can take: one in the last bit
        half.blocks[0].mlp.W_in.view(torch.int16)[0, 0] += 1
    assert provenance.weights_sha256(half) != provenance.weights_sha256(tiny_model(dtype=torch.bfloat16))


def _corrupt_edge_score(data: dict) -> None:
    first = next(iter(data["edge_scores"]))
    data["edge_scores"][first] = "high"


@pytest.mark.parametrize(
    ("corrupt", "field", "problem"),
    [
        (lambda d: d.pop("data_fingerprint"), "'data_fingerprint'", "is missing"),
        (lambda d: d["key"].pop("data_seed"), "'key.data_seed'", "is missing"),
        (lambda d: d["key"].update(seed="0"), "'key.seed'", "must be int, got str '0'"),
        (lambda d: d.update(dtype=32), "'dtype'", "must be str, got int 32"),
        (lambda d: d["higher_is_better"].update(cmd="no"), "\"higher_is_better['cmd']\"", "must be bool"),
        (_corrupt_edge_score, "edge_scores['input->", "must be float, got str 'high'"),
        (lambda d: d["evaluation"]["faithfulness"].pop("no_signal"), "'evaluation.faithfulness.no_signal'", "missing"),
        (
            lambda d: d["evaluation"]["faithfulness"].update(gap_ci=[0.1]),
            "'evaluation.faithfulness.gap_ci'",
            "list of 2",
        ),
        (lambda d: d.update(schema_version=1), "'schema_version'", "is 1, this CDBench reads version 2"),
        (lambda d: d.update(options={"steps": 7}), "'key.options_hash'", "recorded options hash to"),
        (lambda d: d.update(colour="red"), "'colour'", "is not part of the schema"),
    ],
)
def test_corrupted_result_names_file_and_field(
    one_result: Path, tmp_path: Path, corrupt, field: str, problem: str
) -> None:
    data = json.loads(one_result.read_text())
    corrupt(data)
    path = tmp_path / "corrupted-seed0-data0-n30-x.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultFileError) as caught:
        read_result(path)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{path}: field ") and field in message and problem in message


def test_report_on_a_bad_result_is_one_line(
    one_result: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(one_result.read_text())
    del data["model_identity"]
    bad = tmp_path / "runs" / "t" / "m" / "random" / "corrupted-seed0-data0-n30-x.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps(data))
    assert main(["report", "--results-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "lb.html")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {bad}: field 'model_identity' is missing"]


def test_result_round_trips(one_result: Path) -> None:
    result = read_result(one_result)
    assert isinstance(result.key, RunKey) and result.to_json() == json.loads(one_result.read_text())


def test_run_labels_stay_short_for_the_default_suite_and_name_variants(one_result: Path) -> None:
    result = read_result(one_result)
    assert run_label(result) == "random on tracr-reverse (tracr-reverse, corrupted ablation, seed 0; 30 examples)"
    default = dataclasses.replace(result, variant={})
    assert run_label(default) == "random on tracr-reverse (tracr-reverse, corrupted ablation, seed 0)"
    other = dataclasses.replace(result, variant={"options": {"steps": 20}, "n_examples": 1, "data_seed": 3})
    assert run_label(other).endswith("seed 0; steps=20, 1 example, data seed 3)")
    assert len(baseline_payload([result, default, other])) == 3
    with pytest.raises(ValueError, match="two results share the run label"):
        baseline_payload([result, result])
