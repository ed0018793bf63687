"""Stability in the suite: `run --all` measures the cheap cells and records why it leaves the
training ones out, reuses what is there, goes on past a failing cell, shards cells like runs;
the leaderboard shows them; `check` guards them against the baseline."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from bench import stability_run
from bench.cli import build_parser, main
from bench.merge import merge_results
from bench.regression import BASELINE_PATH, STABILITY_PREFIX, compare, stability_payload, write_baseline
from bench.report import load_results, write_report
from bench.report_stability import JACCARD_COLUMN, NOT_MEASURED, RANDOM_NOTE, stability_html
from bench.shards import Shard, shard_plan
from bench.stability import (
    DEFAULT_BOOTSTRAP,
    Agreement,
    Stability,
    load_stabilities,
    load_unmeasured,
    stability_path,
    write_record,
)
from bench.stability_suite import plan_cells, run_stability, unmeasured_record
from bench.suite import plan_suite
from methods.spec import TRAINS


def test_run_all_measures_the_cheap_cells_says_why_not_the_others_and_reuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--all", "--tasks", "tracr-reverse", "--methods", "eap,random,edge-pruning", "--ablations"]
    args += ["zero", "--seeds", "0", "--examples", "16", "--bootstrap", "2", "--option", "steps=2"]
    args += ["--results-dir", str(tmp_path)]
    assert main(args) == 0
    root = tmp_path / "stability"  # the results folder's own, as --results-dir was given
    measured = {s.method: s for s in load_stabilities(root)}
    assert sorted(measured) == ["eap", "random"]
    assert all(s.bootstrap == 2 and s.jaccard.pairs == 1 and s.seed == 0 for s in measured.values())
    assert measured["random"].seeds_jaccard is not None and measured["eap"].seeds_jaccard is None
    (left_out,) = load_unmeasured(root)
    variant = {"options": {"steps": 2}, "n_examples": 16}
    assert (left_out.method, left_out.reason, left_out.variant) == ("edge-pruning", TRAINS, variant)
    out = capsys.readouterr().out
    assert "stability: 2 measured, 0 already there, 1 left out" in out
    written = {p: p.stat().st_mtime_ns for p in root.rglob("stability-*.json")}
    assert main(args) == 0
    assert "stability: 0 measured, 2 already there, 1 left out" in capsys.readouterr().out
    assert written == {p: p.stat().st_mtime_ns for p in root.rglob("stability-*.json")}
    assert len(load_results(tmp_path)) == 3  # stability files are never read as run results
    page = write_report(tmp_path, tmp_path / "board.html").read_text()  # finds them without being told
    assert page.count(f"<th>{JACCARD_COLUMN}</th>") == 1 and "Cells not measured, and why" in page
    assert page.count(f"<td>{NOT_MEASURED}</td>") == 2 and html.escape(TRAINS) in page
    assert page.count(f"<td>{measured['eap'].jaccard.mean:.3f} [") >= 2  # the table's column and the section


def test_a_failing_cell_is_one_line_and_the_others_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_suite(["eap", "hisp"], ["tracr-reverse"], ablations=["zero"], n_examples=8)
    real = stability_run.measure_stability

    def flaky(request, bootstrap, progress):
        if request.method == "eap":
            raise RuntimeError("boom")
        return real(request, bootstrap, progress)

    monkeypatch.setattr(stability_run, "measure_stability", flaky)
    lines: list[str] = []
    counts = run_stability(plan_cells(plan), 2, tmp_path, write=lines.append)
    assert (counts.measured, counts.failed) == (1, 1)
    assert lines[0] == (
        "stability failed for stability: eap on tracr-reverse (tracr-reverse, zero ablation, seed 0; 8 examples): "
        "RuntimeError: boom"
    )
    assert [s.method for s in load_stabilities(tmp_path)] == ["hisp"]
    (failed,) = load_unmeasured(tmp_path)
    assert (failed.method, failed.reason) == ("eap", "failed: RuntimeError: boom")


def test_cells_are_one_per_setting_from_its_lowest_seed_and_shard_like_its_runs() -> None:
    plan = plan_suite(["eap", "random", "edge-pruning"], ["tracr-reverse", "tracr-xproportion"], seeds=[2, 1])
    cells = plan_cells(plan)
    assert len(cells) == len(plan) // 2 and {cell.key.seed for cell in cells} == {1}
    assert {cell.key.method: cell.skip for cell in cells} == {"eap": None, "random": None, "edge-pruning": TRAINS}
    assert all(cell.skip is None for cell in plan_cells(plan, which="all")) and plan_cells(plan, which="none") == []
    parts = [{cell.label for cell in plan_cells(plan, shard_plan(plan, Shard(i, 3)))} for i in (1, 2, 3)]
    assert sum(map(len, parts)) == len(cells) and set().union(*parts) == {cell.label for cell in cells}
    for i, part in enumerate(parts, start=1):  # a cell goes with its lowest-seed run
        runs = {(r.method, r.task, r.ablation) for r in shard_plan(plan, Shard(i, 3)) if r.seed == 1}
        assert {(c.key.method, c.key.task, c.key.ablation) for c in cells if c.label in part} == runs


def test_bootstrap_help_and_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    helps = {a.dest: a.help for a in build_parser()._subparsers._group_actions[0].choices["run"]._actions}  # type: ignore[union-attr]
    assert f"(default {DEFAULT_BOOTSTRAP})" in helps["bootstrap"]
    with pytest.raises(SystemExit):
        main(["run", "--all", "--bootstrap", "1"])
    assert "B must be an integer of at least 2" in capsys.readouterr().err
    assert main(["run", "--method", "eap", "--task", "tracr-reverse", "--bootstrap", "3"]) == 2


def _stability(method: str, mean: float, seeds: float | None = None) -> Stability:
    agreement = Agreement(mean, mean, mean, 3)
    seeded = None if seeds is None else Agreement(seeds, seeds, seeds, 3)
    return Stability(method, "t", "m", "zero", 8, 3, 0, 5, "rule", agreement, agreement, seeded, seeded)


def test_stability_section_says_random_agrees_across_resamples_by_construction() -> None:
    note = f"<p>{html.escape(RANDOM_NOTE)}</p>"
    with_random = stability_html(
        [_stability("eap", 0.9), _stability("random", 1.0, 0.2), _stability("random", 1.0, 0.1)]
    )
    assert with_random.count(note) == 1
    assert with_random.index("</table>") < with_random.index(note)  # under the table it explains
    assert note not in stability_html([_stability("eap", 0.9), _stability("hisp", 1.0)])


def test_compare_guards_stability_with_the_run_tolerances(tmp_path: Path) -> None:
    fresh = {"stability: eap": _stability("eap", 0.9), "stability: random": _stability("random", 1.0, 0.2)}
    fresh["stability: flat"] = _stability("hisp", float("nan"))
    baseline = json.loads(write_baseline([], tmp_path / "b.json", fresh).read_text())
    assert baseline == stability_payload(fresh) and baseline["stability: flat"]["jaccard"] is None
    assert baseline["stability: eap"]["bootstrap"] == 3 and compare([], baseline, fresh) == []
    tampered = json.loads(json.dumps(baseline))
    tampered["stability: eap"]["spearman"] += 2e-3  # deterministic: beyond float noise (1e-3 for Spearman)
    tampered["stability: random"]["seeds_jaccard"] -= 0.04  # stochastic: only a drop beyond 0.05
    assert [(p.run, p.metric) for p in compare([], tampered, fresh)] == [("stability: eap", "spearman")]
    tampered["stability: random"]["seeds_jaccard"] += 0.1
    assert [p.metric for p in compare([], tampered, fresh)] == ["spearman", "seeds_jaccard"]
    assert "not produced" in str(compare([], baseline, {})[0])


def test_check_flags_a_tampered_stability_figure_and_only_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = json.loads(BASELINE_PATH.read_text())
    mine = {
        label: entry
        for label, entry in shipped.items()
        if " on tracr-reverse (" in label and label.removeprefix(STABILITY_PREFIX).startswith("hisp ")
    }
    labels = sorted(label for label in mine if label.startswith(STABILITY_PREFIX))
    assert len(labels) == 2 and len(mine) == 4  # hisp under two ablations: runs and cells
    target = "stability: hisp on tracr-reverse (tracr-reverse, zero ablation, seed 0)"
    mine[target]["jaccard"] -= 0.01
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(mine))
    code = main(["check", "--tasks", "tracr-reverse", "--methods", "hisp", "--baseline", str(path)])
    captured = capsys.readouterr()
    assert code == 1 and "checked 2 runs and 2 stability cells" in captured.out
    (line,) = [line for line in captured.err.splitlines() if line.startswith("REGRESSION")]
    assert line.startswith(f"REGRESSION {target}: jaccard changed by more than 0.0001 in a deterministic run")


def test_merge_gathers_each_shards_stability_files(tmp_path: Path) -> None:
    plan = plan_suite(["eap", "edge-pruning"], ["tracr-reverse"], ablations=["zero"])
    (cheap, trains) = plan_cells(plan)
    for shard, cell in (("shard1", cheap), ("shard2", trains)):
        (tmp_path / shard).mkdir()
        record = _stability("eap", 0.5) if cell.skip is None else unmeasured_record(cell, 3, cell.skip)
        path = stability_path(tmp_path / shard / "stability", cell.key, 3, unmeasured=cell.skip is not None)
        write_record(record, path)
    summary = merge_results([tmp_path / "shard1", tmp_path / "shard2"], tmp_path / "all")
    assert summary.stability_copied == 2 and summary.copied == 0
    assert len(load_stabilities(tmp_path / "all" / "stability")) == 1
    assert [u.reason for u in load_unmeasured(tmp_path / "all" / "stability")] == [TRAINS]
    assert merge_results([tmp_path / "shard1"], tmp_path / "all").stability_copied == 0  # already there
