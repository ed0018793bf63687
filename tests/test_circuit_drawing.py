"""Circuit drawings read from result files alone (`Graph.from_edge_names`): the rule that picks
k, the edges' classes (agreeing with the precision@k the result records), `bench draw` in its
three formats and its one-line errors, and a GPT-2-sized graph that costs only its chosen edges."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from bench.circuit_drawing import CLASS_STYLE, to_svg
from bench.circuit_view import FALLBACK_K, MAX_EMBEDDED, circuit_view
from bench.cli import main
from bench.graph import Graph, GraphSpec
from bench.ground_truth import load_ground_truth
from bench.report_circuits import circuits_html
from bench.results import RunResult, read_result

SVG = "{http://www.w3.org/2000/svg}"


def result_files(root: Path) -> dict[str, Path]:
    return {path.parts[-2]: path for path in sorted(root.rglob("*-seed*.json"))}


def results(root: Path) -> dict[str, RunResult]:
    return {method: read_result(path) for method, path in result_files(root).items()}


def test_drawing_at_ground_truth_size_has_the_hits_the_result_records(tracr_reverse_results: Path) -> None:
    runs = results(tracr_reverse_results)
    assert set(runs) == {"exact-patching", "eap", "random"}
    for method, result in runs.items():
        view = circuit_view(result)
        truth = load_ground_truth("tracr-reverse", view.graph)
        assert (view.k, view.rule) == (13, "k = |ground truth| = 13"), method
        counts = view.counts(view.k)
        precision = result.evaluation["ground_truth"]["full"]["edge"]["precision_at_k"]
        assert counts["tp"] == round(precision * 13), method
        assert counts["tp"] + counts["fp"] == 13
        top = [edge for edge in view.edges if edge.rank < view.k]
        assert [edge.rank for edge in top] == list(range(13))
        magnitudes = [abs(result.edge_scores[edge.name]) for edge in top]
        assert magnitudes == sorted(magnitudes, reverse=True)
        missed = set(truth.edges) - {edge.name for edge in top}
        undetectable = missed - set(truth.detectable["zero"])
        assert counts["missed-undetectable"] == len(undetectable) and counts["missed"] == len(missed - undetectable)
    random_counts = circuit_view(runs["random"]).counts(13)
    assert random_counts["missed"] > 0 and random_counts["missed-undetectable"] > 0, "both kinds of miss are tested"


def test_a_large_negative_score_ranks_first(tracr_reverse_results: Path) -> None:
    """Rankings use |score| (as the scoring does), so an edge that hurts the task is chosen too."""
    result = results(tracr_reverse_results)["random"]
    scores = {name: 0.5 for name in result.edge_scores}
    scores["a1.h0->m1"] = -3.0
    view = circuit_view(replace(result, edge_scores=scores))
    assert [(edge.name, edge.rank) for edge in view.edges[:2]] == [("a1.h0->m1", 0), ("input->a0.h0<q>", 1)]
    assert view.edges[0].edge_class(1, view.has_truth) == "fp"  # not in the ground truth


def test_without_ground_truth_k_is_the_first_grid_point_at_090(tracr_reverse_results: Path) -> None:
    result = results(tracr_reverse_results)["eap"]
    faith = {
        **result.evaluation["faithfulness"],
        "edges_kept": [1, 2, 4, 8, 16, 39, 77],
        "faithfulness": [0.1, 0.5, 0.89, 0.9, 0.95, 1.0, 1.0],
        "no_signal": False,
    }
    elsewhere = replace(result, key=replace(result.key, model="another-model"), evaluation={"faithfulness": faith})
    view = circuit_view(elsewhere)  # the ground truth is a circuit of tracr-reverse's model only
    assert view.n_truth == 0 and view.k == 8 and "smallest k on the faithfulness grid with f ≥ 0.9" in view.rule
    assert view.counts(8)["chosen"] == 8 and sum(view.counts(8).values()) == 8
    never = {**faith, "faithfulness": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.89]}
    assert circuit_view(replace(elsewhere, evaluation={"faithfulness": never})).k == FALLBACK_K
    silent = {**faith, "no_signal": True}
    assert circuit_view(replace(elsewhere, evaluation={"faithfulness": silent})).k == FALLBACK_K


def test_bench_draw_writes_svg_dot_and_json(tracr_reverse_results: Path, tmp_path: Path) -> None:
    path = result_files(tracr_reverse_results)["random"]
    view = circuit_view(read_result(path))
    drawn = view.drawn(view.k)
    assert main(["draw", str(path), "--out", str(tmp_path / "c.svg")]) == 0
    svg = ElementTree.parse(tmp_path / "c.svg").getroot()
    paths = svg.findall(f".//{SVG}path")
    titles = [p.find(f"{SVG}title").text.split(" · ")[0] for p in paths]
    assert sorted(titles) == sorted(edge.name for edge, _ in drawn)
    colours = Counter(p.get("stroke") for p in paths)
    assert colours == Counter(CLASS_STYLE[cls][0] for _, cls in drawn)
    # q, k and v inputs have three dash patterns, each the one the legend shows for it
    legend = svg.findall(f".//{SVG}line")
    legend_dash = {
        text.text: line.get("stroke-dasharray", "")
        for line, text in zip(legend, svg.findall(f".//{SVG}line/../{SVG}text"), strict=True)
    }
    dashes: dict[str, set[str]] = {}
    for element, name in zip(paths, titles, strict=True):
        port = re.search(r"<([qkv])>$", name)
        dashes.setdefault(port[1] if port else "", set()).add(element.get("stroke-dasharray", ""))
    assert set(dashes) == {"q", "k", "v", ""}, "the drawing has every kind of input"
    assert (
        all(len(patterns) == 1 for patterns in dashes.values()) and len({*dashes["q"], *dashes["k"], *dashes["v"]}) == 3
    )
    assert all(dashes[port] == {legend_dash[f"{port} input"]} for port in "qkv")
    assert dashes[""] == dashes["q"] == {""}, "other inputs and queries are solid"
    labels = [t.text for t in svg.findall(f".//{SVG}g/{SVG}text")]
    nodes = [label for label in labels if label in view.graph.nodes]
    assert nodes == view.graph.nodes_of([edge.name for edge, _ in drawn])

    assert main(["draw", str(path), "--k", "20", "--out", str(tmp_path / "c.json")]) == 0
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["k"] == 20 and data["counts"] == view.counts(20)
    assert sorted(e["name"] for e in data["edges"]) == sorted(edge.name for edge, _ in view.drawn(20))
    assert len({(n["x"], n["y"]) for n in data["nodes"]}) == len(data["nodes"]), "no two nodes share a place"

    assert main(["draw", str(path), "--out", str(tmp_path / "c.dot")]) == 0
    dot = (tmp_path / "c.dot").read_text()
    assert dot.startswith("// ") and "digraph circuit {" in dot
    assert len(re.findall(r'^  "[^"]+" -> "[^"]+" \[', dot, re.M)) == len(drawn)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "0", "--out", "c.svg"], "--k 0 is out of range; valid: 1 to 77"),
        (["--k", "78", "--out", "c.svg"], "--k 78 is out of range; valid: 1 to 77"),
        (["--out", "c.png"], "--out c.png: unknown format '.png'; valid: .svg, .dot, .json"),
    ],
)
def test_bench_draw_bad_input_gets_one_line(
    tracr_reverse_results: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = result_files(tracr_reverse_results)["eap"]
    assert main(["draw", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_bench_draw_names_a_result_whose_edges_are_not_one_graph(
    tracr_reverse_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(result_files(tracr_reverse_results)["eap"].read_text())
    data["edge_scores"]["m3->a0.h0<q>"] = 1.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert main(["draw", str(bad), "--out", str(tmp_path / "c.svg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}: field 'edge_scores'" in err and "m3 is not upstream of a0.h0<q>" in err


def test_gpt2_sized_graph_costs_only_its_chosen_edges(tracr_reverse_results: Path) -> None:
    template = results(tracr_reverse_results)["eap"]
    graph = Graph(GraphSpec(12, 12, (True,) * 12))
    assert graph.n_edges == 32_491
    values = np.random.default_rng(0).standard_normal(graph.n_edges).tolist()
    result = replace(
        template,
        key=replace(template.key, task="ioi", model="gpt2", ablation="corrupted"),
        edge_scores=dict(zip(graph.edge_names, values, strict=True)),
    )
    view = circuit_view(result, k=10)
    assert view.n_truth == 963 and view.max_k == 2 * 963 <= MAX_EMBEDDED
    assert len(view.edges) < 2 * 963 + 963 < graph.n_edges / 10
    drawn = view.drawn(10)
    svg = ElementTree.fromstring(to_svg(view, 10))
    assert len(svg.findall(f".//{SVG}path")) == len(drawn) == 10 + 963 - view.counts(10)["tp"]
    node_titles = {t.text for t in svg.findall(f".//{SVG}g/{SVG}title")} & set(graph.nodes)
    assert node_titles == set(graph.nodes_of([edge.name for edge, _ in drawn]))
    page = circuits_html([circuit_view(result)])
    assert len(page) < 150_000, "the report carries about 40 bytes per carried edge"


def test_report_names_a_result_whose_edges_are_not_its_models_graph(
    tracr_reverse_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(tracr_reverse_results, runs)
    path = result_files(runs)["random"]
    data = json.loads(path.read_text())
    data["edge_scores"]["m3->a0.h0<q>"] = 1.0
    path.write_text(json.dumps(data))
    assert main(["report", "--results-dir", str(runs), "--out", str(tmp_path / "lb.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error: random on tracr-reverse (tracr-reverse, zero ablation, seed 0): field 'edge_scores'" in err
