"""A till shared by loyalty and guest customers, through the embedded runner into chDB.

The catalogue's till stories (tests/journeys/shared_devices.py) check `events_resolved`; here
every resolved view is read: with no identity link stored for the till, no row of it is ever
re-attributed, before or after a loyalty customer's receipt.
"""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from tests.embedded.chdb_runner import run_embedded
from tests.journeys.outcome import check
from tests.journeys.shared_devices import guest, receipt, till
from tests.journeys.story import Expect, S, Story

pytestmark = pytest.mark.integration

NAME = "guest_loyalty_guest_at_one_till"
M = 60.0

STORY = Story(
    NAME,
    [
        till(0, "payment_error", reason="card_declined"),  # a guest gives up
        receipt(2 * M, "c36"),  # a loyalty customer pays
        receipt(4 * M),  # another guest pays
    ],
    Expect(
        [
            S(guest(NAME, 0), 1, ("store",), bounced=True),
            S("c36", 1, ("store",), converted=True),
            S(guest(NAME, 2), 1, ("store",), converted=True),
        ],
        {"payment_failure": 1, "bounce": 1},
        resolved_persons={f"{NAME}-0": guest(NAME, 0), f"{NAME}-2": guest(NAME, 2)},
    ),
)


def test_no_view_re_attributes_a_tills_rows(ch: Client) -> None:
    check(STORY, run_embedded(STORY, ch))
    assert ch.query("SELECT count() FROM identity_links").result_rows == [(0,)]
    expected = sorted([guest(NAME, 0), "c36", guest(NAME, 2)])
    for view in ("events_resolved", "sessions_resolved"):
        rows = ch.query(f"SELECT person_id, resolved_person_id FROM {view}").result_rows
        assert all(person == resolved for person, resolved in rows), view
        assert sorted(resolved for _, resolved in rows) == expected, view
    signals = ch.query("SELECT type, resolved_person_id FROM friction_resolved").result_rows
    assert sorted(signals) == [("bounce", guest(NAME, 0)), ("payment_failure", guest(NAME, 0))]
    revenue = ch.query(
        "SELECT resolved_person_id, sum(revenue) FROM sessions_resolved GROUP BY 1 HAVING sum(revenue) > 0 "
        "ORDER BY 1"
    ).result_rows
    assert revenue == sorted([("c36", 30.0), (guest(NAME, 2), 30.0)])
