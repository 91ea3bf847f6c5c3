"""`parcours retention`: cohorts, repeat purchase, lifetime value and churn."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli.app import app
from streams.cli.output import print_result
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
from streams.queries.retention import retention_query, value_query


@app.command()
def retention(
    cohort: Annotated[
        str, typer.Option(help="first_visit or first_purchase: what puts a person in a cohort.")
    ] = "first_visit",
    period: Annotated[str, typer.Option(help="day, week or month.")] = "week",
    activity: Annotated[
        str,
        typer.Option(help="any (any event, store included) or purchase: what counts as active."),
    ] = "any",
    churn_days: Annotated[
        int, typer.Option(help="Churned: no activity in this many days before --to.")
    ] = 30,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    fmt: FormatOpt = "table",
    database: DatabaseOpt = None,
) -> None:
    """Retention by cohort; repeat purchase, lifetime value (30/90/365 d) and churn by cohort and
    acquisition channel."""
    check_format(fmt)
    start, end = parse_range(date_from, date_to)
    try:
        cohorts = retention_query(start, end, cohort=cohort, period=period, activity=activity)
        values = value_query(start, end, cohort=cohort, period=period, churn_days=churn_days)
    except QueryError as exc:
        raise typer.BadParameter(str(exc)) from None
    joined = cohort.replace("_", " ")
    active = "purchasing" if activity == "purchase" else "active"
    print_result(
        run_or_exit(cohorts, database=database),  # type: ignore[arg-type]
        fmt,
        f"Retention by {period} of {joined}: persons {active} in each later {period}",
    )
    print_result(
        run_or_exit(values, database=database),  # type: ignore[arg-type]
        fmt,
        f"Repeat purchase, lifetime value and churn (no activity for {churn_days} days), "
        "by cohort and acquisition channel",
    )
