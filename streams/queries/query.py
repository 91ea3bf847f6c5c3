"""A query is SQL text plus parameters; running it gives columns and rows; formats print them."""

from __future__ import annotations

import csv
import io
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


def run_query(client: Client, query: Query) -> QueryResult:
    result = client.query(query.sql, parameters=query.parameters)
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


def to_csv(result: QueryResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(result.columns)
    writer.writerows([_plain(v) for v in row] for row in result.rows)
    return out.getvalue()
