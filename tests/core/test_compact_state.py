"""The compact in-memory forms (session flags and devices, rare counters, packed closed sessions,
flat waiting tuples, flat device links) hold exactly what the plain forms held, and the codec
reads the dicts that earlier versions wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Channel, Event
from streams.core import closed
from streams.core.codec import device_from_dict, device_to_dict, person_from_dict, person_to_dict
from streams.core.config import JourneyConfig
from streams.core.identifiers import session_id_for
from streams.core.identity import DeviceIdentity, Routed, person_of_device
from streams.core.person import PersonState, event_of, to_waiting
from streams.core.session import (
    CO_FIRED,
    CONVERTED,
    PAY_PENDING,
    RareCounters,
    SessionState,
    absorb,
    record_event,
    session_from_dict,
    session_to_dict,
)

pytestmark = pytest.mark.unit

T0 = 1_794_085_004_072

#: Every key the flat dataclass of earlier versions wrote (`dataclasses.asdict`).
OLD_KEYS = {
    "session_id",
    "started_ms",
    "last_ms",
    "events",
    "views",
    "channels",
    "devices",
    "landing_page",
    "landing_ms",
    "exit_page",
    "exit_ms",
    "converted",
    "revenue",
    "friction_count",
    "last_channel",
    "last_device",
    "last_device_type",
    "cart_items",
    "checkout_seen",
    "qb_prev_page",
    "qb_cur_page",
    "qb_cur_ms",
    "qb_device",
    "rc_element",
    "rc_device",
    "rc_times",
    "rc_fired",
    "zero_searches",
    "pay_errors",
    "pay_pending",
    "pay_fired",
    "co_step",
    "co_backs",
    "co_fired",
    "search_fired",
}


def wire(data: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = orjson.loads(orjson.dumps(data))
    return loaded


def test_session_dict_keeps_the_flat_form_of_earlier_versions() -> None:
    s = SessionState("s-1", T0, T0 + 5, events=3, flags=CONVERTED | PAY_PENDING | CO_FIRED)
    s.rare = RareCounters(rc_element="buy", rc_device="w1", rc_times=(T0,), pay_errors=1)
    s.device_ids = ("w1", "w2")
    data = session_to_dict(s)
    # every key of earlier versions, plus the flag added with provisional session rows
    assert set(data) == OLD_KEYS | {"published"}
    assert data["published"] is False
    assert data["converted"] and data["pay_pending"] and data["co_fired"]
    assert not (data["checkout_seen"] or data["rc_fired"] or data["pay_fired"])
    assert data["devices"] == ("w1", "w2") and data["rc_times"] == (T0,)
    assert data["pay_errors"] == 1 and data["zero_searches"] == 0
    assert session_from_dict(wire(data)) == s


def test_session_reads_a_dict_of_the_flat_dataclass() -> None:
    old = {
        "session_id": "s-1",
        "started_ms": T0,
        "last_ms": T0 + 9,
        "events": 4,
        "channels": ["web"],
        "devices": ["w1"],
        "converted": True,
        "checkout_seen": True,
        "search_fired": True,
        "zero_searches": 3,
        "co_step": 2,
    }
    s = session_from_dict(old)
    assert s.device_ids == "w1" and s.devices == ("w1",)
    assert s.converted and s.co_step == 2
    assert s.rare == RareCounters(zero_searches=3)
    data = session_to_dict(s)
    assert {k: data[k] for k in old} == {**old, "devices": ("w1",)}
    assert session_from_dict({**old, "devices": [], "zero_searches": 0}).rare is None


def test_devices_one_id_then_a_tuple_in_order_of_appearance() -> None:
    s = SessionState("s-1", T0, T0)
    args: dict[str, Any] = {
        "event_type": "click",
        "channel": "web",
        "device_type": None,
        "page": None,
    }
    assert record_event(s, ts_ms=T0, device_id=None, value=None, **args) is None
    assert s.device_ids is None and not s.devices
    first = "".join(["w", "1"])
    record_event(s, ts_ms=T0, device_id=first, value=None, **args)
    assert s.device_ids == "w1"
    again = "".join(["w", "1"])
    assert record_event(s, ts_ms=T0, device_id=again, value=None, **args) is first
    record_event(s, ts_ms=T0, device_id="w2", value=None, **args)
    assert list(s.devices) == ["w1", "w2"]
    other = SessionState("s-2", T0, T0, device_ids="w3")
    absorb(s, other)
    assert s.devices == ("w1", "w2", "w3")
    lone = SessionState("s-3", T0, T0)
    absorb(lone, SessionState("s-4", T0, T0, device_ids="w9"))
    assert lone.device_ids == "w9"


session_ids = st.one_of(
    st.integers(0, 2**64 - 1).map(lambda n: "s-" + format(n, "016x")),
    st.text(max_size=20),
    st.sampled_from(["s-0", "s-00000000000000AB", "s-+000000000000001", "s-0_00000000000001"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(session_ids, st.integers(-(2**62), 2**62), st.integers(0, 10**9))))
def test_closed_sessions_pack_exactly(raw: list[tuple[str, int, int]]) -> None:
    sessions = sorted(((i, start, start + length) for i, start, length in raw), key=lambda c: c[2])
    packed = closed.pack(sessions)
    assert closed.entries(packed) == tuple(sessions)
    if sessions:
        assert closed.oldest_end(packed) == sessions[0][2]
        horizon = sessions[len(sessions) // 2][2]
        kept = closed.forget_before(packed, horizon)
        assert closed.entries(kept) == tuple(c for c in sessions if c[2] >= horizon)


def test_core_session_ids_take_eight_bytes() -> None:
    core_id = session_id_for("e1", T0)
    assert len(closed.pack([(core_id, T0, T0)])) == len(closed.pack([("", T0, T0)])) + 8


def test_closed_sessions_stay_sorted_by_end_and_bounded() -> None:
    packed = closed.EMPTY
    for i, end in enumerate([30, 10, 20, 40, 5]):
        packed = closed.add(packed, (f"s-{i}", end - 1, end), keep=4)
    assert closed.entries(packed) == (
        ("s-1", 9, 10),
        ("s-2", 19, 20),
        ("s-0", 29, 30),
        ("s-3", 39, 40),
    )


def test_person_reads_and_writes_recent_sessions_as_before() -> None:
    old = {
        "person_id": "c1",
        "session": None,
        "recent": [["s-0", T0 - 10, T0 - 5], [session_id_for("e1", T0), T0 - 3, T0 - 1]],
        "checkout": None,
        "contacts": [],
        "seen": "",
    }
    person = person_from_dict(old)
    assert person.recent == (("s-0", T0 - 10, T0 - 5), (session_id_for("e1", T0), T0 - 3, T0 - 1))
    assert wire(person_to_dict(person))["recent"] == old["recent"]
    assert person_from_dict(wire(person_to_dict(person))) == person


def test_waiting_tuple_keeps_the_properties_in_order() -> None:
    props = {"page": "/a", "nested": {"x": [1, 2]}, "device_type": "mobile", "n": None}
    ev = Event(
        event_id="e1",
        event_type="page_view",
        occurred_at=datetime(2026, 11, 2, tzinfo=UTC) + timedelta(seconds=1),
        channel=Channel.APP,
        device_id="a1",
        customer_id=None,
        properties=props,
    )
    waiting = to_waiting(Routed("anon:a1", ev, 0, 0), PersonState("anon:a1"))
    assert not any(isinstance(part, dict) and part is props for part in waiting)
    rebuilt = event_of(waiting)
    assert rebuilt == ev and list(rebuilt.properties) == list(props)
    empty = ev.model_copy(update={"properties": {}})
    assert event_of(to_waiting(Routed("anon:a1", empty, 0, 0))).properties == {}


def test_device_links_are_flat_and_read_as_pairs() -> None:
    device = device_from_dict({"links": [[T0, "c1"], [T0 + 5, "c2"]], "seen": ""})
    assert device.linked == (T0, "c1", T0 + 5, "c2")
    assert device.links == ((T0, "c1"), (T0 + 5, "c2"))
    assert wire(device_to_dict(device))["links"] == [[T0, "c1"], [T0 + 5, "c2"]]
    config = JourneyConfig()
    assert person_of_device(device, T0 + 4, config) == "c1"
    assert person_of_device(device, T0 + 5, config) == "c2"
    assert person_of_device(device, T0 - 1, config) == "c1"  # retro window of the first link
    assert person_of_device(DeviceIdentity(), T0, config) is None
