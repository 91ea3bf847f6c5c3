"""Issue 12, point 5: `parcours migrate --verify` finds a dropped or altered table and repairs it.

Before: after a `DROP TABLE` `parcours migrate` said "up to date" and the views stayed broken."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from streams.cli.main import app
from streams.clickhouse.client import connect
from streams.clickhouse.migrations import apply_migrations
from streams.clickhouse.verify import verify_schema
from streams.settings import load_settings

pytestmark = pytest.mark.integration


def test_a_dropped_table_an_altered_column_and_a_dropped_view_are_repaired(
    chdb_dsn: str, fresh_database: Callable[[], tuple[str, Client]]
) -> None:
    name, client = fresh_database()
    assert verify_schema(chdb_dsn, name).problems == []
    client.command("DROP TABLE sessions")
    client.command("DROP VIEW events_per_minute")
    client.command("ALTER TABLE events DROP COLUMN late")
    client.command("ALTER TABLE friction MODIFY COLUMN details LowCardinality(String)")
    client.command("ALTER TABLE identity_links ADD COLUMN note String")
    assert apply_migrations(client) == []  # "up to date": the history does not see it
    found = verify_schema(chdb_dsn, name, repair=False)
    assert set(found.problems) >= {
        "sessions: missing",
        "events_per_minute: missing",
        "events.late: missing column",
        "friction.details: type LowCardinality(String), expected String",
        "identity_links.note: unexpected column",
    }
    fixed = verify_schema(chdb_dsn, name)
    assert fixed.unrepaired == ["identity_links.note: unexpected column (drop it by hand)"]
    client.query("SELECT count() FROM sessions_resolved")
    client.query("SELECT sum(late) FROM events")
    client.query("SELECT * FROM events_per_minute")
    client.command("ALTER TABLE identity_links DROP COLUMN note")
    assert verify_schema(chdb_dsn, name).problems == []


def test_migrate_verify_on_the_command_line() -> None:
    client = connect(load_settings().resolved_clickhouse_dsn())
    apply_migrations(client)
    client.command("DROP VIEW IF EXISTS events_per_minute")
    result = CliRunner().invoke(app, ["migrate"])
    assert "up to date" in result.output
    result = CliRunner().invoke(app, ["migrate", "--verify"])
    assert result.exit_code == 0, result.output
    assert "repaired: events_per_minute: view created again" in result.output
    result = CliRunner().invoke(app, ["migrate", "--verify"])
    assert "verified: every table and view" in result.output
