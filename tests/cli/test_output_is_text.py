"""Issue 12, point 3: output is text, not markup; storage errors are one clear line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from streams.cli.main import app
from streams.cli.output import error_line, render_table
from streams.clickhouse.client import connect
from streams.queries.query import QueryResult, to_csv
from streams.settings import load_settings

pytestmark = pytest.mark.integration
runner = CliRunner()

HOSTILE = [
    "[/oops]",
    "[bold red]alarm[/bold red]",
    "[link=https://evil.example]click[/link]",
    "\x1b[31mred\x1b[0m",
    "\u202eevil",
    '=HYPERLINK("https://evil.example","x")',
]


def _rendered(result: QueryResult) -> str:
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=200).print(
        render_table(result, "[/title]")
    )
    return out.getvalue()


def test_stored_text_is_printed_literally_in_a_table() -> None:
    """`[/oops]` crashed the table; `[bold red]` and `[link=…]` rendered; ANSI reached the tty."""
    shown = _rendered(QueryResult(["[/col]", "page"], [(v, v) for v in HOSTILE]))
    assert "[/oops]" in shown and "[bold red]alarm[/bold red]" in shown and "[/title]" in shown
    assert "[link=https://evil.example]click[/link]" in shown
    assert "\x1b]8;" not in shown  # no hyperlink escape
    assert "\x1b[31m" not in shown and "\\x1b[31mred" in shown
    assert "\u202e" not in shown and "\\u202eevil" in shown


def test_csv_cells_that_would_be_formulas_are_neutralised() -> None:
    csv = to_csv(QueryResult(["=bad", "n"], [('=HYPERLINK("x")', -5), ("+1", 2), ("@a", 0)]))
    lines = csv.splitlines()
    assert lines[0] == "'=bad,n"
    assert lines[1] == '"\'=HYPERLINK(""x"")",-5'  # numbers stay numbers
    assert lines[2:] == ["'+1,2", "'@a,0"]


def test_an_error_is_one_line_printed_literally() -> None:
    line = error_line(
        "query failed:", Exception("Code: 62. Syntax error [/x]\nStack trace:\n 0. …")
    )
    out = io.StringIO()
    Console(file=out, width=300).print(line)
    assert out.getvalue() == "query failed: Code: 62. Syntax error [/x]\n"


def _ingest_hostile_pages(tmp_path: Path) -> None:
    lines = []
    for i, page in enumerate(HOSTILE):
        event = {
            "event_id": f"hostile-{i}",
            "event_type": "page_view",
            "occurred_at": f"2026-11-02T10:00:0{i}Z",
            "device_id": f"hostile-device-{i}",
            "properties": {"page": page, "coupon": page},
        }
        lines.append(orjson.dumps({"topic": "clickstream", "value": event}))
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    # --final: the visits are over (the bounce KPI counts closed sessions only)
    result = runner.invoke(app, ["ingest", str(path), "--final"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "command",
    [
        ["sql", "SELECT page, event_id FROM events WHERE event_id LIKE 'hostile-%'"],
        ["kpi", "bounce", "--limit", "1000"],
        ["funnel", "--steps", "page_view,page_view", "--by", "property:coupon"],
        ["sql", "SELECT page FROM events WHERE event_id LIKE 'hostile-%'", "--format", "csv"],
    ],
)
def test_query_commands_print_stored_markup_literally(tmp_path: Path, command: list[str]) -> None:
    _ingest_hostile_pages(tmp_path)
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "[/oops]" in result.output and "\x1b[" not in result.output


def test_a_second_process_on_the_embedded_database_gets_a_clear_message() -> None:
    connect(load_settings().resolved_clickhouse_dsn())  # this process holds it now
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "sql", "SELECT 1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"in use by another process (PID {os.getpid()})" in " ".join(done.stderr.split())
