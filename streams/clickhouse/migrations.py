"""Versioned migrations: plain `.sql` files applied in order and recorded.

Intuition: a migration is applied once. `schema_migrations` records each file's version, name
and checksum; running again applies only files not yet recorded, and a recorded file whose
checksum changed is refused (history must not be rewritten under a live database). The files
are plain ClickHouse SQL so a DBA can also apply them by hand on a server.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from streams.clickhouse.errors import MigrationError


def _migrations_dir() -> Path:
    """`streams/clickhouse/sql` is a symlink to `infra/clickhouse` in the repository, and a copy
    of it in an installed wheel (package data); the repository path is the fallback for
    checkouts without symlinks."""
    packaged = Path(__file__).resolve().parent / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "infra" / "clickhouse"


MIGRATIONS_DIR = _migrations_dir()
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """Split on `;` at line ends, dropping comment-only chunks."""
        parts = re.split(r";\s*(?:\n|$)", self.sql)
        statements = []
        for part in parts:
            body = "\n".join(
                line for line in part.splitlines() if not line.strip().startswith("--")
            )
            if body.strip():
                statements.append(part.strip())
        return statements


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} not found")
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def apply_migrations(client: Client, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations in order; returns the names applied (empty when up to date)."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
        "checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    applied = {
        int(v): (n, c)
        for v, n, c in client.query(
            "SELECT version, name, checksum FROM schema_migrations"
        ).result_rows
    }
    done: list[str] = []
    for migration in load_migrations(directory):
        if migration.version in applied:
            name, checksum = applied[migration.version]
            if checksum != migration.checksum:
                raise MigrationError(
                    f"{migration.name} changed after it was applied (as {name}); add a new migration instead"
                )
            continue
        for statement in migration.statements():
            try:
                client.command(statement)
            except Exception as exc:
                raise MigrationError(f"{migration.name}: {exc}") from exc
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        done.append(migration.name)
    return done
