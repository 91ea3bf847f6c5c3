"""`parcours forget` and `parcours privacy report`: erasure requests and the DPO's view."""

from __future__ import annotations

from typing import Annotated

import typer
from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.table import Table

from streams.cli.app import app
from streams.cli.output import error_line
from streams.clickhouse.client import connect
from streams.clickhouse.errors import StorageError
from streams.clickhouse.migrations import apply_migrations
from streams.errors import ParcoursError
from streams.privacy.erase import forget as forget_subject
from streams.privacy.keys import SubjectKind
from streams.privacy.report import IDENTIFIER_COLUMNS, privacy_report
from streams.privacy.settings import PrivacySettings, load_key
from streams.settings import StreamSettings, load_settings

err = Console(stderr=True)
privacy_app = typer.Typer(help="Privacy: what personal data Parcours holds.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


def _client(database: str | None) -> Client:
    try:
        client = connect(load_settings().resolved_clickhouse_dsn(), database)
        apply_migrations(client)
        return client
    except StorageError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None


@app.command()
def forget(
    customer: Annotated[
        str | None, typer.Option("--customer", help="The customer id to erase, in clear.")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="The device id to erase, in clear.")
    ] = None,
    database: Annotated[
        str | None, typer.Option(help="Erase in this database instead of the DSN's.")
    ] = None,
) -> None:
    """Erase a customer (or a device) from every table and the saved journey state, and keep
    them out of every later run (suppression list). Prints a receipt; the audit table keeps
    only a keyed hash of the id and the time. Stop `parcours ingest` (and a sink writing to
    chDB) first. Streaming (PARCOURS_KAFKA_BOOTSTRAP set): also on the suppression topic,
    which running workers follow to erase their state, and purges the topics read back."""
    if (customer is None) == (device is None):
        raise typer.BadParameter("give exactly one of --customer or --device")
    kind: SubjectKind = "customer" if customer is not None else "device"
    value = customer if customer is not None else device
    assert value is not None
    client = _client(database)
    settings = load_settings()
    try:
        privacy = PrivacySettings()
        key = load_key(privacy, settings.data_dir)
        streaming = None
        if settings.kafka_bootstrap:
            from streams.privacy.streaming import StreamingErasure

            streaming = StreamingErasure(settings.kafka_bootstrap, StreamSettings(), key)
        receipt = forget_subject(
            client,
            key,
            kind,
            value,
            pseudonymise=privacy.pseudonymise,
            publish=None if streaming is None else streaming.publish,
        )
        if streaming is not None:
            receipt.topics = streaming.purge_topics()
    except ParcoursError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None
    table = Table(title=f"Erasure receipt ({kind} {receipt.subject_hash[:12]}…)")
    table.add_column("where")
    table.add_column("removed", justify="right")
    for name, rows in receipt.rows.items():
        table.add_row(name, f"{rows:,} rows")
    table.add_row("journey_state", f"{receipt.state_entries:,} entries")
    table.add_row("total", f"{receipt.total:,}")
    for topic, records in receipt.topics.items():
        table.add_row(f"topic {topic}", f"{records:,} records deleted")
    out = Console()
    out.print(table)
    out.print(
        "Suppressed: later events naming this "
        f"{kind} are dropped at decode. Kept: per-minute aggregates (anonymous counts)."
    )
    if receipt.topics:
        out.print(
            "Streaming: on the suppression topic; each worker erases its state and changelogs "
            "as it reads it. Input topics keep her until their retention (replays are filtered)."
        )


@privacy_app.command("report")
def report(
    database: Annotated[
        str | None, typer.Option(help="Report on this database instead of the DSN's.")
    ] = None,
) -> None:
    """Which columns hold identifiers, how many distinct subjects, what scrubbing found,
    erasures done, and each table's retention."""
    client = _client(database)
    try:
        found = privacy_report(client)
    except ParcoursError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None
    out = Console()
    columns = Table(title="Columns holding identifiers")
    for name in ("table", "column", "what"):
        columns.add_column(name)
    for row in IDENTIFIER_COLUMNS:
        columns.add_row(*row)
    out.print(columns)
    subjects = Table(title="Distinct subjects", show_header=False)
    for name, n in found.subjects.items():
        subjects.add_row(name, f"{n:,}")
    share = found.pseudonymous_share
    subjects.add_row(
        "customer ids that are pseudonyms", "no customer ids" if share is None else f"{share:.0%}"
    )
    out.print(subjects)
    scrubbed = Table(title="What scrubbing redacted (rows with a marker)")
    for name in ("column", "kind", "rows"):
        scrubbed.add_column(name)
    for (column, kind), n in found.scrubbed.items():
        scrubbed.add_row(column, kind, f"{n:,}")
    out.print(scrubbed)
    erasure = Table(title="Erasure and retention", show_header=False)
    erasure.add_row("erasures done", f"{found.erasures:,}")
    erasure.add_row("last erasure", found.last_erasure or "never")
    erasure.add_row("subjects on the suppression list", f"{found.suppressed_subjects:,}")
    for name, days in found.retention_days.items():
        erasure.add_row(f"retention {name}", f"{days} days" if days else "forever")
    out.print(erasure)
