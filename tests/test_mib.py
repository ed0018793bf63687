"""MIB interop: the matrix layout against EAP-IG's index formulas, CPR/CMD against a closed form,
MIB's pruning by hand, file validation line by line, and export -> import identity for every method."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.graph import Graph, GraphSpec
from bench.mib_export import export_results
from bench.mib_files import MibFileError, read_json, read_pt, read_scores, to_json_dict, to_pt_dict
from bench.mib_layout import MibLayout, folder_name
from bench.mib_scoring import MIB_PERCENTAGES, mib_areas, mib_curves, mib_prune, mib_top_n
from bench.runner import RunRequest, execute
from methods import METHODS
from methods.file_import import file_options

GPT2 = GraphSpec(n_layers=12, n_heads=12, mlp_layers=(True,) * 12)


def eap_ig_indices(name: str, n_heads: int) -> tuple[int, int]:
    """(row, column) of an edge from EAP-IG's `_forward_index` / `_backward_index` formulas
    (`hannamw/EAP-IG` `src/eap/graph.py`), written out here independently of `MibLayout`."""
    src, dst = name.split("->")
    if src == "input":
        row = 0
    elif src.startswith("m"):
        row = 1 + int(src[1:]) * (n_heads + 1) + n_heads
    else:
        layer, head = (int(part[1:]) for part in src.split("."))
        row = 1 + layer * (n_heads + 1) + head
    if dst == "logits":
        return row, -1
    if dst.startswith("m"):
        return row, int(dst[1:]) * (3 * n_heads + 1) + 3 * n_heads
    node, qkv = dst[:-3], dst[-2]
    layer, head = (int(part[1:]) for part in node.split("."))
    return row, layer * (3 * n_heads + 1) + "qkv".index(qkv) * n_heads + head


def test_gpt2_layout_has_32491_edges_at_eap_ig_indices() -> None:
    graph = Graph(GPT2)
    layout = MibLayout(graph)
    assert graph.n_edges == 32491 and int(layout.real_edge_mask.sum()) == 32491
    assert layout.shape == (1 + 12 * 13, 12 * 37 + 1)
    n_dst = layout.shape[1]
    expected = [eap_ig_indices(name, 12) for name in graph.edge_names]
    assert layout.edge_src.tolist() == [row for row, _ in expected]
    assert layout.edge_dst.tolist() == [col % n_dst for _, col in expected]
    values = torch.randn(graph.n_edges)
    assert torch.equal(layout.to_edges(layout.to_matrix(values)), values)


def test_gpt2_export_round_trips_json_and_pt(tmp_path: Path) -> None:
    graph = Graph(GPT2)
    values = torch.randn(graph.n_edges)
    keep = torch.rand(graph.n_edges) < 0.1
    (tmp_path / "g.json").write_text(json.dumps(to_json_dict(graph, values, keep, 768)))
    torch.save(to_pt_dict(graph, values, keep, 768), tmp_path / "g.pt")
    data = json.loads((tmp_path / "g.json").read_text())
    assert len(data["edges"]) == 32491 and data["cfg"] == {
        "n_layers": 12,
        "n_heads": 12,
        "parallel_attn_mlp": False,
        "d_model": 768,
    }
    for circuit in (read_json(tmp_path / "g.json", graph), read_pt(tmp_path / "g.pt", graph)):
        assert torch.equal(circuit.scores, values.double()) and torch.equal(circuit.in_graph, keep)
    pt = torch.load(tmp_path / "g.pt", weights_only=True)
    assert pt["edges_scores"].shape == (157, 445)
    assert int(torch.isfinite(pt["edges_scores"]).sum()) == 32491  # -inf where no edge exists


SMALL = GraphSpec(n_layers=2, n_heads=2, mlp_layers=(True, True))


def _write_json(path: Path, mutate) -> Path:
    graph = Graph(SMALL)
    data = to_json_dict(
        graph, torch.arange(graph.n_edges, dtype=torch.float32), torch.ones(graph.n_edges, dtype=bool), 8
    )
    mutate(data)
    path.write_text(json.dumps(data))
    return path


def test_bad_json_is_refused_one_line_per_problem(tmp_path: Path) -> None:
    graph = Graph(SMALL)

    def wrong_name(data):
        data["edges"]["a0.h0->a0.h1<q>"] = data["edges"].pop("a0.h0->a1.h1<q>")

    def missing(data):
        del data["edges"]["m0->logits"]

    def nan(data):
        data["edges"]["input->m1"]["score"] = float("nan")

    cases = {
        "wrong.json": (
            wrong_name,
            ["unknown edge 'a0.h0->a0.h1<q>'", "edge 'a0.h0->a1.h1<q>' of the model's graph is missing"],
        ),
        "missing.json": (
            missing,
            [
                "edge 'm0->logits' of the model's graph is missing",
                f"{graph.n_edges - 1} edges in the file; the model's graph has {graph.n_edges}",
            ],
        ),
        "nan.json": (nan, ["edge 'input->m1' has score nan"]),
    }
    for name, (mutate, expected) in cases.items():
        path = _write_json(tmp_path / name, mutate)
        with pytest.raises(MibFileError) as err:
            read_json(path, graph)
        lines = str(err.value).splitlines()
        assert len(lines) == len(expected), lines
        for line, fragment in zip(lines, expected, strict=True):
            assert line.startswith(f"{path}: ") and fragment in line, line

    def all_three(data):
        wrong_name(data)
        missing(data)
        nan(data)

    path = _write_json(tmp_path / "all.json", all_three)
    with pytest.raises(MibFileError) as err:
        read_json(path, graph)
    text = str(err.value)
    assert "unknown edge 'a0.h0->a0.h1<q>'" in text and "'m0->logits' of the model's graph is missing" in text
    assert "'input->m1' has score nan" in text
    # a file for another model: the count does not match, said in one line before anything else
    other = Graph(GraphSpec(n_layers=3, n_heads=2, mlp_layers=(True,) * 3))
    with pytest.raises(MibFileError, match=r"cfg describes 2 layers x 2 heads; the model has 3 layers x 2 heads"):
        read_json(_write_json(tmp_path / "ok.json", lambda d: None), other)


def test_bad_pt_is_refused(tmp_path: Path) -> None:
    graph = Graph(SMALL)
    good = to_pt_dict(graph, torch.zeros(graph.n_edges), torch.ones(graph.n_edges, dtype=bool), 8)
    bad = dict(good, edges_scores=good["edges_scores"][:, :-1])
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(MibFileError, match=r"edges_scores has shape \(7, 14\); the model's graph needs \(7, 15\)"):
        read_pt(tmp_path / "shape.pt", graph)
    scores = good["edges_scores"].clone()
    scores[0, 0] = math.nan  # input->a0.h0<q>
    torch.save(dict(good, edges_scores=scores), tmp_path / "nan.pt")
    with pytest.raises(MibFileError, match=r"edge 'input->a0.h0<q>' has score nan"):
        read_pt(tmp_path / "nan.pt", graph)
    torch.save({k: v for k, v in good.items() if k != "dst_nodes"}, tmp_path / "keys.pt")
    with pytest.raises(MibFileError, match="key 'dst_nodes' is missing"):
        read_pt(tmp_path / "keys.pt", graph)


def test_prune_by_hand() -> None:
    graph = Graph(SMALL)
    index = graph.edge_position
    keep = torch.zeros(graph.n_edges, dtype=torch.bool)
    # a chain input -> a0.h0 -> m1 -> logits, a dangling a0.h1->logits (a0.h1 has no input),
    # and a dangling input->a1.h0<v> (a1.h0 has no output)
    for name in ("input->a0.h0<k>", "a0.h0->m1", "m1->logits", "a0.h1->logits", "input->a1.h0<v>"):
        keep[index[name]] = True
    pruned = mib_prune(graph, keep)
    assert [graph.edge_names[i] for i in torch.nonzero(pruned).flatten()] == [
        "input->a0.h0<k>",
        "a0.h0->m1",
        "m1->logits",
    ]
    # dropping m1->logits leaves nothing: the chain unravels node by node
    keep[index["m1->logits"]] = False
    assert not mib_prune(graph, keep).any()


def test_cpr_and_cmd_match_a_closed_form() -> None:
    """One layer of H heads; the metric is linear in the circuit: head i adds c_i through its
    edge to the logits. Signed ranking: pairs (input->a0.hi<q>, a0.hi->logits) with score H - i,
    so the top k hold floor(k/2) whole pairs (an odd k's lone input edge is pruned: its head has
    no output). Each <k> input edge scores -(H + 10): first by |score|, pruned until its head's
    logits edge joins."""
    H = 200
    graph = Graph(GraphSpec(n_layers=1, n_heads=H, mlp_layers=(True,)))
    n = graph.n_edges
    assert n == 5 * H + 3
    index = graph.edge_position
    scores = torch.zeros(n)
    weights = torch.zeros(n)
    c = 1.0 + np.arange(H) % 7  # contributions of the heads
    for i in range(H):
        scores[index[f"input->a0.h{i}<q>"]] = H - i
        scores[index[f"a0.h{i}->logits"]] = H - i
        scores[index[f"input->a0.h{i}<k>"]] = -(H + 10)
        weights[index[f"a0.h{i}->logits"]] = float(c[i])

    def mean_metric(circuits: torch.Tensor) -> np.ndarray:
        return (circuits.double() * weights.double()).sum(1).numpy()

    got = mib_curves(graph, scores, mean_metric)
    ks = [int(p * n) for p in MIB_PERCENTAGES]
    assert ks == [1, 2, 5, 10, 20, 50, 100, 200, 501, 1003]
    total = c.sum()

    def signed_f(k: int) -> float:
        return c[: min(k // 2, H)].sum() / total

    # absolute: the H <k> edges first (ties in MIB's matrix order: row `input`, head order), all
    # pruned while their heads have no output; then the pairs, <q> before logits (row 0 before
    # row 1 + i), so the logits edge of pair i is the (2i + 2)-th edge past the <k> block
    def absolute_f(k: int) -> float:
        return c[: min(max(k - H, 0) // 2, H)].sum() / total

    expected_signed = [signed_f(k) for k in ks]
    expected_absolute = [absolute_f(k) for k in ks]
    expected_signed[-1] = expected_absolute[-1] = 1.0
    assert got.faithfulness_signed == pytest.approx(expected_signed, abs=1e-12)
    assert got.faithfulness_absolute == pytest.approx(expected_absolute, abs=1e-12)
    x = np.array(MIB_PERCENTAGES)
    cpr = sum((x[i + 1] - x[i]) * (expected_signed[i] + expected_signed[i + 1]) / 2 for i in range(9))
    distance = [abs(1 - f) for f in expected_absolute]
    cmd = sum((x[i + 1] - x[i]) * (distance[i] + distance[i + 1]) / 2 for i in range(9))
    assert got.cpr == pytest.approx(cpr, abs=1e-12) and got.cmd == pytest.approx(cmd, abs=1e-12)
    assert got.edges_signed[:3] == [0, 2, 4]  # the lone <q> edge of k = 1 and k = 5 is pruned


def test_linear_axis_weights_of_sparse_and_half_circuits() -> None:
    """On MIB's axis the circuits of at most 5% of the edges weigh 0.074 (the README's "about
    7%"), the 50% circuit 0.4: each point weighs half its two neighbouring intervals."""
    sparse = [1.0] * 6 + [0.0] * 4
    assert mib_areas(sparse)[0] == pytest.approx((0.05 - 0.001) + (0.1 - 0.05) / 2)
    assert mib_areas(sparse)[0] == pytest.approx(0.074)
    half = [0.0] * 8 + [1.0, 0.0]
    assert mib_areas(half)[0] == pytest.approx(0.4)
    assert mib_areas([1.0] * 10) == pytest.approx((0.999, 0.0))


