"""Roles SQL for a ClickHouse server; chDB says plainly that roles do not apply to it."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.clickhouse.migrations import MIGRATIONS_DIR
from streams.clickhouse.roles import roles_statements

pytestmark = pytest.mark.integration

PIPELINE_TABLES = {
    "journey_state",  # the embedded runner saves (and reads back) its state between runs
    "events",
    "sessions",
    "friction",
    "identity_links",
    "session_merges",
    "minute_aggregates",
    "rejected_events",
    "rejected_messages",
    "quarantined_rows",
    "friction_spikes",
}


def test_the_writer_only_inserts_and_the_analyst_only_selects() -> None:
    statements = roles_statements("parcours")
    grants = [s for s in statements if s.startswith("GRANT")]
    assert grants and all(
        re.fullmatch(r"GRANT (INSERT|SELECT) ON `parcours`\.\w+ TO parcours_(writer|analyst)", g)
        for g in grants
    )
    writer = {g.split(".")[1].split()[0] for g in grants if "INSERT" in g}
    assert writer == PIPELINE_TABLES
    assert all("INSERT" not in g for g in grants if g.endswith("parcours_analyst"))
    assert "ALL" not in " ".join(statements) and "*" not in " ".join(grants)


def test_every_table_and_view_granted_exists_in_the_migrations() -> None:
    sql = " ".join(p.read_text() for p in MIGRATIONS_DIR.glob("*.sql"))
    created = set(
        re.findall(r"CREATE (?:TABLE|VIEW|OR REPLACE VIEW)(?: IF NOT EXISTS)? (\w+)", sql)
    )
    for g in roles_statements("parcours"):
        if g.startswith("GRANT") and "schema_migrations" not in g:
            assert g.split(".")[1].split()[0] in created, g


def test_roles_do_not_apply_on_chdb_and_it_is_said() -> None:
    result = CliRunner().invoke(app, ["migrate", "--roles"])
    assert result.exit_code == 1
    assert "roles do not apply on embedded chDB" in " ".join(result.output.split())


class _WriterClient:
    """A sink user with parcours_writer: no DDL, SELECT on schema_migrations only."""

    def __init__(self, versions: list[int]) -> None:
        self.versions = versions

    def command(self, sql: str) -> None:
        raise PermissionError("Code: 497. DB::Exception: parcours_sink: Not enough privileges")

    def query(self, sql: str) -> object:
        from types import SimpleNamespace

        return SimpleNamespace(result_rows=[(v,) for v in self.versions])


def test_the_sink_starts_with_writer_rights_once_an_administrator_migrated() -> None:
    import typer

    from streams.cli.stream_cmds import _migrated_or_exit
    from streams.clickhouse.migrations import load_migrations

    _migrated_or_exit(_WriterClient([m.version for m in load_migrations()]))
    with pytest.raises(typer.Exit):
        _migrated_or_exit(_WriterClient([1]))
