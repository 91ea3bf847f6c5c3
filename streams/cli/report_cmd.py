"""`parcours report`: the journey report as one HTML file that opens offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streams.cli.app import app
from streams.cli.output import error_line, literal
from streams.cli.query_cmds import DatabaseOpt, FromOpt, ToOpt, client_or_exit, parse_range
from streams.clickhouse.client import session_client
from streams.errors import ParcoursError
from streams.report.build import write_report
from streams.settings import load_settings

err = Console(stderr=True)


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Write the journey report (funnel, conversion, revenue, friction, bounce) as one HTML file.

    Without --from/--to it covers every stored event. Reads with the analyst DSN when set."""
    # Parsed as every query command parses them; what is not given comes from the data.
    start = parse_range(date_from, None)[0] if date_from else None
    end = parse_range(None, date_to)[1] if date_to else None
    analyst = load_settings().analyst_dsn
    reader = None
    try:
        # as the query commands read: the analyst's DSN when set, else the pipeline's, migrated
        if analyst is not None:
            reader = session_client(analyst.get_secret_value(), database)
        written = write_report(reader or client_or_exit(database), out, start, end)
    except ParcoursError as exc:  # storage errors included
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None
    finally:
        if reader is not None:
            reader.close()
    Console().print(
        literal(
            f"report: {written.path} ({written.bytes / 1e6:.1f} MB, {len(written.charts)} charts, "
            f"{written.period})"
        )
    )