TRAINED = ("edge-pruning", "subnetwork-probing")  # 300 optimiser steps each: the slow part


def _results(methods: list[str], root: Path) -> list:
    return [execute(RunRequest(m, "tracr-xproportion", n_examples=16), root)[0] for m in methods]


@pytest.fixture(scope="module")
def offline_results(tmp_path_factory) -> list:
    """Every method but the two trained ones (HISP's node scores included); those two are in the
    slow test below, so together they cover every method."""
    names = [m for m in METHODS.names() if m != "file" and m not in TRAINED]
    return _results(names, tmp_path_factory.mktemp("runs"))


def _assert_round_trip(results: list, tmp_path: Path, file_type: str) -> None:
    out = tmp_path / "submission"
    export_results(results, out, file_type, "both")
    folder = folder_name("tracr-xproportion", "tracr-xproportion")
    assert folder == "tracr-xproportion_tracr-xproportion"
    for original in results:
        method = original.key.method
        for ranking in ("abs-True", "abs-False"):
            path = out / method / ranking / folder / f"importances.{file_type}"
            assert path.exists(), path
        options = file_options(f"file:{out / method / 'abs-True' / folder / f'importances.{file_type}'}")
        imported, _ = execute(
            RunRequest("file", "tracr-xproportion", n_examples=16, options=options), tmp_path / "runs"
        )
        assert imported.edge_scores == original.edge_scores, method
        assert imported.node_scores == original.node_scores, method
        assert imported.evaluation == original.evaluation, method


