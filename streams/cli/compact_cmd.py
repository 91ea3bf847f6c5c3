"""`parcours compact`: fold the pending person overrides into the stored rows (migration 0010)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from streams.cli.app import app
from streams.cli.output import error_line
from streams.clickhouse.client import connect
from streams.clickhouse.errors import StorageError
from streams.clickhouse.migrations import apply_migrations
from streams.clickhouse.person_fold import fold_persons, merge_versions
from streams.settings import load_settings


@app.command()
def compact(
    database: Annotated[
        str | None, typer.Option(help="Compact this database instead of the DSN's.")
    ] = None,
) -> None:
    """Fold identity links into the stored events: rows a later login re-attributes are
    rewritten under the customer, so funnels read each row's person without a join; and the
    versioned tables (sessions, friction) are merged to one part per partition, so the KPIs
    that read them `FINAL` have no versions left to merge.

    `parcours ingest` does this at the end of every run in embedded mode. On a server fed by
    the streaming workers, run it with the sink stopped: it marks every part present when it
    finishes as folded. Answers are the same before and after; only their cost changes."""
    console = Console(stderr=True)
    try:
        client = connect(load_settings().resolved_clickhouse_dsn(), database)
        apply_migrations(client)
        stats = fold_persons(client)
        merge_versions(client)
    except StorageError as exc:
        console.print(error_line("storage error:", exc))
        raise typer.Exit(1) from None
    Console().print(
        f"{stats.rows_rewritten:,} event rows rewritten under their resolved person; "
        f"{stats.partitions_marked} partitions marked folded; sessions and friction merged"
    )
