"""Streaming: the worker's dead-letter message and its records carry the scrubbed (and
pseudonymised) bytes, not the original ones (the worker applies the same filter at decode)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from schemas import Rejection, decode
from streams.core.config import JourneyConfig
from streams.privacy.settings import PrivacySettings
from streams.privacy.setup import worker_privacy
from streams.worker.identify_stage import Wiring, reject_message
from streams.worker.messages import outputs_from_bytes
from streams.worker.outbox import Outbox
from tests.journeys.privacy_stories import ANNA, ANNA_PHONE

pytestmark = pytest.mark.unit

VALUE = (
    b'{"event_id":"e1","occurred_at":"2026-11-02T10:00:00Z","device_id":"w-anna",'
    b'"customer_id":"' + ANNA.encode() + b'","properties":{"note":"' + ANNA_PHONE.encode() + b'"}}'
)


class Topic:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


class Message:
    topic, partition, offset, key, timestamp, value = (
        "clickstream",
        0,
        5,
        b"k",
        1_800_000_000.0,
        VALUE,
    )


def test_dlq_and_records_hold_no_email_phone_or_clear_id(tmp_path: Path) -> None:
    settings = PrivacySettings(pseudonymise=True, key="worker secret")
    privacy = worker_privacy(tmp_path, JourneyConfig(), settings)
    rejections = [
        r for r in privacy.apply(decode(VALUE, "clickstream")) if isinstance(r, Rejection)
    ]
    assert len(rejections) == 1  # no event_type
    dlq, records = Topic(), Topic()
    wiring = Wiring(None, Topic(), records, dlq, 4, None, None)  # type: ignore[arg-type]

    async def run() -> None:
        outbox = Outbox()
        await reject_message(wiring, outbox, rejections, Message())
        await outbox.send()

    asyncio.run(run())
    [sent] = dlq.sent
    [pack] = [s["value"] for s in records.sent]
    for data in (sent["value"], pack, *(i.rejection.raw for i in outputs_from_bytes(pack))):  # type: ignore[union-attr]
        assert ANNA.encode() not in data and b"w-anna" not in data
        assert ANNA_PHONE.encode() not in data
    assert b"[redacted:phone]" in sent["value"]
    assert b"worker secret" not in sent["value"] + pack
