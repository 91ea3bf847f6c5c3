"""Replay guards the streaming worker relies on: source positions and handover idempotence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas import Channel, Event
from streams.core.codec import (
    message_from_dict,
    message_to_dict,
    person_from_dict,
    person_to_dict,
)
from streams.core.config import HOUR_MS, JourneyConfig
from streams.core.identity import Duplicate, LinkNotice, Routed, identity_step
from streams.core.journey import (
    Handover,
    PersonState,
    advance,
    journey_step,
    next_deadline,
)
from streams.core.person import from_waiting
from streams.core.records import EventRow, SessionMerge, SessionSummary

pytestmark = pytest.mark.unit

BASE = datetime(2026, 11, 2, 10, tzinfo=UTC)
CONFIG = JourneyConfig()
SRC = "clickstream/3"


def ev(event_id: str, seconds: float, device: str = "w1", customer: str | None = None) -> Event:
    return Event(
        event_id=event_id,
        event_type="page_view",
        occurred_at=BASE + timedelta(seconds=seconds),
        channel=Channel.WEB,
        device_id=device,
        customer_id=customer,
        properties={"page": f"/{event_id}"},
    )


def routed(event: Event, position: int, person: str = "anon:w1", source: str = SRC) -> Routed:
    # A watermark well past the event: applied at once, no waiting in `pending`.
    return Routed(person, event, event.ts_ms + 10 * 60_000, 0, source, position)


def rows(outputs: Sequence[object]) -> list[EventRow]:
    return [o for o in outputs if isinstance(o, EventRow)]


def test_identity_step_puts_source_and_position_on_routed() -> None:
    _, outs = identity_step(
        None, ev("e1", 0), CONFIG, watermark_ms=0, received_at_ms=0, source=SRC, position=7
    )
    (r,) = [o for o in outs if isinstance(o, Routed)]
    assert (r.source, r.position) == (SRC, 7)
    _, outs = identity_step(None, ev("e2", 0), CONFIG, watermark_ms=0, received_at_ms=0)
    (r,) = [o for o in outs if isinstance(o, Routed)]
    assert (r.source, r.position) == ("", -1)


@pytest.mark.parametrize("replayed_position", [5 * 65536 + 1, 5 * 65536])
def test_same_or_lower_position_is_a_duplicate(replayed_position: int) -> None:
    state, out = journey_step(None, routed(ev("e1", 0), 5 * 65536), CONFIG)
    state, out = journey_step(state, routed(ev("e2", 3), 5 * 65536 + 1), CONFIG)
    assert state is not None and state.session is not None
    before = (state.session.events, state.session.views, state.session.last_ms)
    # A replay of a different event id at an old position: only the position can tell.
    state, out = journey_step(state, routed(ev("e3", 6), replayed_position), CONFIG)
    assert out == [Duplicate("e3", "anon:w1")]
    assert not rows(out)
    assert state is not None and state.session is not None
    assert (state.session.events, state.session.views, state.session.last_ms) == before


def test_higher_position_is_processed_and_recorded() -> None:
    state, _ = journey_step(None, routed(ev("e1", 0), 10), CONFIG)
    state, out = journey_step(state, routed(ev("e2", 3), 11), CONFIG)
    assert [r.event_id for r in rows(out)] == ["e2"]
    assert state is not None and state.sources == ((SRC, 11, ev("e2", 3).ts_ms),)
    # Another source has its own positions.
    state, out = journey_step(state, routed(ev("e3", 4), 1, source="app-events/0"), CONFIG)
    assert [r.event_id for r in rows(out)] == ["e3"]
    assert state is not None and state.session is not None and state.session.events == 3


def test_no_source_means_no_guard() -> None:
    state, _ = journey_step(None, routed(ev("e1", 0), -1, source=""), CONFIG)
    state, out = journey_step(state, routed(ev("e2", 3), -1, source=""), CONFIG)
    assert [r.event_id for r in rows(out)] == ["e2"]
    assert state is not None and state.sources == ()


def test_sources_keep_the_state_alive_until_the_dedup_horizon() -> None:
    state: PersonState | None
    state, _ = journey_step(None, routed(ev("e1", 0), 10), CONFIG)
    assert state is not None
    ts = ev("e1", 0).ts_ms
    state, _ = advance(state, ts + 2 * HOUR_MS, CONFIG)  # session closed, guard kept
    assert state is not None and state.session is None
    assert [source for source, _, _ in state.sources] == [SRC]
    deadline = next_deadline(state, CONFIG)
    assert deadline is not None and deadline <= ts + CONFIG.dedup_horizon_ms + 1
    state, _ = advance(state, ts + CONFIG.dedup_horizon_ms + 1, CONFIG)
    assert state is None or not state.sources


def _handover(events: int = 2) -> Handover:
    """An anonymous person's open session with `events` events, handed to customer c1."""
    state: PersonState | None = None
    for i in range(events):
        event = ev(f"h{i}", i * 3)
        state, _ = journey_step(state, Routed("anon:w1", event, event.ts_ms, 0, SRC, i), CONFIG)
    # One more event still waiting for the watermark, after the login: it travels with the
    # handover (one at or before the login would go over inside the session).
    waiting = ev("h-wait", events * 3)
    state, _ = journey_step(
        state, Routed("anon:w1", waiting, waiting.ts_ms - 1, 0, SRC, events), CONFIG
    )
    notice = LinkNotice("anon:w1", "c1", "w1", ev("x", events * 3).ts_ms - 1)
    _, out = journey_step(state, notice, CONFIG)
    (handover,) = [o for o in out if isinstance(o, Handover)]
    return handover


