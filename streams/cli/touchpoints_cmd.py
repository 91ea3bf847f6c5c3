"""`parcours touchpoints`: KPIs per page, screen, store and support medium; satisfaction."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from streams.cli.app import app
from streams.cli.output import literal, print_result
from streams.cli.query_cmds import (
    DatabaseOpt,
    FormatOpt,
    FromOpt,
    ToOpt,
    check_format,
    parse_range,
    run_or_exit,
)
from streams.queries.query import QueryError
from streams.queries.touchpoints import (
    repeat_contacts_query,
    satisfaction_query,
    touchpoints_query,
)


@app.command()
def touchpoints(
    limit: Annotated[int, typer.Option(help="Touchpoints at most (the most visited).")] = 30,
    min_visits: Annotated[int, typer.Option(help="Leave out touchpoints with fewer visits.")] = 1,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    fmt: FormatOpt = "table",
    database: DatabaseOpt = None,
) -> None:
    """Per touchpoint: visits, persons, bounce, conversion, median time, friction per 100
    sessions; NPS/CSAT/CES per surveyed touchpoint; support repeat-contact rate per medium."""
    check_format(fmt)
    start, end = parse_range(date_from, date_to)
    try:
        parts = (
            (
                touchpoints_query(start, end, limit=limit, min_visits=min_visits),
                "Touchpoints (pages, screens, stores, support): the sessions through each",
            ),
            (satisfaction_query(start, end), "Satisfaction from surveys: NPS, CSAT %, CES"),
            (
                repeat_contacts_query(start, end),
                "Support: repeat contacts within 24 h, per medium",
            ),
        )
    except QueryError as exc:
        raise typer.BadParameter(str(exc)) from None
    for query, title in parts:
        result = run_or_exit(query, database=database)
        if fmt == "table" and not result.rows:  # type: ignore[attr-defined]
            # an empty result may come without column names: say so rather than print nothing
            Console().print(literal(f"{title}: none in the range"))
            continue
        print_result(result, fmt, title)  # type: ignore[arg-type]
