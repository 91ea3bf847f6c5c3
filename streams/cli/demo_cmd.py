"""`parcours demo`: a week of simulated omnichannel traffic, end to end, with the reports.

It simulates ~5,000 customers over 7 days with a payment outage, runs the embedded pipeline
(decode -> journey core -> chDB) with a progress bar, and prints what a product team would look
at first. Everything goes to the `demo` database of the embedded ClickHouse, so the demo never
mixes with data you ingested yourself.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.cli.app import app
from streams.cli.config_cmd import journey_config_or_exit
from streams.cli.output import render_table
from streams.clickhouse.client import connect
from streams.clickhouse.migrations import apply_migrations
from streams.embedded.wiring import embedded_runner
from streams.privacy.settings import RetentionSettings
from streams.privacy.setup import privacy_filter
from streams.queries.funnel import FunnelSpec, Step, funnel_query, funnel_result
from streams.queries.kpi import kpi_query
from streams.queries.paths import path_result, path_rows, paths_query
from streams.queries.query import Query, run_query
from streams.queries.retention import retention_query, value_query
from streams.queries.spikes import spikes_query
from streams.queries.touchpoints import satisfaction_query, touchpoints_query
from streams.report.build import write_report
from streams.settings import load_settings
from streams.simulate import SimulationConfig, generate, parse_incident

DEMO_DATABASE = "demo"


DEMO_RETENTION = RetentionSettings(personal_days=0, rejected_days=0, aggregates_days=0)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=10, help="Simulated customers.")] = 5_000,
    days: Annotated[float, typer.Option(min=1, help="Simulated days.")] = 7.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same traffic).")] = 42,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the HTML report. Default: demo-report.html in the data dir."
        ),
    ] = None,
) -> None:
    """Simulate a week of traffic with a payment outage, process it, print the reports."""
    console = Console() if Console().is_terminal else Console(width=150)
    settings, journey = load_settings(), journey_config_or_exit()
    start = SimulationConfig().start
    # Thursday evening of the demo week (or the last simulated day of a shorter run).
    outage_day = min(3, max(int(days) - 1, 0))
    outage = parse_incident(f"payment_outage:+{outage_day}d18h:+{outage_day}d22h", start)
    config = SimulationConfig(customers=customers, days=days, seed=seed, incidents=(outage,))
    began = time.perf_counter()
    client = connect(settings.resolved_clickhouse_dsn(), DEMO_DATABASE)
    apply_migrations(client)
    # The demo is a complete week, processed whole each time: no earlier state to carry on.
    runner = embedded_runner(
        client,
        batch_rows=settings.sink_batch_rows,
        config=journey,
        resume=False,
        # Simulated people, on fixed dates: no retention, or the week would expire.
        privacy=privacy_filter(client, settings.data_dir, journey, retention=DEMO_RETENTION),
    )
    expected = int(customers * config.sessions_per_week * days / 7 * 6.1)
    console.print(
        Panel.fit(
            f"Simulating [bold]{customers:,}[/bold] customers over [bold]{days:g}[/bold] days "
            f"(web, app, store) with a payment outage on {outage.start:%a %d %b %H:%M}–{outage.end:%H:%M} UTC,\n"
            f"into the embedded ClickHouse database [bold]{DEMO_DATABASE}[/bold] under {settings.data_dir}/.",
            title="Parcours demo",
        )
    )
    progress = Progress(
        TextColumn("[bold]processing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("events", total=expected)
        for position, msg in enumerate(generate(config), 1):
            value = msg.payload if isinstance(msg.payload, bytes) else orjson.dumps(msg.payload)
            runner.feed_message(msg.topic, value, f"simulate:{seed}", position)
            if position % 2000 == 0:
                progress.update(task, completed=runner.pipeline.counters.events)
        stats = runner.finish()
        progress.update(task, completed=stats.events, total=stats.events)
    elapsed = time.perf_counter() - began
    console.print(
        f"[green]done[/green] in {elapsed:.1f}s: {stats.events:,} events, {stats.rejected_total:,} rejected "
        f"({', '.join(f'{k} {v}' for k, v in sorted(stats.rejected.items()))}), {stats.duplicates:,} duplicates dropped, "
        f"{stats.late:,} late, {stats.sessions:,} sessions, {sum(stats.signals.values()):,} friction signals.\n"
    )
    date_from, date_to = start, start + timedelta(days=days + 1)
    spec = FunnelSpec(
        tuple(Step(t) for t in ("view_item", "add_to_cart", "begin_checkout", "purchase")),
        3600,
        date_from,
        date_to,
        breakdown="channel",
    )
    console.print(
        render_table(
            funnel_result(spec, run_query(client, funnel_query(spec))),
            "Funnel view_item → purchase within 1 h, by channel of entry (persons)",
        )
    )
    for name, title in (
        ("conversion", "Conversion per channel (sessions touching it; revenue of its purchases)"),
        ("bounce", "Bounce rate of the top landing pages"),
        ("abandonment", "Cart and checkout abandonment by device type"),
        ("channel_switch", "Checkouts started online, finished in store"),
    ):
        console.print(
            render_table(run_query(client, kpi_query(name, date_from, date_to, limit=8)), title)
        )
    for query, title in (
        (
            retention_query(date_from, date_to, period="week"),
            "Retention by week of first visit (all channels, store included)",
        ),
        (
            value_query(date_from, date_to, cohort="first_purchase", churn_days=3),
            "Repeat purchase, value per customer and churn (no visit in the last 3 days), by week of first purchase and acquisition channel",
        ),
        (
            touchpoints_query(date_from, date_to, limit=8),
            "Touchpoints: the sessions through each page, screen, store and support medium",
        ),
        (satisfaction_query(date_from, date_to), "Satisfaction from surveys (CSAT % of 4-5)"),
    ):
        console.print(render_table(run_query(client, query), title))
    journeys = path_rows(client, paths_query(date_from, date_to, end="web purchase", depth=3))
    console.print(
        render_table(
            path_result(journeys, 8), "Paths: the last 3 touchpoints before a web purchase"
        )
    )
    per_day = Query(
        """SELECT toDate(occurred_at) AS day,
           uniqExactIf(signal_id, type = 'payment_failure') AS payment_failure,
           uniqExactIf(signal_id, type = 'checkout_abandoned') AS checkout_abandoned,
           uniqExactIf(signal_id, type = 'cart_abandoned') AS cart_abandoned,
           uniqExactIf(signal_id, type = 'bounce') AS bounce,
           uniqExactIf(signal_id, type = 'rage_click') AS rage_click,
           uniqExactIf(signal_id, type = 'search_frustration') AS search_frustration,
           uniqExactIf(signal_id, type = 'channel_switch') AS channel_switch
        FROM friction FINAL WHERE {date_from:DateTime64(3)} <= occurred_at AND occurred_at < {date_to:DateTime64(3)}
        GROUP BY day ORDER BY day""",
        {"date_from": date_from, "date_to": date_to},
    )
    console.print(
        render_table(
            run_query(client, per_day),
            f"Friction per day (the payment outage was on {outage.start:%a %d %b})",
        )
    )
    console.print(
        render_table(
            run_query(client, spikes_query(start, start + timedelta(days=days))),
            f"Friction spikes (the simulated payment outage: {outage.start:%a %d %b %H:%M}–"
            f"{outage.end:%H:%M} UTC; `parcours spikes` lists them)",
        )
    )
    written = write_report(client, report or settings.data_dir / "demo-report.html")
    console.print(
        f"[bold]Report[/bold] ({len(written.charts)} charts, {written.bytes / 1e6:.1f} MB, opens offline): "
        f"{written.path.resolve()}"
    )
    console.print(
        Panel.fit(
            "Query the data further (the demo wrote to the database 'demo': add --database demo):\n"
            "  .venv/bin/parcours funnel --steps view_item,add_to_cart,purchase --by channel --database demo\n"
            "  .venv/bin/parcours kpi all --database demo\n"
            '  .venv/bin/parcours sql "SELECT type, count() FROM friction FINAL GROUP BY type" --database demo\n'
            "Your own data: .venv/bin/parcours simulate --out traffic.jsonl && .venv/bin/parcours ingest traffic.jsonl\n"
            "  then .venv/bin/parcours funnel --steps view_item,add_to_cart,purchase --by channel\n"
            "Tables and columns: docs/storage.md",
            title="Next",
        )
    )
