"""Per-day exports loaded one after another read as one interleaved file.

A retailer's data comes as files: each day the web shop, the app and the tills (the POS system
exports its receipts once a night) each deliver that day's events, loaded one after another by
separate `parcours ingest` runs. So the app's events of a day arrive after the web's whole day
(behind the watermark), logins on the app arrive after the customer's web visits were closed,
and receipts arrive last. Revisions (streams.core.revise), hand-overs put in their place in
event time, and state carried between runs make the tables those of one file with every event
in time order.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from streams.simulate import SimulationConfig, generate
from tests.runs.memory import tables
from tests.runs.test_runs_carry_on import Message, run_in_pieces

pytestmark = pytest.mark.integration

#: Load order of one day's files.
TOPIC_ORDER = {"clickstream": 0, "app-events": 1, "store-events": 2}


def _day(payload: Any) -> str:
    first = payload[0] if isinstance(payload, list) else payload
    return str(first["occurred_at"][:10])


def simulated_days(customers: int, days: int) -> tuple[list[Message], list[Message], list[int]]:
    """(the simulator's interleaved stream, the same messages as per-day per-topic files in
    load order, where each file starts)."""
    interleaved: list[tuple[str, bytes, str]] = []
    config = SimulationConfig(customers=customers, days=days, seed=7, malformed_rate=0.0)
    for msg in generate(config):
        if isinstance(msg.payload, bytes):
            continue
        interleaved.append((msg.topic, orjson.dumps(msg.payload), _day(msg.payload)))
    files = sorted(interleaved, key=lambda m: (m[2], TOPIC_ORDER[m[0]]))
    starts = [
        i for i, (a, b) in enumerate(itertools.pairwise(files), 1) if (a[2], a[0]) != (b[2], b[0])
    ]
    return [(t, v) for t, v, _ in interleaved], [(t, v) for t, v, _ in files], starts


def _resolved_sessions(view: dict[str, Any]) -> dict[str, str]:
    """Each event's session as storage resolves it (a merged session's rows read as the one
    it joined, `session_merges`)."""
    into = dict(view["merges"])
    out = {}
    for event_id, (_, session_id, _, _) in view["events"].items():
        while session_id in into:
            session_id = into[session_id]
        out[event_id] = session_id
    return out


def test_per_day_web_app_and_store_files_read_as_one_interleaved_file() -> None:
    # a week: repeat support contacts across days, logins on the app after the web's day
    interleaved, files, starts = simulated_days(customers=300, days=7)
    assert len(starts) >= 20  # seven days of three files each
    whole = tables(run_in_pieces(interleaved, [], close=True).records)
    loaded = tables(run_in_pieces(files, starts, close=True).records)
    assert len(whole["sessions"]) > 2500 and len(whole["signals"]) > 1000  # a real population
    assert loaded["sessions"] == whole["sessions"]
    assert loaded["signals"] == whole["signals"]
    assert loaded["minutes"] == whole["minutes"]
    assert loaded["links"] == whole["links"]
    assert _resolved_sessions(loaded) == _resolved_sessions(whole)
    # Flagged late only beyond what revisions reach: nothing here is.
    assert not any(late for *_, late in loaded["events"].values())
