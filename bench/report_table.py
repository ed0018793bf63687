"""The leaderboard's HTML tables, written one way: a header row, one `<tr>` per row carrying
the `data-*` attributes the report's filters match it by, and its cells. Imports nothing of
CDBench, so every report section can use it without an import circle."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping


def data_attributes(values: Mapping[str, object]) -> str:
    """` data-KEY="VALUE"` for each item, escaped: what the filters match a row or section by.

    >>> data_attributes({"task": "ioi", "method": "a<b"})
    ' data-task="ioi" data-method="a&lt;b"'
    """
    return "".join(f' data-{key}="{html.escape(str(value))}"' for key, value in values.items())


def text_cell(value: object) -> str:
    """A `<td>` showing `value` as escaped text."""
    return f"<td>{html.escape(str(value))}</td>"


def table_html(columns: Iterable[object], rows: Iterable[tuple[str, Iterable[str]]], attributes: str) -> str:
    """A table of `columns` (escaped header text) and `rows`.

    Args:
        columns: the header cells, shown as text.
        rows: per row, the attributes of its `<tr>` (e.g. from `data_attributes`, each with
            its leading space) and its `<td>` elements, already written (e.g. `text_cell`).
        attributes: those of the `<table>` element, as written inside its tag.

    >>> table_html(["a"], [(' data-task="t"', [text_cell(1)])], 'class="x"')
    '<table class="x"><thead><tr><th>a</th></tr></thead><tbody><tr data-task="t"><td>1</td></tr></tbody></table>'
    """
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(f"<tr{attrs}>{''.join(cells)}</tr>" for attrs, cells in rows)
    return f"<table {attributes}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
