"""Every query command reads the database `--database` names (issue 13: after `make demo`
the commands read the empty default database, the demo having written to `demo`)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from streams.cli.main import app

pytestmark = pytest.mark.integration
runner = CliRunner()
_names = itertools.count()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database of its own, filled by `parcours ingest --database`."""
    database = f"dbopt{os.getpid()}_{next(_names)}"
    traffic: Path = tmp_path_factory.mktemp("dbopt") / "traffic.jsonl"
    result = runner.invoke(
        app, ["simulate", "--customers", "30", "--days", "1", "--out", str(traffic)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["ingest", "--final", "--database", database, str(traffic)])
    assert result.exit_code == 0, result.output
    return database


def _json(args: list[str]) -> list[dict[str, object]]:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = orjson.loads(result.output)
    return rows


def test_every_query_command_reads_the_named_database(ingested: str) -> None:
    db = ["--database", ingested]
    counted = _json(["sql", "SELECT uniqExact(event_id) AS n FROM events", *db])
    assert int(str(counted[0]["n"])) > 0
    funnel = _json(["funnel", "--steps", "view_item,add_to_cart", "--window", "1d", *db])
    assert funnel and int(str(funnel[0]["persons"])) > 0
    conversion = _json(["kpi", "conversion", *db])
    assert conversion and {r["channel"] for r in conversion} <= {"web", "app", "store"}
    assert _json(["friction", *db])


def test_the_default_database_is_not_the_named_one(ingested: str) -> None:
    """Same session DSN, no `--database`: another database (the count differs or is 0)."""
    named = _json(["sql", "SELECT uniqExact(event_id) AS n FROM events", "--database", ingested])
    default = _json(["sql", "SELECT currentDatabase() AS db"])
    assert default[0]["db"] != ingested and int(str(named[0]["n"])) > 0


def test_a_missing_database_is_a_clear_error_and_is_not_created() -> None:
    result = runner.invoke(app, ["kpi", "conversion", "--database", "no_such_db_xyz"])
    assert result.exit_code == 1
    assert "no database 'no_such_db_xyz'" in result.output
    assert "query failed" not in result.output
    listed = _json(
        ["sql", "SELECT count() AS n FROM system.databases WHERE name = 'no_such_db_xyz'"]
    )
    assert listed[0]["n"] == 0


def test_a_bad_database_name_is_refused() -> None:
    result = runner.invoke(app, ["sql", "SELECT 1", "--database", "x`; DROP"])
    assert result.exit_code == 1 and "letters, digits and _ only" in result.output


#: The commands that read stored answers; each must take `--database`.
READING_COMMANDS = (
    "funnel",
    "kpi",
    "friction",
    "sql",
    "spikes",
    "paths",
    "retention",
    "touchpoints",
    "person",
    "report",
)


@pytest.mark.parametrize("command", READING_COMMANDS)
def test_every_reading_command_takes_database(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "--database" in result.output


def test_spikes_reads_the_named_database(ingested: str) -> None:
    """A spike stored in the named database is listed with `--database`, and only there."""
    insert = (
        "INSERT INTO friction_spikes (spike_id, type, channel, device_type, started_at, "
        "ended_at, observed, expected, ratio, score, status, signals, expected_signals, "
        "denominator, version, is_deleted) VALUES ('dbopt-spike', 'payment_failure', 'web', '', "
        "'2026-11-02 10:00:00', '2026-11-02 11:00:00', 0.3, 0.05, 6, 12.5, 'closed', 9, 1.5, "
        "30, 1, 0)"
    )
    written = runner.invoke(app, ["sql", insert, "--write", "--database", ingested])
    assert written.exit_code == 0, written.output
    listed = _json(["spikes", "--database", ingested, "--from", "2026-11-02"])
    assert [(r["type"], r["channel"], r["signals"]) for r in listed] == [
        ("payment_failure", "web", 9)
    ]
    default = _json(["spikes", "--from", "2026-11-02", "--to", "2026-11-03"])
    assert all(r["signals"] != 9 or r["ratio"] != 6 for r in default)
    missing = runner.invoke(app, ["spikes", "--database", "no_such_db_xyz"])
    assert missing.exit_code == 1 and "no database 'no_such_db_xyz'" in missing.output
