"""`parcours funnel | kpi | friction | sql | migrate`: questions product teams ask."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from clickhouse_connect.driver.client import Client
from rich.console import Console

from streams.cli.app import app
from streams.cli.output import FORMATS, error_line, literal, print_result
from streams.clickhouse.client import check_database_name, connect, session_client
from streams.clickhouse.errors import ConnectionFailed, StorageError
from streams.clickhouse.migrations import apply_migrations
from streams.clickhouse.roles import apply_roles
from streams.clickhouse.verify import verify_schema
from streams.queries.funnel import (
    PENDING_OVERRIDES,
    Exclusion,
    FunnelSpec,
    Step,
    funnel_query,
    funnel_result,
)
from streams.queries.guard import check_statement
from streams.queries.kpi import KPIS, friction_query, kpi_query
from streams.queries.query import Query, QueryError, run_query
from streams.settings import load_settings

err = Console(stderr=True)
#: Without --from/--to a query covers all the data: the contract refuses events before
#: 2000-01-01 and more than 24 h in the future.
DEFAULT_FROM = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_TO_AHEAD = timedelta(days=1)
FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="Start, inclusive (ISO date/time, UTC). Default: no lower bound (all the data).",
    ),
]
ToOpt = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="End, exclusive (ISO date/time, UTC). Default: no upper bound "
        "(now + 1 day: events may be dated up to 24 h ahead).",
    ),
]
FormatOpt = Annotated[str, typer.Option("--format", help="table | json | csv")]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Read this database instead of the DSN's (e.g. demo, where `parcours demo` writes).",
    ),
]


def client_or_exit(database: str | None = None) -> Client:
    """The pipeline's client, migrated; `database` must exist already (a typo in
    `--database` is an error, not a new empty database that answers every query with 0)."""
    try:
        dsn = load_settings().resolved_clickhouse_dsn()
        client = connect(dsn)
        if database is not None:
            check_database_name(database)
            found = client.query(
                "SELECT count() FROM system.databases WHERE name = {name:String}",
                parameters={"name": database},
            ).result_rows[0][0]
            if not found:
                raise ConnectionFailed(
                    f"no database {database!r} (`parcours demo` writes to 'demo'; "
                    "`parcours ingest --database NAME` creates one)"
                )
            client = connect(dsn, database)
        apply_migrations(client)
        return client
    except StorageError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None


def parse_range(date_from: str | None, date_to: str | None) -> tuple[datetime, datetime]:
    def parse(text: str) -> datetime:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not an ISO date or date-time") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    end = parse(date_to) if date_to else datetime.now(UTC) + DEFAULT_TO_AHEAD
    start = parse(date_from) if date_from else DEFAULT_FROM
    if start >= end:
        raise typer.BadParameter(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    return start, end


def _window(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise typer.BadParameter(f"window {text!r}: use a number and a unit, e.g. 90s, 30m, 1h, 7d")
    return int(text[:-1]) * units[text[-1]]


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")


#: ClickHouse's `readonly = 1`: SELECT only (no INSERT, ALTER, DROP, TRUNCATE, no settings
#: changes, no table functions). What every analyst query runs with unless `--write`.
READ_ONLY: dict[str, object] = {"readonly": 1}


@contextmanager
def analyst_reader(database: str | None = None) -> Iterator[Client]:
    """A session of its own to read in, as every analyst query reads: the analyst DSN when
    configured (which never migrates: analysts cannot), else the pipeline's, migrated first.
    Queries sent through it pass `READ_ONLY` themselves. Closed on leaving."""
    analyst = load_settings().analyst_dsn
    if analyst is None:
        client_or_exit(database)  # the embedded default, or the pipeline's server: migrated
    dsn = analyst.get_secret_value() if analyst else load_settings().resolved_clickhouse_dsn()
    reader = session_client(dsn, database)
    try:
        yield reader
    finally:
        reader.close()


def run_or_exit(
    query: Query, settings: dict[str, object] | None = READ_ONLY, database: str | None = None
) -> object:
    """Run a query: read-only in a session of its own (`analyst_reader`), or, with
    `settings=None` (`sql --write`), with the pipeline's client. `database` reads another
    database than the DSN's."""
    try:
        if settings is None:
            return run_query(client_or_exit(database), query)
        with analyst_reader(database) as reader:
            return run_query(reader, query, settings=settings)
    except typer.Exit:
        raise
    except QueryError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(2) from None
    except StorageError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None
    except Exception as exc:  # ClickHouse reports a bad query as an exception
        if "Code: 164" in str(exc) and settings == READ_ONLY:
            err.print(
                error_line(
                    "refused:",
                    "parcours sql is read-only; an administrator may change data with --write",
                )
            )
            raise typer.Exit(2) from None
        err.print(error_line("query failed:", exc))
        raise typer.Exit(1) from None


