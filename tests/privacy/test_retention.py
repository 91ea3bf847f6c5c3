"""Retention: each table's TTL is what the settings say (0009's defaults, or
`PARCOURS_RETENTION_*`), and ClickHouse removes expired rows when it merges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client

from streams.privacy.retention import TABLES, apply_retention, current, wanted
from streams.privacy.settings import RetentionSettings

pytestmark = pytest.mark.integration


def test_the_migration_sets_the_default_retention(ch: Client) -> None:
    assert current(ch) == wanted(RetentionSettings())
    assert current(ch)["events"] == 396 and current(ch)["rejected_messages"] == 30
    assert current(ch)["minute_aggregates"] == 0  # anonymous: kept
    assert apply_retention(ch, RetentionSettings()) == []  # nothing to change


def test_settings_change_and_remove_ttls(ch: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARCOURS_RETENTION_PERSONAL_DAYS", "90")
    monkeypatch.setenv("PARCOURS_RETENTION_REJECTED_DAYS", "0")
    changed = apply_retention(ch, RetentionSettings())
    assert set(changed) == {t.table for t in TABLES if t.group in ("personal", "rejected")}
    now = current(ch)
    assert now["sessions"] == 90 and now["rejected_events"] == 0 and now["quarantined_rows"] == 0


def test_expired_rows_are_removed_by_the_merge(ch: Client) -> None:
    """An event 2 years old (a replay of an old export) is gone after a merge; one of last
    week stays."""
    now = datetime.now(UTC)
    columns = ["event_id", "event_type", "occurred_at", "received_at", "channel", "person_id"]
    ch.insert(
        "events",
        [
            ["old", "page_view", now - timedelta(days=730), now, "web", "anon:w1"],
            ["new", "page_view", now - timedelta(days=7), now, "web", "anon:w1"],
        ],
        column_names=columns,
    )
    ch.command("OPTIMIZE TABLE events FINAL")
    kept = ch.query("SELECT event_id FROM events").result_rows
    assert kept == [("new",)]
