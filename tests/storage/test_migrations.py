from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from streams.clickhouse.client import connect
from streams.clickhouse.errors import ConnectionFailed, MigrationError
from streams.clickhouse.migrations import MIGRATIONS_DIR, apply_migrations, load_migrations

pytestmark = pytest.mark.integration

PUBLIC = {
    "events",
    "sessions",
    "friction",
    "identity_links",
    "session_merges",
    "minute_aggregates",
    "rejected_events",
    "events_resolved",
    "sessions_resolved",
    "friction_resolved",
    "events_per_minute",
    "schema_migrations",
}


def test_migrations_apply_to_an_empty_database_and_are_idempotent(chdb_dsn: str) -> None:
    client = connect(chdb_dsn, "migrations_empty")
    assert apply_migrations(client) == [m.name for m in load_migrations()]
    assert apply_migrations(client) == []
    tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
    assert tables >= PUBLIC
    assert client.query("SELECT count() FROM schema_migrations").result_rows[0][0] == len(
        load_migrations()
    )


def test_a_changed_migration_is_refused(
    fresh_database: Callable[[], tuple[str, Client]], tmp_path: Path
) -> None:
    _, client = fresh_database()
    for source in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / source.name).write_text(source.read_text())
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after the fact\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(client, tmp_path)


def test_badly_named_migration_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "create-things.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)


def test_unsupported_dsn_is_a_clear_error() -> None:
    with pytest.raises(ConnectionFailed, match="unsupported"):
        connect("mysql://localhost/x")
    with pytest.raises(ConnectionFailed, match="absolute path"):
        connect("chdb://relative/path")


def test_a_database_migrated_before_0003_is_upgraded(chdb_dsn: str, tmp_path: Path) -> None:
    """0003 replaces the resolved views of a database that already applied 0001 and 0002."""
    for source in sorted(MIGRATIONS_DIR.glob("*.sql"))[:2]:
        (tmp_path / source.name).write_text(source.read_text())
    client = connect(chdb_dsn, "migrations_upgrade")
    assert apply_migrations(client, tmp_path) == ["0001_tables.sql", "0002_views.sql"]
    assert "friction_resolved" not in {r[0] for r in client.query("SHOW TABLES").result_rows}
    (tmp_path / "0003_resolved_views.sql").write_text(
        (MIGRATIONS_DIR / "0003_resolved_views.sql").read_text()
    )
    assert apply_migrations(client, tmp_path) == ["0003_resolved_views.sql"]
    assert "friction_resolved" in {r[0] for r in client.query("SHOW TABLES").result_rows}
    client.query("SELECT device_id, customer_id, resolved_person_id FROM events_resolved")


def test_sessions_stored_before_0004_are_kept_as_closed_first_versions(
    chdb_dsn: str, tmp_path: Path
) -> None:
    """0004 rebuilds `sessions` as versioned rows: what an older database holds is copied over
    (version 1, closed, not deleted) and a newer version of the same session replaces it."""
    for source in sorted(MIGRATIONS_DIR.glob("*.sql"))[:3]:
        (tmp_path / source.name).write_text(source.read_text())
    client = connect(chdb_dsn, "migrations_upgrade_0004")
    apply_migrations(client, tmp_path)
    client.command(
        "INSERT INTO sessions (session_id, person_id, started_at, ended_at, events) "
        "VALUES ('s-old', 'c-1', '2026-11-02 10:00:00', '2026-11-02 10:05:00', 3)"
    )
    assert "0004_versioned_rows.sql" in apply_migrations(client)
    rows = client.query(
        "SELECT session_id, events, is_open, version, is_deleted FROM sessions FINAL"
    ).result_rows
    assert rows == [("s-old", 3, False, 1, 0)]
    client.command(
        "INSERT INTO sessions (session_id, person_id, started_at, ended_at, events, version) "
        "VALUES ('s-old', 'c-1', '2026-11-02 10:00:00', '2026-11-02 10:09:00', 4, 9)"
    )
    assert client.query("SELECT events FROM sessions FINAL").result_rows == [(4,)]
    resolved = client.query("SELECT session_id, events FROM sessions_resolved").result_rows
    assert resolved == [("s-old", 4)]


def test_a_database_migrated_before_0005_gets_the_duplicate_transaction_flag(
    chdb_dsn: str, tmp_path: Path
) -> None:
    """0005 adds `events.duplicate_transaction` (old rows read false) and recreates
    events_resolved, whose `e.*` was expanded when 0003 created it."""
    for source in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(source.name[:4]) < 5:
            (tmp_path / source.name).write_text(source.read_text())
    client = connect(chdb_dsn, "migrations_upgrade_0005")
    apply_migrations(client, tmp_path)
    # dated now: an event of 1970 would be past 0009's retention and removed by the upgrade
    client.command(
        "INSERT INTO events (event_id, event_type, occurred_at) VALUES ('old', 'purchase', now64(3))"
    )
    assert "0005_duplicate_transactions.sql" in apply_migrations(client)
    rows = client.query(
        "SELECT event_id, duplicate_transaction, resolved_person_id FROM events_resolved"
    ).result_rows
    assert rows == [("old", False, "")]