@app.command()
def funnel(
    steps: Annotated[
        str,
        typer.Option(
            help="Comma-separated event types; filter a step with type[channel=store,"
            "properties.coupon=X] (also !=, >, <, >=, <= on numbers, in a|b)."
        ),
    ],
    window: Annotated[
        str, typer.Option(help="Conversion window from step 1, e.g. 30m, 1h, 7d.")
    ] = "1h",
    by: Annotated[
        str | None,
        typer.Option(
            help="Breakdown: channel, device_type, property:NAME, or utm_source, utm_medium, "
            "utm_campaign (campaign attribution, see --attribution)."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="No other step events in between (strict order).")
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            help="EVENT:FROM-TO, repeatable: persons who did EVENT between steps FROM and TO "
            "(within the window) do not convert past FROM, e.g. remove_from_cart:2-3."
        ),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option(help="day | week: the funnel of each entry cohort (conversion over time)."),
    ] = None,
    attribution: Annotated[
        str,
        typer.Option(
            help="With --by utm_source|utm_medium|utm_campaign: first or last touch before entry."
        ),
    ] = "first",
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    fmt: FormatOpt = "table",
    database: DatabaseOpt = None,
) -> None:
    """Ordered funnel over persons (resolved across devices), per step and breakdown."""
    check_format(fmt)
    start, end = parse_range(date_from, date_to)
    try:
        parsed = tuple(Step.parse(s) for s in _split_steps(steps))
        exclusions = tuple(Exclusion.parse(x) for x in exclude or ())
        spec = FunnelSpec(
            parsed,
            _window(window),
            start,
            end,
            by,
            strict,
            exclusions=exclusions,
            interval=interval,
            attribution=attribution,
        )
    except QueryError as exc:
        raise typer.BadParameter(str(exc)) from None
    pending = run_or_exit(PENDING_OVERRIDES, database=database)
    query = funnel_query(spec, join_overrides=bool(pending.rows[0][0]))  # type: ignore[attr-defined]
    result = run_or_exit(query, database=database)
    print_result(funnel_result(spec, result), fmt, "Funnel")  # type: ignore[arg-type]


def _split_steps(text: str) -> list[str]:
    """Split on commas outside [...] filters."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in (s.strip() for s in parts) if p]


@app.command()
def kpi(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(KPIS)}, or all.")] = "all",
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    limit: Annotated[int, typer.Option(help="Rows at most (bounce by landing page).")] = 20,
    fmt: FormatOpt = "table",
    database: DatabaseOpt = None,
) -> None:
    """Conversion per channel, bounce by landing page, abandonment by device, channel switches."""
    check_format(fmt)
    start, end = parse_range(date_from, date_to)
    names = list(KPIS) if name == "all" else [name]
    for kpi_name in names:
        try:
            query = kpi_query(kpi_name, start, end, limit=limit)
        except QueryError as exc:
            raise typer.BadParameter(str(exc)) from None
        print_result(run_or_exit(query, database=database), fmt, kpi_name)  # type: ignore[arg-type]


@app.command()
def friction(
    by: Annotated[str, typer.Option(help="day or hour")] = "day",
    signal_type: Annotated[
        str | None, typer.Option("--type", help="Only this signal type.")
    ] = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    fmt: FormatOpt = "table",
    database: DatabaseOpt = None,
) -> None:
    """Friction signals over time, by type and channel."""
    check_format(fmt)
    start, end = parse_range(date_from, date_to)
    try:
        query = friction_query(start, end, by, signal_type)
    except QueryError as exc:
        raise typer.BadParameter(str(exc)) from None
    print_result(run_or_exit(query, database=database), fmt, "Friction")  # type: ignore[arg-type]


@app.command()
def sql(
    statement: Annotated[str, typer.Argument(help="A SELECT over the public tables.")],
    fmt: FormatOpt = "table",
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Allow statements that change data (administrators; asks on a terminal).",
        ),
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Run a SQL query against the Parcours database (embedded or server), read-only."""
    check_format(fmt)
    try:
        check_statement(statement)
    except QueryError as exc:
        err.print(error_line("refused:", exc))
        raise typer.Exit(2) from None
    if write and sys.stdin.isatty():
        typer.confirm("This statement may change or delete Parcours data. Run it?", abort=True)
    print_result(run_or_exit(Query(statement), None if write else READ_ONLY, database), fmt)  # type: ignore[arg-type]


@app.command()
def migrate(
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Also compare every table and view with what the migrations create, and "
            "repair what differs (a dropped table or view, a missing or altered column).",
        ),
    ] = False,
    roles: Annotated[
        bool,
        typer.Option(
            "--roles",
            help="On a ClickHouse server: create the parcours_writer and parcours_analyst "
            "roles (infra/clickhouse/roles/roles.sql). Not on chDB.",
        ),
    ] = False,
) -> None:
    """Apply pending ClickHouse migrations (also done automatically at start-up)."""
    dsn = load_settings().resolved_clickhouse_dsn()
    try:
        client = connect(dsn)
        applied = apply_migrations(client)
        checked = verify_schema(dsn) if verify else None
        granted = apply_roles(client, dsn) if roles else []
    except StorageError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None
    out = Console()
    out.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    if roles:
        out.print(f"roles: {len(granted)} statements (parcours_writer, parcours_analyst)")
    if checked is None:
        return
    for line in checked.repaired:
        out.print(literal(f"repaired: {line}"))
    for line in checked.unrepaired:
        err.print(literal(f"not repaired: {line}"))
    if not checked.problems:
        out.print("verified: every table and view is as the migrations create it")
    if checked.unrepaired:
        raise typer.Exit(1)
