"""Roles on a ClickHouse server: `parcours_writer` for the sink, `parcours_analyst` for queries.

The SQL is `infra/clickhouse/roles/roles.sql` (a DBA can read and apply it by hand). It is not a
numbered migration because embedded chDB has no access control: `apply_roles` refuses a chDB
DSN with a sentence saying so instead of failing on `CREATE ROLE`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from clickhouse_connect.driver.client import Client

from streams.clickhouse.errors import MigrationError
from streams.clickhouse.migrations import MIGRATIONS_DIR, Migration

ROLES_FILE = MIGRATIONS_DIR / "roles" / "roles.sql"


def roles_statements(database: str, path: Path = ROLES_FILE) -> list[str]:
    """The statements of the roles file for `database`."""
    if not database.replace("_", "").isalnum():
        raise MigrationError(f"database name {database!r}: letters, digits and _ only")
    sql = path.read_text().replace("{database}", f"`{database}`")
    return Migration(0, path.name, sql).statements()


def apply_roles(client: Client, dsn: str) -> list[str]:
    """Create the roles and their grants on a server; returns the statements run."""
    if urlparse(dsn).scheme == "chdb":
        raise MigrationError(
            "roles do not apply on embedded chDB (it has no access control); "
            "parcours sql is read-only there through ClickHouse's readonly setting"
        )
    database = str(client.query("SELECT currentDatabase()").result_rows[0][0])
    done = []
    for statement in roles_statements(database):
        try:
            client.command(statement)
        except Exception as exc:
            raise MigrationError(f"roles: {statement.splitlines()[0]}: {exc}") from exc
        done.append(statement)
    return done
