"""The streaming stages' suppression checks and the cleaning of a worker's state, on Anna's
story run through the core: what names her is dropped, Ben's is kept, and a journey
partition written whole after the erasure restores without her (streams/privacy/
suppression.py, streams/worker/checkpoint.py `full_commit`)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.codec import device_to_dict, person_to_dict
from streams.core.config import JourneyConfig
from streams.core.pipeline import JourneyPipeline
from streams.core.records import MinuteAggregate, Record
from streams.core.watermarks import WatermarkTracker
from streams.privacy.keys import PrivacyKey
from streams.privacy.policy import PrivacyFilter
from streams.privacy.suppression import (
    forget_suppressed,
    item_suppressed,
    record_suppressed,
)
from streams.worker.checkpoint import (
    JourneyPartition,
    checkpoint_key,
    full_commit,
    restore_partition,
)
from tests.journeys.core_runner import event_from_message
from tests.journeys.privacy_stories import ANNA, ANNA_AND_BEN, BEN

pytestmark = pytest.mark.unit

KEY = PrivacyKey("suppression test")
#: What `parcours forget --customer anna` puts on the list: her id and her devices.
ANNA_HASHES = [
    KEY.subject("customer", ANNA),
    KEY.subject("device", "w-anna"),
    KEY.subject("device", "a-anna"),
]


def _run(finish: bool) -> tuple[JourneyPipeline, list[Record]]:
    pipeline = JourneyPipeline(JourneyConfig())
    records: list[Record] = []
    for topic, value in ANNA_AND_BEN.messages():
        records.extend(pipeline.process(event_from_message(topic, value)))
    if finish:
        records.extend(pipeline.finish())
    return pipeline, records


def _names_anna(data: object) -> bool:
    text = repr(data)
    return ANNA in text or "w-anna" in text or "a-anna" in text


def test_records_naming_her_are_dropped_and_no_other() -> None:
    _, records = _run(finish=True)
    privacy = PrivacyFilter(KEY, suppressed=ANNA_HASHES)
    kinds = set()
    for record in records:
        if isinstance(record, MinuteAggregate):
            assert not record_suppressed(privacy, record)  # anonymous counts
            continue
        assert record_suppressed(privacy, record) == _names_anna(record), record
        kinds.add(type(record).__name__)
    assert {"EventRow", "SessionSummary", "IdentityLink"} <= kinds
    assert not any(record_suppressed(PrivacyFilter(KEY), r) for r in records)


def test_a_device_alone_is_found_in_anonymous_and_guest_persons() -> None:
    privacy = PrivacyFilter(KEY, suppressed=[KEY.subject("device", "kiosk:7")])
    assert privacy.person_suppressed("anon:kiosk:7")
    assert privacy.person_suppressed("anon:kiosk:7:e-123")
    assert not privacy.person_suppressed("anon:kiosk:8:e-123")
    assert not privacy.person_suppressed("kiosk:7")  # a customer of that name is someone else


def test_suppress_returns_only_what_is_new() -> None:
    privacy = PrivacyFilter(KEY, suppressed=ANNA_HASHES[:1])
    assert privacy.suppress(ANNA_HASHES) == frozenset(ANNA_HASHES[1:])
    assert privacy.suppress(ANNA_HASHES) == frozenset()


def test_journey_inputs_naming_her_are_dropped() -> None:
    privacy = PrivacyFilter(KEY, suppressed=ANNA_HASHES)
    pipeline, _ = _run(finish=False)
    for person_id, state in pipeline.persons.items():
        for item in person_to_dict(state)["pending"]:
            assert item_suppressed(privacy, item) == (person_id != BEN and _names_anna(item))
    link = {"kind": "link", "anon_person_id": "anon:w-anna", "customer_id": ANNA}
    assert item_suppressed(privacy, link)
    assert not item_suppressed(privacy, {"kind": "link", "anon_person_id": "anon:w-ben"})


def test_worker_state_without_her_and_restored_without_her() -> None:
    pipeline, _ = _run(finish=False)
    persons = {pid: person_to_dict(s) for pid, s in pipeline.persons.items()}
    devices = {did: device_to_dict(d) for did, d in pipeline.devices.items()}
    assert any(_names_anna(p) for p in persons.values())
    privacy = PrivacyFilter(KEY, suppressed=ANNA_HASHES)
    kept_persons, kept_devices, removed = forget_suppressed(privacy, persons, devices)
    assert removed >= 3
    assert BEN in kept_persons and "w-ben" in kept_devices
    assert not _names_anna(kept_persons) and not _names_anna(kept_devices)
    # nothing suppressed: nothing removed
    assert forget_suppressed(PrivacyFilter(KEY), persons, devices)[2] == 0

    # a journey partition written whole after the erasure restores exactly what was kept
    logic = JourneyPipeline(JourneyConfig(), shard="journey-0")
    logic.touched = set(pipeline.persons)
    logic.persons = dict(pipeline.persons)
    logic.aggregates = pipeline.aggregates
    part = JourneyPartition(0, WatermarkTracker(), logic, applied=41)
    gone = set(persons) - set(kept_persons)
    for pid in gone:
        del logic.persons[pid]
    entries, record = full_commit(part, gone)
    assert not gone & entries.keys()  # a deletion record's key would name her
    changelog: dict[object, object] = {**entries, checkpoint_key(0): record}
    assert not _names_anna(b"".join(v for v in changelog.values() if isinstance(v, bytes)))
    restored = restore_partition(0, changelog, lambda key: True, JourneyConfig(), [], 0.0)
    assert restored.applied == 41
    as_json = orjson.dumps({pid: person_to_dict(s) for pid, s in restored.logic.persons.items()})
    assert orjson.loads(as_json) == orjson.loads(orjson.dumps(kept_persons))


@given(st.text(min_size=1, max_size=30), st.booleans())
def test_a_person_is_suppressed_exactly_when_its_subject_is(name: str, as_device: bool) -> None:
    kind = "device" if as_device else "customer"
    privacy = PrivacyFilter(KEY, suppressed=[KEY.subject(kind, name)])
    person = f"anon:{name}" if as_device else name
    assert privacy.person_suppressed(person) == (as_device or not name.startswith("anon:"))
    other = PrivacyFilter(KEY, suppressed=[KEY.subject(kind, name + "x")])
    assert not other.person_suppressed(person)
