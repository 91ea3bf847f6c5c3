"""The sink stage drops records naming an erased subject (sent before her erasure, read after)
and stores the rest: Anna's story records, then the suppression list grows while the stage
runs. No broker needed: messages are stand-ins (tests/worker/test_sink_stage_faults.py)."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from streams.core.records import Record
from streams.privacy.policy import PrivacyFilter
from streams.sinks.clickhouse import ClickHouseSink
from streams.worker.messages import record_to_bytes
from streams.worker.sink_stage import SinkStage
from tests.journeys.privacy_stories import ANNA, BEN
from tests.privacy.search import found
from tests.privacy.test_suppression import ANNA_HASHES, KEY, _run
from tests.worker.test_sink_stage_faults import Message

pytestmark = pytest.mark.integration


class Reader:
    """The suppression topic as the stage polls it: hashes arrive while it runs."""

    def __init__(self) -> None:
        self.arriving: list[str] = []

    def poll(self) -> set[str]:
        hashes, self.arriving = set(self.arriving), []
        return hashes


def _packed(items: list[Record]) -> bytes:
    return b"[" + b",".join(record_to_bytes(r) for r in items) + b"]"


def test_records_naming_her_are_not_stored_once_she_is_suppressed(ch: Client) -> None:
    _, records = _run(finish=True)
    reader = Reader()
    stage = SinkStage(
        "127.0.0.1:1",
        "parcours-records",
        ClickHouseSink(ch, flush_interval_s=None),
        privacy=PrivacyFilter(KEY),
        suppressions=reader,  # type: ignore[arg-type]
    )
    reader.arriving = ANNA_HASHES
    stage._write([Message(_packed(records), 0)])
    assert stage.stats.suppressed > 0
    for needle in (ANNA, "w-anna", "a-anna"):
        assert found(ch, needle) == {}, needle
    assert ch.query(f"SELECT count() FROM events WHERE customer_id = '{BEN}'").result_rows == [(2,)]
    assert ch.query("SELECT count() FROM events_per_minute").result_rows[0][0] > 0
