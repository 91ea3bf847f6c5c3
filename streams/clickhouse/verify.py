"""`parcours migrate --verify`: the live schema against what the migrations create, repaired.

Intuition: `schema_migrations` records which files ran, not what the database holds now. After
a `DROP TABLE` (issue 12: `parcours sql` used to run one) `parcours migrate` said "up to date"
and the views stayed broken. Verifying applies every migration to a scratch database, compares
each table and view there with the live one (engine, columns and types, a view's query), and
repairs the differences it can without losing data: a missing table or view is created again, a
view whose query differs is replaced, a missing column is added, a column of another type is
modified. What it cannot repair safely (another engine, an extra column) is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from streams.clickhouse.client import connect
from streams.clickhouse.errors import MigrationError
from streams.clickhouse.migrations import apply_migrations


@dataclass
class Verification:
    """Differences found (`problems`), those repaired, and those left for a person."""

    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Object:
    name: str
    engine: str
    create: str
    columns: tuple[tuple[str, str], ...]

    @property
    def is_view(self) -> bool:
        return self.engine in ("View", "MaterializedView")


def _objects(client: Client, database: str) -> dict[str, _Object]:
    tables = client.query(
        "SELECT name, engine, create_table_query FROM system.tables "
        "WHERE database = {db:String} AND name != 'schema_migrations' "
        "ORDER BY metadata_modification_time, name",
        parameters={"db": database},
    ).result_rows
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, name, kind in client.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String} "
        "ORDER BY table, position",
        parameters={"db": database},
    ).result_rows:
        columns.setdefault(table, []).append((name, kind))
    return {
        name: _Object(name, engine, create, tuple(columns.get(name, [])))
        for name, engine, create in tables
    }


def verify_schema(dsn: str, database: str | None = None, *, repair: bool = True) -> Verification:
    """Compare `database` (the DSN's when None) with a scratch database migrated from scratch."""
    live_client = connect(dsn, database)
    live = database or str(live_client.query("SELECT currentDatabase()").result_rows[0][0])
    scratch = f"{live}_parcours_verify"
    if not scratch.replace("_", "").isalnum():
        raise MigrationError(f"cannot verify database {live!r}: letters, digits and _ only")
    live_client.command(f"DROP DATABASE IF EXISTS `{scratch}`")
    live_client.command(f"CREATE DATABASE `{scratch}`")  # a cached client may outlive it
    try:
        scratch_client = connect(dsn, scratch)
        apply_migrations(scratch_client)
        expected = _objects(live_client, scratch)
        found = _objects(live_client, live)
        result = Verification()
        pending_views: list[_Object] = []
        for obj in expected.values():
            have = found.get(obj.name)
            create = obj.create.replace(f"{scratch}.", f"`{live}`.")
            if have is None:
                result.problems.append(f"{obj.name}: missing")
                if obj.is_view:
                    pending_views.append(obj)
                elif repair:
                    live_client.command(create)
                    result.repaired.append(f"{obj.name}: created again (empty)")
                continue
            if have.engine != obj.engine:
                result.problems.append(f"{obj.name}: engine {have.engine}, expected {obj.engine}")
                result.unrepaired.append(f"{obj.name}: engine {have.engine} (repair by hand)")
                continue
            if obj.is_view:
                if have.create.replace(f"{live}.", "") != obj.create.replace(f"{scratch}.", ""):
                    result.problems.append(f"{obj.name}: the view's query differs")
                    pending_views.append(obj)
                continue
            _compare_columns(live_client, live, obj, have, result, repair)
        if repair:
            _create_views(live_client, live, scratch, pending_views, result)
        else:
            result.unrepaired += [f"{v.name}: view not repaired" for v in pending_views]
        return result
    finally:
        live_client.command(f"DROP DATABASE IF EXISTS `{scratch}`")


def _compare_columns(
    client: Client, live: str, obj: _Object, have: _Object, result: Verification, repair: bool
) -> None:
    present = dict(have.columns)
    for name, kind in obj.columns:
        if name not in present:
            result.problems.append(f"{obj.name}.{name}: missing column")
            if repair:
                client.command(f"ALTER TABLE `{live}`.`{obj.name}` ADD COLUMN `{name}` {kind}")
                result.repaired.append(f"{obj.name}.{name}: column added (default values)")
            else:
                result.unrepaired.append(f"{obj.name}.{name}: missing column")
        elif present[name] != kind:
            result.problems.append(f"{obj.name}.{name}: type {present[name]}, expected {kind}")
            if repair:
                try:
                    client.command(
                        f"ALTER TABLE `{live}`.`{obj.name}` MODIFY COLUMN `{name}` {kind}"
                    )
                    result.repaired.append(f"{obj.name}.{name}: type changed back to {kind}")
                except Exception as exc:  # values that do not convert: a person decides
                    first = str(exc).strip().splitlines()[0]
                    result.unrepaired.append(f"{obj.name}.{name}: type {present[name]}: {first}")
            else:
                result.unrepaired.append(f"{obj.name}.{name}: type {present[name]}")
    for name in present.keys() - dict(obj.columns).keys():
        result.problems.append(f"{obj.name}.{name}: unexpected column")
        result.unrepaired.append(f"{obj.name}.{name}: unexpected column (drop it by hand)")


def _create_views(
    client: Client, live: str, scratch: str, views: list[_Object], result: Verification
) -> None:
    """Views may read other views: create in passes until none is left or none succeeds."""
    waiting = list(views)
    while waiting:
        failed: list[tuple[_Object, Exception]] = []
        for view in waiting:
            create = view.create.replace(f"{scratch}.", f"`{live}`.")
            try:
                client.command(f"DROP VIEW IF EXISTS `{live}`.`{view.name}`")
                client.command(create)
                result.repaired.append(f"{view.name}: view created again")
            except Exception as exc:  # another view it reads is not there yet
                failed.append((view, exc))
        if len(failed) == len(waiting):
            result.unrepaired += [f"{v.name}: {str(e).splitlines()[0]}" for v, e in failed]
            return
        waiting = [v for v, _ in failed]
