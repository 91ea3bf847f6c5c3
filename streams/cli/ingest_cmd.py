"""`parcours ingest FILE…`: JSON-lines files through the embedded pipeline into ClickHouse."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from schemas import TOPIC_CHANNELS
from streams.cli.app import app
from streams.cli.config_cmd import journey_config_or_exit
from streams.cli.output import error_line
from streams.clickhouse.client import connect
from streams.clickhouse.errors import StorageError
from streams.clickhouse.person_fold import fold_persons, merge_versions
from streams.embedded.runner import RunStats
from streams.embedded.wiring import open_embedded_runner
from streams.privacy.errors import PrivacyError
from streams.settings import load_settings

console = Console(stderr=True)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


def input_key(path: Path) -> str:
    """How a file is recognised from one run to the next: its name and its first line.

    Not its whole content: a file that grew since (an export appended to) is the same input,
    read on from where the last run stopped. Not its name alone: a daily export written under
    the same name each day is a new input."""
    with path.open("rb") as fh:
        first = fh.readline()
    return f"file:{path.name}#{hashlib.blake2b(first, digest_size=8).hexdigest()}"


def ingest_files(
    files: list[Path],
    topic: str | None,
    *,
    show_progress: bool,
    metrics_port: int | None = None,
    final: bool = False,
    fresh: bool = False,
    database: str | None = None,
    metrics_addr: str = "127.0.0.1",
) -> RunStats:
    """Run files through the embedded pipeline, carrying on from the database's saved journey
    state (unless `fresh`); `final`: the input is complete, close everything at its end."""
    settings, config = load_settings(), journey_config_or_exit()
    if metrics_port is not None:
        from streams.metrics import serve_metrics

        serve_metrics(metrics_port, metrics_addr)
    with open_embedded_runner(settings, database, config=config, resume=not fresh) as runner:
        total = sum(f.stat().st_size for f in files)
        with _progress(show_progress) as progress:
            task = progress.add_task("ingesting", total=total)
            for path in files:
                source, key = f"file:{path.name}", input_key(path)
                done = runner.resume_at(key)
                with path.open("rb") as fh:
                    for number, line in enumerate(fh, 1):
                        if number <= done:  # processed by an earlier run
                            runner.stats.skipped += 1
                            continue
                        if topic is None:
                            runner.feed_ingest_line(line, source, number)
                        else:
                            runner.feed_event_line(line, topic, source, number)
                        if number % 2048 == 0:
                            runner.delivered(key, number)
                            progress.update(task, completed=fh.tell())
                    runner.delivered(key, max(done, number if fh.tell() else 0))
                    progress.update(task, completed=fh.tell())
        stats = runner.finish(close=final)
    dsn = settings.resolved_clickhouse_dsn()
    if dsn.startswith("chdb://"):
        # Embedded: this process is the only writer, so the overrides this run added can be
        # folded into the rows now (migration 0010); a server's streaming sink may be writing,
        # so there `parcours compact` is run by hand, sink stopped. Then the versioned tables
        # are merged to one part per partition, so `FINAL` has nothing left to merge.
        client = connect(dsn, database)
        fold_persons(client)
        merge_versions(client)
    return stats


def print_summary(stats: RunStats, out: Console) -> None:
    table = Table(title="Ingest summary", show_header=False)
    table.add_row("lines read", f"{stats.lines:,}")
    table.add_row("messages", f"{stats.messages:,}")
    table.add_row("events processed", f"{stats.events:,}")
    table.add_row("duplicates dropped", f"{stats.duplicates:,}")
    table.add_row("late events (kept)", f"{stats.late:,}")
    table.add_row("rejected", f"{stats.rejected_total:,}")
    for reason, count in sorted(stats.rejected.items()):
        table.add_row(f"  {reason}", f"{count:,}")
    if stats.suppressed:
        table.add_row("dropped: erased subjects (suppression list)", f"{stats.suppressed:,}")
    if stats.skipped:
        table.add_row("lines already ingested (skipped)", f"{stats.skipped:,}")
    table.add_row("sessions closed", f"{stats.sessions:,}")
    table.add_row("sessions still open", f"{stats.open_sessions:,}")
    table.add_row("friction signals", f"{sum(stats.signals.values()):,}")
    for kind, count in sorted(stats.signals.items()):
        table.add_row(f"  {kind}", f"{count:,}")
    out.print(table)


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    topic: Annotated[
        str | None,
        typer.Option(help="The files hold bare events of this topic (one event or array a line)."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port while ingesting.")
    ] = None,
    final: Annotated[
        bool,
        typer.Option(
            "--final",
            help="The input is complete: close every open session and checkout attempt at its "
            "end (otherwise they stay open for the next run, shown as open).",
        ),
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start afresh: ignore the journey state saved by earlier runs in this database "
            "(their rows stay; use a new database to start from empty tables).",
        ),
    ] = False,
    database: Annotated[
        str | None,
        typer.Option(help="Write into this database (created if missing) instead of the DSN's."),
    ] = None,
    metrics_addr: Annotated[
        str,
        typer.Option(envvar="PARCOURS_METRICS_ADDR", help="Address the metrics listen on."),
    ] = "127.0.0.1",
) -> None:
    """Ingest JSON-lines files ({"topic": …, "value": …} per line) into ClickHouse.

    Each run carries on from the state the previous one left in the database: a session cut
    by the end of one file continues in the next, and lines already ingested are skipped."""
    if topic is not None and topic not in TOPIC_CHANNELS:
        raise typer.BadParameter(f"unknown topic {topic!r}; one of {sorted(TOPIC_CHANNELS)}")
    try:
        stats = ingest_files(
            files,
            topic,
            show_progress=console.is_terminal,
            metrics_port=metrics_port,
            metrics_addr=metrics_addr,
            final=final,
            fresh=fresh,
            database=database,
        )
    except (StorageError, PrivacyError) as exc:  # one clear line, not a traceback
        console.print(error_line("storage error:", exc))
        raise typer.Exit(1) from None
    print_summary(stats, Console())
