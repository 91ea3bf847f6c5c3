"""Printing query results as a rich table, JSON or CSV."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.queries.query import QueryResult, to_csv, to_json

FORMATS = ("table", "json", "csv")


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
    return "–" if value is None else str(value)


def render_table(result: QueryResult, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold cyan")
    for column in result.columns:
        table.add_column(
            column, justify="left" if column in ("breakdown", "event_type") else "right"
        )
    for row in result.rows:
        table.add_row(*(_cell(v, c) for v, c in zip(row, result.columns, strict=True)))
    return table


def print_result(result: QueryResult, fmt: str, title: str | None = None) -> None:
    if fmt == "json":
        print(to_json(result))
    elif fmt == "csv":
        print(to_csv(result), end="")
    else:
        Console().print(render_table(result, title))
