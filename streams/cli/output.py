"""Printing query results as a rich table, JSON or CSV.

Everything printed here comes from the database, and the database holds what producers sent:
it is text, never markup. A page named `[/oops]` crashed `parcours sql` (Rich read it as a
closing tag), `[link=…]` made links and raw ANSI escapes reached the terminal (issue 12). Every
cell, header and title goes out as a `rich.text.Text` (printed literally), with control
characters and bidirectional overrides shown as escapes.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from streams.queries.query import QueryResult, to_csv, to_json

FORMATS = ("table", "json", "csv")


#: C0 and C1 controls, DEL, and the Unicode bidi overrides/isolates (they reorder what follows).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\u202e`)."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def literal(text: str) -> Text:
    """Text printed as it is: no markup, no control characters."""
    return Text(printable(text))


def error_line(label: str, exc: BaseException | str) -> str:
    """One line of Rich markup for an error: the label styled, the message literal (an error
    often quotes stored data or SQL), and only its first line when it has several."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"[red]{label}[/red] {escape(printable(message))}"


def _cell(value: Any, column: str) -> str:
    if isinstance(value, float):
        if value != value:
            return "–"
        return f"{value:.1%}" if "rate" in column or "conversion" in column else f"{value:,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, bytes):  # a column read as bytes: show it, do not decode it
        return repr(value)
    return "–" if value is None else str(value)


def render_table(result: QueryResult, title: str | None = None) -> Table:
    table = Table(
        title=literal(title) if title else None, title_justify="left", header_style="bold cyan"
    )
    for column in result.columns:
        table.add_column(
            literal(column), justify="left" if column in ("breakdown", "event_type") else "right"
        )
    for row in result.rows:
        table.add_row(*(literal(_cell(v, c)) for v, c in zip(row, result.columns, strict=True)))
    return table


def print_result(result: QueryResult, fmt: str, title: str | None = None) -> None:
    if fmt == "json":
        print(to_json(result))
    elif fmt == "csv":
        print(to_csv(result), end="")
    else:
        Console().print(render_table(result, title))
