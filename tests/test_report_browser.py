"""The report as a reader uses it, in Debian's Chromium driven by Playwright: click a column
header and the rows reorder; pick a method and only its rows and drawings stay; move a k slider
and the drawing and its counts change; hover titles name each edge and its score; a screenshot
of a drawing is not blank. The script draws the same curves, classes and counts as Python."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from bench.circuit_drawing import CLASS_STYLE, counts_text
from bench.circuit_layout import edge_path, layout
from bench.circuit_view import CircuitView, circuit_view
from bench.report import load_results, write_report
from tests.browser import CHROMIUM_FLAGS, chromium

ROW_CELLS = "Array.from(document.querySelectorAll('table.leaderboard tbody tr')).map(r => [r.cells[3].textContent,"
DRAWN_EDGES = """fig => Array.from(fig.querySelectorAll('g.edges path')).map(p => (
  {title: p.querySelector('title').textContent, d: p.getAttribute('d'), cls: p.getAttribute('class')}))"""
SHOWN_NODES = "fig => Array.from(fig.querySelectorAll('g.n:not(.off) title')).map(t => t.textContent)"


def drawing_matches(page: Page, view: CircuitView, k: int) -> None:
    """The panel of `view` shows exactly Python's edges at `k`, on Python's curves and classes,
    with Python's counts, and only the nodes those edges touch."""
    figure = page.locator(f"figure.circuit[data-method='{view.result.key.method}']")
    assert figure.locator("output").text_content() == str(k)
    assert figure.locator(".counts").text_content() == counts_text(view, k)
    shown = figure.evaluate(DRAWN_EDGES)
    expected = {edge.name: (edge, cls) for edge, cls in view.drawn(k)}
    assert len(shown) == len(expected)
    lay = layout(view.graph)
    for path in shown:
        name, score, rank = path["title"].split(" · ")
        edge, cls = expected[name]
        assert path["d"] == edge_path(lay, edge.src, edge.dst, edge.port), name
        assert path["cls"].split()[:2] == ["e", cls] and rank == f"rank {edge.rank + 1}"
        assert float(score.removeprefix("score ")) == float(f"{edge.score:.4g}")
    assert figure.evaluate(SHOWN_NODES) == view.graph.nodes_of(list(expected))


def test_reader_sorts_filters_and_moves_k(tracr_reverse_results: Path, tmp_path: Path) -> None:
    report = write_report(tracr_reverse_results, tmp_path / "leaderboard.html")
    views = {r.key.method: circuit_view(r) for r in load_results(tracr_reverse_results)}
    roc = {m: v.result.evaluation["ground_truth"]["full"]["edge"]["roc_auc"] for m, v in views.items()}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(report.resolve().as_uri())

            # sort: a click on a header orders the rows by that column
            headers = page.locator("table.leaderboard th").all_text_contents()
            column = headers.index("ROC AUC (full GT)")
            rows = f"{ROW_CELLS} r.cells[{column}].dataset.value])"
            before = [method for method, _ in page.evaluate(rows)]
            assert before == sorted(views) != sorted(views, key=roc.get), "the click must have something to reorder"
            page.locator("table.leaderboard th").nth(column).click()
            after = page.evaluate(rows)
            assert [method for method, _ in after] == sorted(views, key=roc.get) != before
            assert [float(value) for _, value in after] == sorted(roc.values())

            # the drawings start at k = |ground truth| and follow a slider
            for view in views.values():
                drawing_matches(page, view, view.k)
            random_panel = page.locator("figure.circuit[data-method='random']")
            start = random_panel.locator("g.edges path").count()
            random_panel.locator("input[type=range]").fill("40")
            assert random_panel.locator("g.edges path").count() != start
            drawing_matches(page, views["random"], 40)
            page.locator(".k-all input").fill("5")
            for view in views.values():
                drawing_matches(page, view, 5)

            # filters keep one method's rows and drawings
            page.select_option("#filter-method", "eap")
            assert page.locator("table.leaderboard tbody tr:visible").count() == 1
            assert page.locator("figure.circuit:visible").get_attribute("data-method") == "eap"
            page.select_option("#filter-method", "")
            assert page.locator("figure.circuit:visible").count() == len(views)

            # a screenshot of a drawing shows its edges in their colours
            png = tmp_path / "circuit.png"
            page.locator("figure.circuit[data-method='exact-patching'] svg").screenshot(path=str(png))
            assert errors == []
        finally:
            browser.close()
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    green = np.array([int(CLASS_STYLE["tp"][0][i : i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(pixels - green).sum(-1) < 40).sum() > 200, "the true-positive edges are not visible"
    assert ((pixels.max(-1) - pixels.min(-1)) > 80).sum() > 300, "the drawing is blank"
