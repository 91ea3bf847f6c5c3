"""One way to get a ClickHouse client, whichever backend the DSN names.

`chdb:///abs/path` opens an embedded, on-disk database in this process (clickhouse-connect's
chDB backend); `http(s)://user:pass@host:port/db` talks to a server. Nothing else in Parcours
knows which one it has. chDB allows one process per database directory and one database per
process, so embedded clients are cached per path.
"""

from __future__ import annotations

import fcntl
import re
from pathlib import Path
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from streams.clickhouse.errors import ConnectionFailed

_EMBEDDED: dict[tuple[str, str | None], Client] = {}


def connect(dsn: str, database: str | None = None) -> Client:
    """A client for `dsn` (see the module docstring); `database` overrides the DSN's one
    (the database is created when missing)."""
    scheme = urlparse(dsn).scheme
    if scheme == "chdb":
        path = dsn[len("chdb://") :]
        if not path.startswith("/"):
            raise ConnectionFailed(
                f"chDB DSN needs an absolute path (chdb:///abs/path), got {dsn!r}"
            )
        if (path, database) in _EMBEDDED:
            return _EMBEDDED[(path, database)]
        other = next((p for p, _ in _EMBEDDED if p != path), None)
        if other is not None:
            raise ConnectionFailed(
                f"this process already uses the embedded database {other}; chDB allows one per process"
            )
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
            if database is not None:
                client.command(f"CREATE DATABASE IF NOT EXISTS `{_identifier(database)}`")
                client = clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database)
        except Exception as exc:
            holder = _lock_holder(Path(path))
            if holder is not None:
                raise ConnectionFailed(
                    f"the embedded database {path} is in use by another process ({holder}); "
                    "chDB allows one process per database: stop that process (or wait for it), "
                    "or use a ClickHouse server"
                ) from None
            raise ConnectionFailed(f"cannot open embedded ClickHouse at {path}: {exc}") from exc
        _EMBEDDED[(path, database)] = client
        return client
    if scheme in ("http", "https", "clickhouse", "clickhouses"):
        try:
            if database is not None:
                admin = clickhouse_connect.get_client(dsn=dsn)
                admin.command(f"CREATE DATABASE IF NOT EXISTS `{_identifier(database)}`")
                return clickhouse_connect.get_client(dsn=dsn, database=database)
            return clickhouse_connect.get_client(dsn=dsn)
        except Exception as exc:
            parsed = urlparse(dsn)
            safe = f"{parsed.scheme}://{parsed.hostname}:{parsed.port}{parsed.path}"
            raise ConnectionFailed(f"cannot connect to ClickHouse at {safe}: {exc}") from exc
    raise ConnectionFailed(
        f"unsupported ClickHouse DSN scheme {scheme!r}: use chdb:///path or http(s)://…"
    )


def session_client(dsn: str, database: str | None = None) -> Client:
    """A client with a ClickHouse session of its own, for one analyst query; close it after.
    `database` reads another database than the DSN's (`--database demo`); it must exist.

    Settings a query changes stay in its session: on chDB a statement refused under
    `readonly = 1` leaves the session read-only (the client's restore is refused too), so an
    analyst query must not share the pipeline's cached embedded client. Over HTTP every
    request is its own session already."""
    scheme = urlparse(dsn).scheme
    if scheme != "chdb":
        if database is None:
            return connect(dsn)
        try:
            return clickhouse_connect.get_client(dsn=dsn, database=_identifier(database))
        except ConnectionFailed:
            raise
        except Exception as exc:
            raise ConnectionFailed(f"cannot read database {database!r}: {exc}") from exc
    connect(dsn)  # opens the engine (one per process), with the usual checks and messages
    try:
        path = dsn[len("chdb://") :]
        if database is None:
            return clickhouse_connect.get_client(dsn=f"chdb://{path}")
        return clickhouse_connect.get_client(dsn=f"chdb://{path}", database=_identifier(database))
    except ConnectionFailed:
        raise
    except Exception as exc:
        raise ConnectionFailed(f"cannot open a session on {dsn}: {exc}") from exc


def _lock_holder(path: Path) -> str | None:
    """Who holds the embedded database at `path`, when another process does: chDB's `status`
    file is locked (flock) by the process that opened it and names its PID. chDB itself only
    says "Error initializing EmbeddedServer" (issue 12)."""
    status = path / "status"
    try:
        with status.open("rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                match = re.search(rb"PID:\s*(\d+)", fh.read(200))
                return f"PID {match.group(1).decode()}" if match else "unknown PID"
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def check_database_name(name: str) -> None:
    """Refuse a database name that is not a plain identifier (it is quoted into DDL)."""
    _identifier(name)


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ConnectionFailed(f"database name {name!r}: letters, digits and _ only")
    return name
