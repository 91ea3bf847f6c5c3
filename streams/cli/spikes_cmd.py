"""`parcours spikes`: the periods in which a friction rate was abnormally high."""

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
from streams.queries.spikes import spikes_query


@app.command()
def spikes(
    signal_type: Annotated[
        str | None, typer.Option("--type", help="Only this friction type (e.g. payment_failure).")
    ] = None,
    channel: Annotated[
        str | None, typer.Option(help="Only this channel: web, app or store.")
    ] = None,
    device_type: Annotated[
        str | None,
        typer.Option(
            help="Only this device type (desktop, mobile, tablet, kiosk, pos); '' for the "
            "channel's every device together."
        ),
    ] = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    fmt: FormatOpt = "table",
    database: DatabaseOpt = None,
) -> None:
    """Friction spikes: when a friction rate (per checkout attempt, per session, ...) was
    abnormally high for its hour of the week, with observed and expected rates (in %); per
    channel (device type '') and per device type where there is enough traffic to judge."""
    check_format(fmt)
    start, end = parse_range(date_from, date_to)
    try:
        query = spikes_query(start, end, signal_type, channel, device_type)
    except QueryError as exc:
        raise typer.BadParameter(str(exc)) from None
    print_result(run_or_exit(query, database=database), fmt, "Friction spikes")  # type: ignore[arg-type]