@pytest.mark.parametrize("file_type", ["json", "pt"])
def test_export_then_import_gives_identical_scores(offline_results, tmp_path: Path, file_type) -> None:
    assert any(r.node_scores for r in offline_results)  # HISP scores nodes: their scores travel too
    _assert_round_trip(offline_results, tmp_path, file_type)


@pytest.mark.slow
def test_export_then_import_of_the_trained_methods(tmp_path: Path) -> None:
    results = _results(list(TRAINED), tmp_path / "runs")
    assert any(r.node_scores for r in results)  # subnetwork probing scores nodes
    for file_type in ("json", "pt"):
        _assert_round_trip(results, tmp_path / file_type, file_type)


def test_circuit_folder_gives_back_each_nested_circuit(offline_results, tmp_path: Path) -> None:
    original = next(r for r in offline_results if r.key.method == "exact-patching")
    export_results([original], tmp_path, "json", "absolute", circuits=True)
    folder = tmp_path / "abs-True" / folder_name("tracr-xproportion", "tracr-xproportion")
    files = sorted(folder.iterdir())
    assert len(files) == 9
    graph = Graph.from_edge_names(original.edge_scores)
    counts, _ = read_scores(folder, graph)
    for file in files:
        circuit = read_json(file, graph).in_graph
        k = int(circuit.sum())
        top = torch.argsort(counts, descending=True, stable=True)[:k]
        assert set(top.tolist()) == set(torch.nonzero(circuit).flatten().tolist())


