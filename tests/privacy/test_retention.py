"""Retention: each table's TTL is what the settings say (defaults, or `PARCOURS_RETENTION_*`),
applied when a run opens the database; ClickHouse removes expired rows when it merges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from streams.core.config import JourneyConfig
from streams.privacy.retention import TABLES, apply_retention, current, wanted
from streams.privacy.settings import PrivacySettings, RetentionSettings
from streams.privacy.setup import privacy_filter

pytestmark = pytest.mark.integration

DEFAULTS = RetentionSettings(personal_days=396, rejected_days=30, aggregates_days=0)
COLUMNS = ["event_id", "event_type", "occurred_at", "received_at", "channel", "person_id"]


def test_the_defaults_are_13_months_and_30_days() -> None:
    fields = RetentionSettings.model_fields
    assert fields["personal_days"].default == 396 and fields["rejected_days"].default == 30
    assert fields["aggregates_days"].default == 0  # anonymous counts: kept


def test_a_run_applies_the_retention_once(ch: Client, tmp_path: Path) -> None:
    assert set(current(ch).values()) == {0}  # migrations set none
    privacy_filter(ch, tmp_path, JourneyConfig(), PrivacySettings(), DEFAULTS)
    assert current(ch) == wanted(DEFAULTS)
    assert current(ch)["events"] == 396 and current(ch)["rejected_messages"] == 30
    assert current(ch)["minute_aggregates"] == 0
    assert apply_retention(ch, DEFAULTS) == []  # nothing to change the next time


def test_settings_change_and_remove_ttls(ch: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    apply_retention(ch, DEFAULTS)
    monkeypatch.setenv("PARCOURS_RETENTION_PERSONAL_DAYS", "90")
    monkeypatch.setenv("PARCOURS_RETENTION_REJECTED_DAYS", "0")
    changed = apply_retention(ch, RetentionSettings())
    assert set(changed) == {t.table for t in TABLES if t.group in ("personal", "rejected")}
    now = current(ch)
    assert now["sessions"] == 90 and now["rejected_events"] == 0 and now["quarantined_rows"] == 0


def test_expired_rows_are_removed_by_the_merge_and_not_stored_again(ch: Client) -> None:
    """An event of last week stays; one 2 years old stored before the TTL was set is gone after
    a merge, and so is a replay of it."""
    now = datetime.now(UTC)
    old = ["old", "page_view", now - timedelta(days=730), now, "web", "anon:w1"]
    new = ["new", "page_view", now - timedelta(days=7), now, "web", "anon:w1"]
    ch.insert("events", [old, new], column_names=COLUMNS)
    apply_retention(ch, DEFAULTS)
    ch.command("OPTIMIZE TABLE events FINAL")
    assert ch.query("SELECT event_id FROM events").result_rows == [("new",)]
    ch.insert("events", [old], column_names=COLUMNS)  # a replay of it
    ch.command("OPTIMIZE TABLE events FINAL")
    assert ch.query("SELECT event_id FROM events").result_rows == [("new",)]
