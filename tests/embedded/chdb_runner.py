"""Run a story through the embedded runner into chDB and read the outcome back from the tables."""

from __future__ import annotations

from collections import Counter

from clickhouse_connect.driver.client import Client

from streams.embedded.runner import EmbeddedRunner
from streams.sinks.clickhouse import ClickHouseSink
from tests.journeys.outcome import Outcome
from tests.journeys.story import S, Story


def run_embedded(story: Story, client: Client) -> Outcome:
    sink = ClickHouseSink(client, flush_interval_s=None)
    runner = EmbeddedRunner(sink, clock=lambda: 1_800_000_000.0)
    runner.feed_lines(story.ingest_lines().splitlines(keepends=True), source=f"story:{story.name}")
    stats = runner.finish()
    return outcome_from_tables(client, stats.duplicates)


def outcome_from_tables(client: Client, duplicates: int) -> Outcome:
    sessions = client.query(
        "SELECT person_id, events, arraySort(channels), bounced, converted FROM sessions FINAL"
    ).result_rows
    signals = client.query(
        "SELECT type, uniqExact(signal_id) FROM friction FINAL GROUP BY type"
    ).result_rows
    links = client.query(
        "SELECT device_id, customer_id FROM identity_links ORDER BY linked_at, device_id"
    ).result_rows
    # the newest row of each event (a revision may write an event again, moved or not late)
    late = client.query("SELECT countIf(late) FROM events FINAL").result_rows[0][0]
    merges = client.query("SELECT count() FROM session_merges").result_rows[0][0]
    resolved = client.query("SELECT event_id, resolved_person_id FROM events_resolved").result_rows
    copies = client.query(
        "SELECT uniqExactIf(event_id, duplicate_transaction) FROM events"
    ).result_rows[0][0]
    revenue, conversions = client.query(
        "SELECT sumIf(amount, metric = 'revenue'), sumIf(count, metric = 'conversions') "
        "FROM events_per_minute"
    ).result_rows[0]
    session_revenue = client.query("SELECT sum(revenue) FROM sessions FINAL").result_rows[0][0]
    return Outcome(
        sessions=[S(p, e, tuple(c), b, cv) for p, e, c, b, cv in sessions],
        signals=Counter({t: n for t, n in signals}),
        links=[(d, c) for d, c in links],
        late=late,
        duplicates=duplicates,
        merges=merges,
        resolved_persons=dict(resolved),
        duplicate_transactions=copies,
        revenue=revenue,
        conversions=conversions,
        session_revenue=session_revenue,
    )
