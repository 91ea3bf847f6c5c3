"""A query is SQL text plus parameters; running it gives columns and rows; formats print them."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from streams.errors import ParcoursError


class QueryError(ParcoursError):
    """Base of the query builders' exceptions (bad steps, unknown breakdowns, …)."""


@dataclass(frozen=True)
class Query:
    """SQL with `{name:Type}` placeholders bound server-side by clickhouse-connect."""

    sql: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def run_query(
    client: Client, query: Query, *, settings: dict[str, Any] | None = None
) -> QueryResult:
    """Run `query`; `settings` go with it (e.g. `{"readonly": 1}` for an analyst's SQL)."""
    result = client.query(query.sql, parameters=query.parameters, settings=settings)
    return QueryResult(list(result.column_names), [tuple(r) for r in result.result_rows])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    return value


def to_json(result: QueryResult) -> str:
    rows = [{k: _plain(v) for k, v in r.items()} for r in result.records()]
    return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()


#: A cell starting with one of these is a formula to a spreadsheet (`=HYPERLINK(…)` from a
#: stored page name); OWASP's advice: prefix it with a single quote so it is read as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


#: Control characters (and bidi overrides) are shown as escapes: a CSV goes to a terminal too.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _csv_cell(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, str):
        if value.startswith(_FORMULA_STARTS):
            value = "'" + value
        return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), value)
    return value


def to_csv(result: QueryResult) -> str:
    """CSV for spreadsheets: text cells that would be formulas are neutralised (numbers,
    negative ones included, are written as numbers)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_csv_cell(c) for c in result.columns])
    writer.writerows([_csv_cell(v) for v in row] for row in result.rows)
    return out.getvalue()
