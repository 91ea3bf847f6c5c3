"""Shared fixtures. chDB allows one database directory per process, so the whole test session
uses one directory and each test gets its own ClickHouse *database* inside it."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable

import pytest
from clickhouse_connect.driver.client import Client

_CHDB_DIR = tempfile.mkdtemp(prefix="parcours-chdb-")
# Anything that reads settings (CLI commands, the embedded wiring) uses the session database.
os.environ.setdefault("PARCOURS_CLICKHOUSE_DSN", f"chdb://{_CHDB_DIR}")
os.environ.setdefault("PARCOURS_DATA_DIR", _CHDB_DIR)
# The stories are dated 2026: with a retention in days, ClickHouse would stop storing them once
# they are that old (tests/privacy/test_retention.py tests retention with dates of its own).
os.environ.setdefault("PARCOURS_RETENTION_PERSONAL_DAYS", "0")
os.environ.setdefault("PARCOURS_RETENTION_REJECTED_DAYS", "0")
_counter = itertools.count()


@pytest.fixture(scope="session")
def chdb_dsn() -> str:
    return os.environ["PARCOURS_CLICKHOUSE_DSN"]


@pytest.fixture
def fresh_database(chdb_dsn: str) -> Callable[[], tuple[str, Client]]:
    """Make a new, migrated database: returns (name, client)."""
    from streams.clickhouse.client import connect
    from streams.clickhouse.migrations import apply_migrations

    def make() -> tuple[str, Client]:
        name = f"t{os.getpid()}_{next(_counter)}"
        client = connect(chdb_dsn, name)
        apply_migrations(client)
        return name, client

    return make


@pytest.fixture
def ch(fresh_database: Callable[[], tuple[str, Client]]) -> Client:
    return fresh_database()[1]
