"""The sink stage's spike judging survives a restart: a stage started on the tables a stopped
one left rebuilds its tracker from the stored minutes and spikes, and ends with the spikes
(and the row versions) of a stage that never stopped, also for a spike open at the restart.
No broker needed: messages are stand-ins for the records topic, the tables real (chDB)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from clickhouse_connect.driver.client import Client

from streams.core.config import MINUTE_MS
from streams.core.records import MinuteAggregate
from streams.sinks.clickhouse import ClickHouseSink
from streams.worker.sink_stage import SinkStage
from tests.core.test_spikes import DAY_MIN, T0, month
from tests.worker.test_sink_stage_faults import Message, _packed

pytestmark = pytest.mark.integration

OUTAGE = (8 * DAY_MIN + 18 * 60, 8 * DAY_MIN + 22 * 60)  # minutes: Friday 18:00-22:00
RESTART = 8 * DAY_MIN + 19 * 60  # an hour into the outage: the spike is open


def _hours(rows: list[MinuteAggregate]) -> list[tuple[int, list[MinuteAggregate]]]:
    """The minutes an hour at a time, as the journey would publish them."""
    out: dict[int, list[MinuteAggregate]] = {}
    for row in rows:
        out.setdefault((row.minute_ms - T0) // MINUTE_MS // 60, []).append(row)
    return sorted(out.items())


def _stage(client: Client) -> SinkStage:
    sink = ClickHouseSink(client, flush_interval_s=None)
    return SinkStage("127.0.0.1:1", "parcours-records", sink, dead_letter=lambda v, h: None)


def _stored(client: Client) -> list[tuple[object, ...]]:
    return client.query(
        "SELECT spike_id, type, channel, started_at, ended_at, signals, status, version, "
        "is_deleted FROM friction_spikes FINAL ORDER BY spike_id"
    ).result_rows


def _feed(stage: SinkStage, hours: list[tuple[int, list[MinuteAggregate]]]) -> None:
    for offset, (_, rows) in enumerate(hours):
        stage._write([Message(_packed(list(rows)), offset)])


def test_a_restarted_sink_judges_spikes_as_if_it_had_never_stopped(
    fresh_database: Callable[[], tuple[str, Client]],
) -> None:
    hours = _hours(month(days=10, incident=(*OUTAGE, 5.0)))
    before = [h for h in hours if h[0] * 60 < RESTART]
    after = [h for h in hours if h[0] * 60 >= RESTART]

    _, steady = fresh_database()
    uninterrupted = _stage(steady)
    _feed(uninterrupted, hours)

    _, restarted = fresh_database()
    _feed(_stage(restarted), before)
    assert [r[6] for r in _stored(restarted)] == ["open"]  # the outage, open when it stops
    carried_on = _stage(restarted)  # a new process: nothing in memory
    _feed(carried_on, after)

    assert carried_on.spikes.spikes() == uninterrupted.spikes.spikes()
    assert _stored(restarted) == _stored(steady)
    (spike,) = [r for r in _stored(steady) if not r[8]]
    assert spike[6] == "closed"
    started = (spike[3].timestamp() * 1000 - T0) / MINUTE_MS  # type: ignore[attr-defined]
    assert abs(started - OUTAGE[0]) <= 15


def test_a_sink_on_empty_tables_starts_afresh(ch: Client) -> None:
    stage = _stage(ch)
    _feed(stage, _hours(month(days=1))[:2])
    assert stage.spikes.last_step >= 0 and stage.spikes.spikes() == []
