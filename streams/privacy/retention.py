"""Retention: how long each table keeps its rows, as ClickHouse TTLs.

Intuition: personal data is kept no longer than needed, and the database itself should enforce
it, not a cron job someone forgets. Each table with personal rows gets a row TTL on its own
time column (event time for events, the end for sessions, when it was received for
rejections): ClickHouse removes expired rows in its background merges, also rows already expired
when they are inserted (a replay of an export older than the retention).
`apply_retention` runs when `parcours ingest` opens the database and makes each TTL what
`PARCOURS_RETENTION_*` says (defaults in streams/privacy/settings.py; `ALTER TABLE … MODIFY
TTL` only where the TTL differs, which rewrites that table's parts once). 0 days removes the
TTL (keep forever). Why not in migration 0009: see its comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from streams.privacy.errors import PrivacyError
from streams.privacy.settings import RetentionSettings


@dataclass(frozen=True, slots=True)
class Retained:
    table: str
    column: str
    #: Which setting: personal, rejected or aggregates.
    group: str


TABLES = (
    Retained("events", "occurred_at", "personal"),
    Retained("sessions", "ended_at", "personal"),
    Retained("friction", "occurred_at", "personal"),
    Retained("identity_links", "linked_at", "personal"),
    Retained("session_merges", "merged_at", "personal"),
    Retained("rejected_events", "received_at", "rejected"),
    Retained("rejected_messages", "received_at", "rejected"),
    Retained("quarantined_rows", "quarantined_at", "rejected"),
    Retained("minute_aggregates", "minute", "aggregates"),
)

_TTL_DAYS = re.compile(r"\bTTL\s+toDateTime\((\w+)\)\s*\+\s*toIntervalDay\((\d+)\)")


def wanted(settings: RetentionSettings) -> dict[str, int]:
    """Table -> days to keep (0: forever)."""
    days = {
        "personal": settings.personal_days,
        "rejected": settings.rejected_days,
        "aggregates": settings.aggregates_days,
    }
    return {t.table: days[t.group] for t in TABLES}


def current(client: Client) -> dict[str, int]:
    """Table -> the days of its TTL now (0: none)."""
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND name IN {names:Array(String)}",
        parameters={"names": [t.table for t in TABLES]},
    ).result_rows
    out = {}
    for name, engine in rows:
        match = _TTL_DAYS.search(engine)
        out[name] = int(match.group(2)) if match else 0
    return out


def apply_retention(client: Client, settings: RetentionSettings) -> list[str]:
    """Make every table's TTL what the settings say; returns the tables changed."""
    now = current(client)
    changed = []
    for item in TABLES:
        days = wanted(settings)[item.table]
        if item.table not in now or now[item.table] == days:
            continue
        if days:
            sql = (
                f"ALTER TABLE {item.table} MODIFY TTL "
                f"toDateTime({item.column}) + INTERVAL {int(days)} DAY"
            )
        else:
            sql = f"ALTER TABLE {item.table} REMOVE TTL"
        try:
            # wait for the rewrite that applies the new TTL to the rows already stored
            client.command(sql, settings={"mutations_sync": 2})
        except Exception as exc:
            raise PrivacyError(f"cannot set the retention of {item.table}: {exc}") from exc
        changed.append(item.table)
    return changed
