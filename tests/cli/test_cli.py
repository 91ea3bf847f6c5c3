"""The command line, end to end: simulate a file, ingest it, ask questions."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from streams.cli.main import app

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "demo",
        "ingest",
        "simulate",
        "funnel",
        "kpi",
        "friction",
        "sql",
        "migrate",
        "schema",
    ):
        assert command in result.output


def test_simulate_ingest_and_query(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic.jsonl"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--customers",
            "40",
            "--days",
            "1",
            "--out",
            str(traffic),
            "--incident",
            "payment_outage:+10h:+14h",
        ],
    )
    assert result.exit_code == 0, result.output
    assert traffic.stat().st_size > 0
    result = runner.invoke(app, ["ingest", str(traffic)])
    assert result.exit_code == 0, result.output
    assert "events processed" in result.output and "rejected" in result.output
    result = runner.invoke(
        app,
        [
            "funnel",
            "--steps",
            "view_item,add_to_cart,purchase",
            "--by",
            "channel",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.output)
    assert rows and {r["step"] for r in rows} == {1, 2, 3}
    result = runner.invoke(app, ["kpi", "conversion", "--format", "csv"])
    assert result.exit_code == 0 and result.output.startswith("channel,sessions")
    result = runner.invoke(app, ["sql", "SELECT count() AS n FROM events", "--format", "json"])
    assert result.exit_code == 0 and orjson.loads(result.output)[0]["n"] > 0
    result = runner.invoke(app, ["friction", "--by", "hour", "--format", "json"])
    assert result.exit_code == 0


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["simulate", "--incident", "flood:+1d:+2d", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "flood" in result.output
    result = runner.invoke(app, ["funnel", "--steps", "view_item", "--window", "1h"])
    assert result.exit_code != 0
    result = runner.invoke(app, ["funnel", "--steps", "a,b", "--window", "soon"])
    assert result.exit_code != 0 and "window" in result.output
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing.jsonl")])
    assert result.exit_code != 0


def test_schema_export(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "export", str(tmp_path / "json")])
    assert result.exit_code == 0
    assert (tmp_path / "json" / "event.json").exists()


@pytest.mark.parametrize("command", ["funnel", "kpi", "friction"])
def test_date_range_help_says_what_the_defaults_do(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Default: no lower bound (all the data)" in text
    assert "Default: no upper bound (now + 1 day" in text
    assert "30 days" not in text


def test_date_range_defaults_cover_all_the_data() -> None:
    from datetime import UTC, datetime, timedelta

    from streams.cli.query_cmds import _range

    start, end = _range(None, None)
    assert start == datetime(2000, 1, 1, tzinfo=UTC)  # the contract's oldest accepted event
    assert abs(end - (datetime.now(UTC) + timedelta(days=1))) < timedelta(minutes=1)
    assert _range("2026-11-02", "2026-11-03T12:00") == (
        datetime(2026, 11, 2, tzinfo=UTC),
        datetime(2026, 11, 3, 12, tzinfo=UTC),
    )
    result = runner.invoke(app, ["friction", "--from", "2026-11-05", "--to", "2026-11-02"])
    assert result.exit_code == 2 and "not before --to" in result.output


def test_ingest_bare_events_with_topic(tmp_path: Path) -> None:
    """`--topic T`: each line is a message value of topic T (one event or an array)."""
    from streams.clickhouse.client import connect
    from streams.settings import load_settings

    def screen(event_id: str, second: int) -> bytes:
        return orjson.dumps(
            {
                "event_id": event_id,
                "event_type": "screen_view",
                "occurred_at": f"2026-11-02T10:00:{second:02d}Z",
                "device_id": "bare-device",
                "properties": {"screen": "home", "device_type": "mobile"},
            }
        )

    array = (
        b"[ " + screen("bare-2", 5) + b' ,  {"event_id": "bare-3", "prix": "\xc3\xa9t\xc3\xa9"} ]'
    )
    lines = [screen("bare-1", 0), b"", array, b"not json {", b'"a string"']
    path = tmp_path / "bare-app-events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\r\n")
    result = runner.invoke(app, ["ingest", "--topic", "app-events", str(path)])
    assert result.exit_code == 0, result.output
    assert "events processed" in result.output
    client = connect(load_settings().resolved_clickhouse_dsn())
    stored = client.query(
        "SELECT event_id, channel, device_type FROM events WHERE device_id = 'bare-device' "
        "ORDER BY event_id"
    ).result_rows
    assert stored == [("bare-1", "app", "mobile"), ("bare-2", "app", "mobile")]
    rejected = client.query(
        "SELECT position, batch_index, topic, reason, raw FROM rejections "
        "WHERE source = 'file:bare-app-events.jsonl' ORDER BY position"
    ).result_rows
    assert [r[:4] for r in rejected] == [
        (3, 1, "app-events", "invalid_value"),
        (4, None, "app-events", "invalid_json"),
        (5, None, "app-events", "not_an_object"),
    ]
    # the original line, byte for byte (spaces and UTF-8 included), without its line ending
    assert [r[4].encode() for r in rejected] == [array, b"not json {", b'"a string"']
    result = runner.invoke(app, ["ingest", "--topic", "pageviews", str(path)])
    assert result.exit_code == 2 and "unknown topic" in result.output


@pytest.mark.slow
def test_demo_prints_the_reports_and_the_incident_day_stands_out() -> None:
    """`parcours demo` at reduced scale: every report prints, and the payment outage's day has
    far more payment failures than any other day."""
    from datetime import date

    from streams.cli.demo_cmd import DEMO_DATABASE
    from streams.clickhouse.client import connect
    from streams.settings import load_settings

    result = runner.invoke(app, ["demo", "--customers", "400", "--days", "5", "--seed", "3"])
    assert result.exit_code == 0, result.output
    for title in (
        "Parcours demo",
        "Funnel view_item → purchase",
        "Conversion per channel",
        "Bounce rate of the top landing pages",
        "Cart and checkout abandonment by device type",
        "Checkouts started online, finished in store",
        "Friction per day (the payment outage was on Thu 05 Nov)",
        "Query the data further",
    ):
        assert title in result.output, title
    client = connect(load_settings().resolved_clickhouse_dsn(), DEMO_DATABASE)
    per_day = dict(
        client.query(
            "SELECT toDate(occurred_at) AS day, uniqExact(signal_id) FROM friction "
            "WHERE type = 'payment_failure' GROUP BY day"
        ).result_rows
    )
    incident = per_day.pop(date(2026, 11, 5))
    assert incident > 3 * max(per_day.values(), default=0) and incident >= 5, (incident, per_day)


def _sample_total(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name)] in "{ "
    )


def test_ingest_serves_prometheus_metrics(tmp_path: Path) -> None:
    """`parcours ingest --metrics-port` serves the same counters as a worker, and they add up to
    the run's own summary (deltas: the registry is shared by everything in this process)."""
    import socket
    import urllib.request

    from prometheus_client import generate_latest

    from streams.metrics import REGISTRY

    traffic = tmp_path / "traffic.jsonl"
    result = runner.invoke(
        app,
        [
            "simulate",
            *("--customers", "30", "--days", "1", "--seed", "4"),
            *("--duplicate-rate", "0.05", "--malformed-rate", "0.05", "--out", str(traffic)),
        ],
    )
    assert result.exit_code == 0, result.output
    names = (
        "parcours_events_consumed_total",
        "parcours_events_processed_total",
        "parcours_events_rejected_total",
        "parcours_events_duplicate_total",
    )
    before_text = generate_latest(REGISTRY).decode()
    before = {name: _sample_total(before_text, name) for name in names}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(app, ["ingest", str(traffic), "--fresh", "--metrics-port", str(port)])
    assert result.exit_code == 0, result.output
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    delta = {name: _sample_total(body, name) - before[name] for name in names}
    lines = sum(1 for _ in traffic.open("rb"))
    assert delta["parcours_events_consumed_total"] == lines
    assert delta["parcours_events_rejected_total"] > 0
    assert delta["parcours_events_duplicate_total"] > 0
    summary = {  # the table printed at the end: "│ name │ count │"
        cells[0]: int(cells[1].replace(",", ""))
        for line in result.output.splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) == 2
        and cells[1].replace(",", "").isdigit()
    }
    assert delta["parcours_events_duplicate_total"] == summary["duplicates dropped"]
    assert delta["parcours_events_rejected_total"] == summary["rejected"]
    processed = delta["parcours_events_processed_total"] + delta["parcours_events_duplicate_total"]
    # the summary counts duplicates as read; events of the input's last grace period are
    # written too (applied at the end of the run, revised into place by the next one's)
    assert processed == summary["events processed"]