def test_cli_export_and_file_method(offline_results, tmp_path: Path, capsys) -> None:
    """`bench export` and `bench run --method file:` as the README shows them, in process."""
    from bench.cli import main
    from bench.results import write_result

    original = next(r for r in offline_results if r.key.method == "eap-ig-inputs")
    result_path = write_result(original, tmp_path / "runs")
    out = tmp_path / "submission"
    assert main(["export", str(result_path), "--format", "mib", "--ranking", "absolute", "--out", str(out)]) == 0
    exported = out / "abs-True" / "tracr-xproportion_tracr-xproportion" / "importances.json"
    assert exported.exists() and not (out / "abs-False").exists()
    # task and model come from the exported cfg: no --task needed
    args = ["run", "--method", f"file:{exported}", "--examples", "16", "--results-dir", str(tmp_path / "imported")]
    assert main(args) == 0
    (imported,) = (tmp_path / "imported").rglob("*-seed0-*.json")
    assert json.loads(imported.read_text())["evaluation"] == json.loads(result_path.read_text())["evaluation"]
    assert main(["export", str(tmp_path / "nothing"), "--format", "mib", "--ranking", "both", "--out", str(out)]) == 2
    assert "no such result file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:  # the ranking is an explicit choice
        main(["export", str(result_path), "--format", "mib", "--out", str(out)])
    assert err.value.code == 2
    assert main(["run", "--method", f"file:{tmp_path / 'missing.json'}", "--task", "tracr-xproportion"]) == 2
    assert "missing.json: no such file or folder" in capsys.readouterr().err


def test_task_and_model_from_mib_folder_name(tmp_path: Path) -> None:
    from bench.mib_import import file_request

    folder = tmp_path / "ioi_gpt2"
    folder.mkdir()
    (folder / "importances.json").write_text(json.dumps({"cfg": {"n_layers": 12, "n_heads": 12}}))
    method, options, task, model = file_request(f"file:{folder}", {}, None, None)
    assert (method, task, model) == ("file", "ioi", "gpt2")
    assert options["path"] == str(folder.resolve()) and len(str(options["sha256"])) == 16
    # an explicit --task wins, and then the folder's model is not assumed
    assert file_request(f"file:{folder}", {}, "greater-than", None)[2:] == ("greater-than", None)