def test_handover_carries_source_and_position_of_waiting_events() -> None:
    handover = _handover()
    carried = [from_waiting(w, "c1") for w in handover.pending]
    assert [(r.source, r.position, r.event.event_id) for r in carried] == [(SRC, 2, "h-wait")]
    state, out = journey_step(None, handover, CONFIG)
    assert state is not None and len(state.pending) == 1
    state, out = advance(state, handover.at_ms + 2 * HOUR_MS, CONFIG)
    assert [(r.event_id, r.person_id) for r in rows(out)] == [("h-wait", "c1")]


def test_events_waiting_up_to_the_login_go_over_inside_the_session() -> None:
    """The login's time has come for what happened before it: those events are the visit's,
    handed over inside its session, not left waiting to be applied after the hand-over."""
    state: PersonState | None = None
    watermark = ev("x", 0).ts_ms - 1
    for i, at in enumerate((0, 3, 6)):
        event = ev(f"h{i}", at)
        state, _ = journey_step(state, Routed("anon:w1", event, watermark, 0, SRC, i), CONFIG)
    assert state is not None and len(state.pending) == 3  # all waiting for the watermark
    notice = LinkNotice("anon:w1", "c1", "w1", ev("x", 3).ts_ms)
    _, out = journey_step(state, notice, CONFIG)
    (handover,) = [o for o in out if isinstance(o, Handover)]
    assert handover.session is not None and handover.session.events == 2  # h0 and h1
    assert [w[1] for w in handover.pending] == ["h2"]


def test_a_handover_delivered_twice_merges_once() -> None:
    handover = _handover()
    own = ev("c-own", 1, device="a1", customer="c1")
    state, _ = journey_step(None, Routed("c1", own, own.ts_ms, 0), CONFIG)
    state, first = journey_step(state, handover, CONFIG)
    state, second = journey_step(state, handover, CONFIG)
    assert [o.session_id for o in first if isinstance(o, SessionMerge)] != []
    assert second == []
    assert state is not None and state.session is not None
    assert state.session.events == 3  # c1's own event + the two handed over, once
    assert len(state.pending) == 1  # the waiting event, once
    assert state.handovers == (("anon:w1", handover.at_ms),)
    state, out = advance(state, handover.at_ms + 2 * HOUR_MS, CONFIG)
    (summary,) = [o for o in out if isinstance(o, SessionSummary)]
    assert summary.events == 4
    assert [r.event_id for r in rows(out)] == ["h-wait"]


def test_handover_memory_is_pruned_at_the_dedup_horizon() -> None:
    handover = _handover()
    state, _ = journey_step(None, handover, CONFIG)
    assert state is not None
    state, _ = advance(state, handover.at_ms + 2 * HOUR_MS, CONFIG)
    assert state is not None and state.handovers
    far = handover.at_ms + CONFIG.dedup_horizon_ms + 1
    state, _ = advance(state, far, CONFIG)
    assert state is None or not state.handovers


def _wire(data: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = orjson.loads(orjson.dumps(data))
    return loaded


def test_codec_round_trips_the_guards() -> None:
    message = routed(ev("e1", 0), 42)
    assert message_from_dict(_wire(message_to_dict(message))) == message
    handover = _handover()
    assert message_from_dict(_wire(message_to_dict(handover))) == handover
    state, _ = journey_step(None, handover, CONFIG)
    state, _ = journey_step(state, routed(ev("e9", 20), 99, person="c1"), CONFIG)
    assert state is not None and state.sources and state.handovers
    assert person_from_dict(_wire(person_to_dict(state))) == state


def test_codec_reads_dicts_written_before_the_guards() -> None:
    message = routed(ev("e1", 0), 42)
    old = message_to_dict(message)
    del old["source"], old["position"]
    decoded = message_from_dict(_wire(old))
    assert isinstance(decoded, Routed) and (decoded.source, decoded.position) == ("", -1)
    state, _ = journey_step(None, _handover(), CONFIG)
    assert state is not None
    old_person = person_to_dict(state)
    del old_person["sources"], old_person["handovers"]
    for pending in old_person["pending"]:
        del pending["source"], pending["position"]
    restored = person_from_dict(_wire(old_person))
    assert restored.sources == () and restored.handovers == ()
    assert [from_waiting(w, "c1").position for w in restored.pending] == [-1]
