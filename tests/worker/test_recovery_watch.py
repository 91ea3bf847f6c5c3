"""The recovery watch (streams/worker/recovery_watch.py): which lost changelog reads it reads
again, and what it reports, on a real aiokafka consumer object's state (no broker)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from streams import metrics
from streams.worker.faust_internals import ChangelogRead
from streams.worker.recovery_watch import lost_reads, report_recovery, reread_lost_changelogs
from tests.worker.test_client_state import CHANGELOG, _app, _client, _seek

pytestmark = pytest.mark.unit


def _read(**change: Any) -> ChangelogRead:
    fields: dict[str, Any] = {
        "tp": CHANGELOG,
        "need": 30,
        "have": -1,
        "position": 31,
        "awaiting_reset": False,
        "paused": False,
        "buffered": False,
        "heard_at": 100.0,
    }
    return ChangelogRead(**{**fields, **change})


@pytest.mark.parametrize(
    ("read", "now", "lost"),
    [
        # handed out to the end, nothing heard for 30 s: from the start again
        (_read(), 130.0, [(CHANGELOG, 0)]),
        (_read(have=11), 130.0, [(CHANGELOG, 12)]),
        # not quiet long enough
        (_read(), 129.0, []),
        (_read(heard_at=110.0), 130.0, []),
        # the client has handed out nothing past what recovery applied
        (_read(have=11, position=12), 200.0, []),
        (_read(position=0), 200.0, []),
        # the records are on their way, or the client is not reading the partition
        (_read(buffered=True), 200.0, []),
        (_read(paused=True), 200.0, []),
        (_read(position=None, awaiting_reset=True), 200.0, []),
        (_read(position=None), 200.0, []),
    ],
)
def test_what_counts_as_lost(read: ChangelogRead, now: float, lost: list[Any]) -> None:
    assert lost_reads([read], now, after_s=30.0) == lost


class _Seeks:
    """Stands in for Faust's `Consumer.seek` (the client's own seek is tested elsewhere)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, int]] = []

    async def __call__(self, tp: Any, offset: int) -> None:
        self.calls.append((tp, offset))


def test_lost_records_are_read_again_once_per_quiet_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.recovery")
    counter = metrics.CHANGELOG_REREADS.labels(CHANGELOG.topic)
    before = counter._value.get()

    async def scenario() -> tuple[list[int], list[tuple[Any, int]]]:
        client = await _client()
        _seek(client, CHANGELOG, 31)
        app = _app(client, have=6, heard_at=105.0)
        app.consumer.seek = seeks = _Seeks()
        counts = [
            await reread_lost_changelogs(app, 130.0, log, after_s=30.0),  # 25 s: not yet
            await reread_lost_changelogs(app, 135.0, log, after_s=30.0),
            await reread_lost_changelogs(app, 150.0, log, after_s=30.0),  # just read again
            await reread_lost_changelogs(app, 165.0, log, after_s=30.0),
        ]
        app.in_recovery = False
        counts.append(await reread_lost_changelogs(app, 500.0, log, after_s=30.0))
        return counts, seeks.calls

    with caplog.at_level(logging.WARNING, logger="test.recovery"):
        counts, calls = asyncio.run(scenario())
    assert counts == [0, 1, 0, 1, 0]
    assert calls == [(CHANGELOG, 7), (CHANGELOG, 7)]
    assert counter._value.get() - before == 2
    message = caplog.records[0].getMessage()
    assert "parcours-x-persons-changelog/2 up to offset 30 but recovery applied up to 6" in message
    assert "reading from 7 again" in message


def test_a_long_recovery_is_reported_with_the_clients_view(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.recovery")

    async def scenario() -> None:
        client = await _client()
        _seek(client, CHANGELOG, 7)
        app = _app(client, have=6, queued=3)
        report_recovery(app, 130.0, log)  # half a minute: nothing yet
        assert not caplog.records
        report_recovery(app, 170.0, log)
        report_recovery(app, 180.0, log)  # once a minute
        app.in_recovery = False
        report_recovery(app, 300.0, log)

    with caplog.at_level(logging.WARNING, logger="test.recovery"):
        asyncio.run(scenario())
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "table recovery running for 70 s" in message
    assert "calls queued: 3" in message
    assert "records waiting for recovery: 0" in message
    assert "parcours-x-persons-changelog/2: need 30, have 6, position 7" in message
    assert "paused False, buffered False" in message
