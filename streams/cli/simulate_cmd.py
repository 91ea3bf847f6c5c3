"""`parcours simulate`: seeded omnichannel traffic in the ingest JSON-lines format."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streams.cli.app import app
from streams.simulate import SimulationConfig, SimulationError, parse_incident, write_ingest_file
from streams.simulate.config import DEFAULT_START


@app.command()
def simulate(
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 5_000,
    days: Annotated[float, typer.Option(min=0.01, help="Length of the period, in days.")] = 7.0,
    start: Annotated[
        str, typer.Option(help="Start of the period (ISO 8601).")
    ] = DEFAULT_START.isoformat(),
    seed: Annotated[int, typer.Option(help="Same seed, same output.")] = 1,
    incident: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND:START:END[:CHANNEL], e.g. payment_outage:+3d10h:+3d14h (repeatable)."
        ),
    ] = None,
    malformed_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.005,
    duplicate_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.005,
    batch_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.05,
    out: Annotated[str, typer.Option(help="Output file, or - for stdout.")] = "-",
) -> None:
    """Write realistic omnichannel traffic (with friction, incidents and noise) as JSON lines."""
    err = Console(stderr=True)
    try:
        begin = datetime.fromisoformat(start)
        config = SimulationConfig(
            customers=customers,
            days=days,
            start=begin,
            seed=seed,
            incidents=tuple(parse_incident(text, begin) for text in incident or ()),
            malformed_rate=malformed_rate,
            duplicate_rate=duplicate_rate,
            batch_rate=batch_rate,
        )
    except (SimulationError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    stats = write_ingest_file(config, sys.stdout.buffer if out == "-" else Path(out))
    err.print(
        f"simulated {stats.events:,} events in {stats.lines:,} lines "
        f"({stats.malformed:,} malformed, {stats.duplicates:,} duplicated) -> {out}"
    )