def test_unknown_node_is_named(tmp_path: Path) -> None:
    graph = Graph(SMALL)
    path = _write_json(tmp_path / "node.json", lambda d: d["nodes"].update({"a5.h0": {"in_graph": True}}))
    with pytest.raises(MibFileError, match=r"node\.json: unknown node 'a5\.h0'"):
        read_json(path, graph)


def eap_ig_topn_and_prune(graph: Graph, scores: torch.Tensor, n: int, absolute: bool) -> set[str]:
    """MIB's `apply_topn(n, absolute, prune=True)` written the library's way: dense matrices built
    from its index formulas, argsort over the flattened matrix (stable here), nodes kept when they
    have incoming and outgoing edges, repeated until the node set stops changing."""
    n_heads, n_layers = graph.spec.n_heads, graph.spec.n_layers
    n_fwd, n_bwd = 1 + n_layers * (n_heads + 1), n_layers * (3 * n_heads + 1) + 1
    matrix = torch.full((n_fwd, n_bwd), -math.inf, dtype=torch.float64)
    names = {}
    for name, value in zip(graph.edge_names, scores.tolist(), strict=True):
        row, col = eap_ig_indices(name, n_heads)
        matrix[row, col % n_bwd] = abs(value) if absolute else value
        names[(row, col % n_bwd)] = name
    forward_to_backward = torch.zeros(n_fwd, n_bwd, dtype=torch.bool)
    for layer in range(n_layers):
        for head in range(n_heads):
            for letter in "qkv":
                _, col = eap_ig_indices(f"input->a{layer}.h{head}<{letter}>", n_heads)
                forward_to_backward[1 + layer * (n_heads + 1) + head, col] = True
        _, col = eap_ig_indices(f"input->m{layer}", n_heads)
        forward_to_backward[1 + layer * (n_heads + 1) + n_heads, col] = True
    order = torch.argsort(matrix.view(-1), descending=True, stable=True)
    in_graph = torch.zeros(n_fwd * n_bwd, dtype=torch.bool)
    in_graph[order[:n]] = True
    in_graph = in_graph.view(n_fwd, n_bwd)
    nodes = torch.zeros(n_fwd, dtype=torch.bool)
    while True:
        outgoing = in_graph.any(dim=1)
        incoming = (forward_to_backward.float() @ in_graph.any(dim=0).float()) > 0
        incoming[0] = True
        new_nodes = outgoing & incoming
        same = torch.equal(new_nodes, nodes)
        nodes = new_nodes
        backward = (nodes.float() @ forward_to_backward.float()) > 0
        backward[-1] = True
        in_graph &= nodes[:, None] & backward[None, :]
        if same:
            break
    return {names[(r, c)] for r, c in torch.nonzero(in_graph).tolist()}


def test_top_n_and_prune_equal_the_library_way_with_ties() -> None:
    graph = Graph(GraphSpec(n_layers=3, n_heads=3, mlp_layers=(True,) * 3))
    layout = MibLayout(graph)
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(-3, 4, (graph.n_edges,), generator=gen).double()  # many ties, both signs
    for n in [0, 1, 2, 5, 10, 20, 50, 100, graph.n_edges]:
        for absolute in (False, True):
            mine = mib_prune(graph, mib_top_n(layout, scores, n, absolute))
            got = {graph.edge_names[i] for i in torch.nonzero(mine).flatten().tolist()}
            assert got == eap_ig_topn_and_prune(graph, scores, n, absolute), (n, absolute)


def test_export_refuses_two_runs_for_one_folder_and_filters_pick_one(offline_results, tmp_path: Path, capsys) -> None:
    from bench.cli import main
    from bench.results import write_result

    chosen = [r for r in offline_results if r.key.method in ("eap", "exact-patching")]
    for result in chosen:
        write_result(result, tmp_path / "runs")
        write_result(replace(result, key=replace(result.key, seed=1)), tmp_path / "runs")
    args = ["export", str(tmp_path / "runs"), "--format", "mib", "--ranking", "signed", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "two results would share tracr-xproportion_tracr-xproportion" in err and "--seed" in err
    assert main([*args, "--seed", "1", "--method", "eap"]) == 0
    assert (tmp_path / "o" / "abs-False" / "tracr-xproportion_tracr-xproportion" / "importances.json").exists()
    assert main([*args, "--ablation", "zero"]) == 2
    assert "no result matches the filters; found: eap/corrupted/seed 0" in capsys.readouterr().err
