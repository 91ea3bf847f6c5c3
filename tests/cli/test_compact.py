"""`parcours ingest` folds the persons into the rows at its end; `parcours compact` by hand."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from streams.cli.main import app

pytestmark = pytest.mark.integration
runner = CliRunner()

PENDING = "SELECT count() AS n FROM person_overrides_pending"
ANON_OF_LINKED = (
    "SELECT count() AS n FROM events AS e ASOF INNER JOIN person_overrides AS o "
    "ON e.device_id = o.device_id AND e.occurred_at >= o.valid_from "
    "WHERE e.customer_id = '' AND e.person_id != o.person_id"
)


def count(sql: str) -> int:
    result = runner.invoke(app, ["sql", sql, "--format", "json"])
    assert result.exit_code == 0, result.output
    return int(orjson.loads(result.output)[0]["n"])


def test_ingest_leaves_no_override_pending_and_compact_has_nothing_left(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic.jsonl"
    args = ["simulate", "--customers", "60", "--days", "2", "--out", str(traffic)]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["ingest", str(traffic)])
    assert result.exit_code == 0, result.output
    assert count("SELECT count() AS n FROM identity_links") > 0
    assert count(PENDING) == 0  # every re-attributed row carries its customer already
    assert count(ANON_OF_LINKED) == 0
    result = runner.invoke(app, ["compact"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("0 event rows rewritten")
