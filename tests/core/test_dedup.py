"""Dedup memory as bytes: exact membership, time order, horizons, and the older wire forms."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core import dedup
from streams.core.codec import device_from_dict, person_from_dict
from streams.core.identifiers import event_key, stable_hash64
from streams.core.session import CHANNEL_BITS

pytestmark = pytest.mark.unit

T0 = 1_794_085_004_072


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=12), st.integers(-3_600_000, 3_600_000)),
        max_size=60,
        unique_by=lambda e: e[0],
    ),
    st.integers(-3_600_000, 3_600_000),
)
def test_memory_is_a_time_ordered_set_of_event_ids(
    entries: list[tuple[str, int]], horizon: int
) -> None:
    memory = dedup.EMPTY
    for event_id, offset in entries:  # arrival order, not time order
        assert not dedup.contains(memory, event_key(event_id))
        memory = dedup.remember(memory, event_key(event_id), T0 + offset)
    assert dedup.count(memory) == len(entries)
    times = [int.from_bytes(memory[i : i + 8], "big") - 2**63 for i in range(0, len(memory), 16)]
    assert times == sorted(T0 + offset for _, offset in entries)
    assert dedup.oldest(memory) == (min(times) if times else None)
    assert all(dedup.contains(memory, event_key(e)) for e, _ in entries)
    assert not dedup.contains(memory, event_key("never sent"))
    kept = dedup.forget_before(memory, T0 + horizon)
    for event_id, offset in entries:
        assert dedup.contains(kept, event_key(event_id)) == (offset >= horizon)
    assert dedup.from_wire(orjson.loads(orjson.dumps(dedup.to_wire(kept)))) == kept


def test_a_key_found_across_record_boundaries_is_not_a_match() -> None:
    """`bytes.find` may match inside a time field or across two records: only a match at the
    start of a key field counts, so nothing is ever dropped that was not seen."""
    rng = random.Random(1)
    keys = [rng.randbytes(8) for _ in range(3)]
    memory = dedup.EMPTY
    for i, key in enumerate(keys):
        memory = dedup.remember(memory, key, T0 + i)
    for start in range(1, len(memory) - 8):
        window = memory[start : start + 8]
        assert dedup.contains(memory, window) == (window in keys), start
    # A stored key that also occurs earlier at a wrong offset is still found.
    tricky = memory[4:12]
    memory = dedup.remember(memory, tricky, T0 + 10)
    assert dedup.contains(memory, tricky)


def test_the_older_wire_form_reads_into_the_same_memory() -> None:
    """Older versions wrote `{str(64-bit key): ts}`: the same ids must still be recognised."""
    old = {str(stable_hash64("e1")): T0 + 5, str(stable_hash64("e2")): T0}
    memory = dedup.from_wire(orjson.loads(orjson.dumps(old)))
    assert dedup.contains(memory, event_key("e1")) and dedup.contains(memory, event_key("e2"))
    assert dedup.oldest(memory) == T0 and dedup.count(memory) == 2
    with pytest.raises(ValueError):
        dedup.from_wire(dedup.to_wire(memory)[:-4])


def test_codec_reads_states_written_by_older_versions() -> None:
    device = device_from_dict({"links": [[T0, "c1"]], "seen": {str(stable_hash64("e1")): T0}})
    assert device.links == ((T0, "c1"),) and dedup.contains(device.seen, event_key("e1"))
    session = {
        "session_id": "s-1",
        "person_id": "c1",
        "started_ms": T0,
        "last_ms": T0 + 1000,
        "events": 2,
        "channels": ["web", "store"],
        "devices": ["w1"],
        "rc_times": [T0 + 1000],
    }
    person = person_from_dict(
        {
            "person_id": "c1",
            "session": session,
            "recent": [["s-0", T0 - 10, T0 - 5]],
            "checkout": None,
            "contacts": [],
            "seen": {str(stable_hash64("e9")): T0},
        }
    )
    assert person.session is not None
    assert person.session.channels == CHANNEL_BITS["web"] | CHANNEL_BITS["store"]
    assert person.session.devices == ("w1",) and person.session.rc_times == (T0 + 1000,)
    assert person.recent == (("s-0", T0 - 10, T0 - 5),)
    assert dedup.contains(person.seen, event_key("e9"))
    assert person.sources == () and person.handovers == () and person.pending == ()
