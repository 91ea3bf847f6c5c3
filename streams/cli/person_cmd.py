"""`parcours person ID`: one person's journey, to look behind a number."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.console import Console

from streams.cli.app import app
from streams.cli.output import FORMATS, error_line, literal, print_result, render_table
from streams.cli.query_cmds import READ_ONLY, DatabaseOpt, analyst_reader
from streams.clickhouse.errors import StorageError
from streams.queries.person import person_journeys
from streams.queries.query import QueryError, QueryResult

err = Console(stderr=True)


@app.command()
def person(
    ident: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="A customer id, a device id or a person id (anon:<device>, guest:…)."
        ),
    ],
    fmt: Annotated[
        str,
        typer.Option("--format", help="table | json (everything) | csv (the events, one row each)"),
    ] = "table",
    database: DatabaseOpt = None,
) -> None:
    """Every event of a person across devices and channels, by session, with friction signals
    and identity links (a device that changed hands: one journey per owner)."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    try:
        with analyst_reader(database) as reader:
            journeys = person_journeys(reader, ident, READ_ONLY)
    except QueryError as exc:
        raise typer.BadParameter(str(exc)) from None
    except StorageError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None
    if not journeys:
        err.print(error_line("not found:", f"no customer, device or person {ident!r}"))
        raise typer.Exit(1)
    if fmt == "json":
        docs = [j.as_dict() for j in journeys]
        print(orjson.dumps(docs, option=orjson.OPT_INDENT_2).decode())
        return
    if fmt == "csv":
        rows = [(j.person, *r) for j in journeys for r in j.events.rows]
        columns = ["person", *journeys[0].events.columns]
        print_result(QueryResult(columns, rows), "csv")
        return
    out = Console()
    for journey in journeys:
        title = f"Person {journey.person}"
        if journey.also:
            title += f" (the id also resolves to {', '.join(journey.also)})"
        out.print(literal(title), style="bold")
        for part, name, shown in (
            (journey.sessions, "Sessions", SESSION_COLUMNS),
            (journey.events, "Events, in time order (session after merges)", EVENT_COLUMNS),
            (journey.signals, "Friction signals", SIGNAL_COLUMNS),
            (journey.links, "Identity links (devices of this customer)", None),
        ):
            out.print(render_table(_only(part, shown), f"{name}: {len(part.rows)}"))


#: What fits a terminal; --format json has every column.
SESSION_COLUMNS = ("session_id", "started_at", "channels", "events", "converted", "revenue")
EVENT_COLUMNS = ("occurred_at", "session_id", "channel", "device_id", "event_type", "page", "value")
SIGNAL_COLUMNS = ("occurred_at", "type", "session_id", "channel")


def _only(result: QueryResult, columns: tuple[str, ...] | None) -> QueryResult:
    if columns is None:
        return result
    index = [result.columns.index(c) for c in columns]
    return QueryResult(list(columns), [tuple(row[i] for i in index) for row in result.rows])
