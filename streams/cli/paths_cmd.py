"""`parcours paths`: top touchpoint sequences, drop-off, channel transitions, Sankey JSON."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.console import Console

from streams.cli.app import app
from streams.cli.output import literal, print_result
from streams.cli.query_cmds import DatabaseOpt, FromOpt, ToOpt, parse_range, run_or_exit
from streams.queries.paths import (
    PathRow,
    channel_transitions_query,
    drop_off,
    path_result,
    paths_query,
    sankey,
)
from streams.queries.query import QueryError, QueryResult

FORMATS = ("table", "json", "csv", "sankey")


@app.command()
def paths(
    start: Annotated[
        str | None,
        typer.Option(help="Paths from this touchpoint on, e.g. 'web /sale', 'store paris-01'."),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Paths up to this touchpoint, e.g. 'web purchase'.")
    ] = None,
    depth: Annotated[int, typer.Option(help="Steps per path (1-10).")] = 4,
    limit: Annotated[int, typer.Option(help="Paths at most in the table.")] = 20,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="table | json | csv (the paths) | sankey (nodes and links JSON for a chart)",
        ),
    ] = "table",
    database: DatabaseOpt = None,
) -> None:
    """The most frequent sequences of touchpoints per session, with drop-off at each step,
    and the channel-transition matrix (within sessions and across a person's sessions)."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    begin, finish = parse_range(date_from, date_to)
    try:
        query = paths_query(begin, finish, start=start, end=end, depth=depth)
        transitions = channel_transitions_query(begin, finish)
    except QueryError as exc:
        raise typer.BadParameter(str(exc)) from None
    found: QueryResult = run_or_exit(query, database=database)  # type: ignore[assignment]
    rows = [PathRow(tuple(p), int(n)) for p, n in found.rows]
    if fmt == "sankey":
        print(orjson.dumps(sankey(rows), option=orjson.OPT_INDENT_2).decode())
        return
    if fmt != "table":
        print_result(path_result(rows, limit), fmt)
        return
    if not rows:
        Console().print(literal("No path in the range."))
        return
    where = f" from {start}" if start else f" to {end}" if end else ""
    print_result(
        path_result(rows, limit), fmt, f"Top paths{where} ({depth} steps at most), in sessions"
    )
    steps = drop_off(rows)
    print_result(
        QueryResult(
            ["step", "sessions", "dropped", "drop_off_rate"],
            [(d.step, d.sessions, d.dropped, d.drop_off_rate) for d in steps],
        ),
        fmt,
        "Drop-off at each step",
    )
    print_result(
        run_or_exit(transitions, database=database),  # type: ignore[arg-type]
        fmt,
        "Channel transitions (within sessions: changes; across sessions: first channels)",
    )
