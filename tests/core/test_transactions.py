"""Transaction memory: its records, its horizon, identity merges, and its plain-data form.

The journeys themselves (a receipt re-sent, at the horizon, across a login) are stories in
tests/journeys/transaction_stories.py; these are the pieces underneath.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest

from schemas import Channel, Event
from schemas.event import trusted_event
from streams.core import dedup, transactions
from streams.core.codec import (
    message_from_dict,
    message_to_dict,
    person_from_dict,
    person_to_dict,
    record_from_dict,
    record_to_dict,
)
from streams.core.config import DAY_MS, JourneyConfig
from streams.core.identity import LinkNotice, Routed
from streams.core.journey import Handover, PersonState, advance, journey_step, next_deadline
from streams.core.merges import on_link
from streams.core.records import EventRow

pytestmark = pytest.mark.unit

CONFIG = JourneyConfig()
T0 = 1_800_000_000_000


def purchase(event_id: str, tx: str, ts: int = T0) -> Event:
    props = {"transaction_id": tx, "value": 20.0, "currency": "EUR"}
    return trusted_event(event_id, "purchase", ts, Channel.STORE, None, "c1", props, 1)


def test_time_of_reads_the_newest_time_of_a_key_and_only_whole_keys() -> None:
    key, other = transactions.transaction_key("R-1"), transactions.transaction_key("R-2")
    memory = dedup.remember(dedup.remember(dedup.EMPTY, key, 10), other, 20)
    memory = dedup.remember(memory, key, 30)
    assert dedup.time_of(memory, key) == 30
    assert dedup.time_of(memory, other) == 20
    assert dedup.time_of(memory, transactions.transaction_key("R-3")) is None
    # a key found across two records (end of a time, start of a key) is no match
    assert dedup.time_of(memory, memory[4:12]) is None


def test_union_keeps_every_record_of_both_in_time_order() -> None:
    a = dedup.remember(dedup.EMPTY, transactions.transaction_key("A"), 50)
    b = dedup.remember(dedup.EMPTY, transactions.transaction_key("B"), 10)
    b = dedup.remember(b, transactions.transaction_key("A"), 50)
    both = dedup.union(a, b)
    assert dedup.count(both) == 2
    assert dedup.oldest(both) == 10
    assert dedup.union(both, dedup.EMPTY) is both
    assert dedup.union(dedup.EMPTY, both) is both


def test_transaction_keys_are_apart_from_event_keys() -> None:
    from streams.core.identifiers import event_key

    assert transactions.transaction_key("x") != event_key("x")


def test_a_copy_is_caught_up_to_the_horizon_and_not_after() -> None:
    memory = dedup.EMPTY
    copy, memory = transactions.check(memory, purchase("e1", "R-1"), T0, CONFIG)
    assert not copy and dedup.count(memory) == 1
    # Judged by the copy's own time (a late copy is judged as in time order).
    copy, same = transactions.check(
        memory, purchase("e2", "R-1", T0 + DAY_MS), T0 + 9 * DAY_MS, CONFIG
    )
    assert copy and same is memory  # a copy does not extend the memory
    copy, memory = transactions.check(memory, purchase("e3", "R-1", T0 + DAY_MS + 1), T0, CONFIG)
    # counted again: remembered from its own time
    assert (
        not copy and dedup.time_of(memory, transactions.transaction_key("R-1")) == T0 + DAY_MS + 1
    )


def test_non_purchases_and_purchases_without_a_transaction_are_never_copies() -> None:
    view = trusted_event("v", "page_view", T0, Channel.WEB, "w1", None, {"page": "/"}, 1)
    assert transactions.check(dedup.EMPTY, view, T0, CONFIG) == (False, dedup.EMPTY)
    no_tx = trusted_event("p", "purchase", T0, Channel.WEB, "w1", None, {"value": 1.0}, 1)
    assert transactions.check(dedup.EMPTY, no_tx, T0, CONFIG) == (False, dedup.EMPTY)


def test_the_horizon_forgets_a_transaction_and_keeps_the_person_until_then() -> None:
    # Kept for the dedup horizon and then the revision horizon: a late copy can come until then.
    kept_for = DAY_MS + CONFIG.revision_horizon_ms
    state = PersonState("c1", transactions=dedup.remember(dedup.EMPTY, b"k" * 8, T0))
    assert next_deadline(state, CONFIG) == T0 + kept_for + 1
    kept, _ = advance(state, T0 + kept_for, CONFIG)
    assert kept is not None and dedup.count(kept.transactions) == 1
    gone, _ = advance(kept, T0 + kept_for + 1, CONFIG)
    assert gone is None


def test_the_customer_takes_over_the_anonymous_memory_on_login() -> None:
    memory = dedup.remember(dedup.EMPTY, b"a" * 8, T0)
    anon = PersonState("anon:w1", transactions=memory)
    customer = PersonState("c1", transactions=dedup.remember(dedup.EMPTY, b"c" * 8, T0 + 5))
    anon_after, (handover,) = on_link(anon, LinkNotice("anon:w1", "c1", "w1", T0 + 10))
    assert isinstance(handover, Handover) and handover.transactions == memory
    assert anon_after is not None and anon_after.transactions == dedup.EMPTY
    after, _ = journey_step(customer, handover, CONFIG)
    assert after is not None
    assert dedup.contains(after.transactions, b"a" * 8)
    assert dedup.contains(after.transactions, b"c" * 8)


def test_a_person_with_a_transaction_round_trips_and_old_snapshots_still_read() -> None:
    state, out = journey_step(None, _routed(purchase("e1", "R-1")), CONFIG)
    assert state is not None and not out  # waiting for the watermark
    state, _ = advance(state, T0 + 1, CONFIG)
    assert state is not None and dedup.count(state.transactions) == 1
    data = person_to_dict(state)
    assert person_from_dict(data) == state
    data.pop("transactions")  # written by a version without transaction memory
    assert person_from_dict(data).transactions == dedup.EMPTY


def test_a_handover_with_transactions_round_trips_and_old_ones_still_read() -> None:
    memory = dedup.remember(dedup.EMPTY, transactions.transaction_key("O-6"), T0)
    handover = Handover("c1", "anon:w1", None, None, T0 + 10, (), memory)
    data = message_to_dict(handover)
    assert message_from_dict(data) == handover
    data.pop("transactions")
    old = message_from_dict(data)
    assert isinstance(old, Handover) and old.transactions == dedup.EMPTY


def test_event_rows_round_trip_with_the_flag_and_old_ones_are_not_copies() -> None:
    row = EventRow(
        "e2", "purchase", T0, T0, "store", None, None, "c1", "c1", "s-1", None, None, 20.0,
        "EUR", {"transaction_id": "R-1"}, False, duplicate_transaction=True,
    )  # fmt: skip
    assert record_from_dict(record_to_dict(row)) == row
    old = asdict(row)
    old.pop("duplicate_transaction")
    old["kind"] = "EventRow"
    restored = record_from_dict(old)
    assert isinstance(restored, EventRow) and not restored.duplicate_transaction


def _routed(ev: Event) -> Routed:
    return Routed("c1", ev, T0 - 1, T0, "test", 0)
