"""Erasure on chDB: Anna (her email is her customer id, her phone in a property) is ingested,
forgotten, then the same input is replayed cut into other messages and insert batches: no
table (every column read as text) and no saved state holds anything of her afterwards, and
Ben's rows are untouched."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from streams.core.config import JourneyConfig
from streams.embedded.runner import EmbeddedRunner
from streams.embedded.state import JourneyStateStore
from streams.metrics import REGISTRY
from streams.privacy.erase import TABLES, forget
from streams.privacy.keys import PrivacyKey
from streams.privacy.settings import PrivacySettings, load_key
from streams.privacy.setup import privacy_filter
from streams.sinks.clickhouse import ClickHouseSink
from tests.journeys.privacy_stories import ANNA, ANNA_AND_BEN, ANNA_PHONE, ANNA_REJECTED_LINES, BEN
from tests.privacy.search import found

pytestmark = pytest.mark.integration

SECRET = PrivacySettings(key="a test secret")
#: What must not be found anywhere after the erasure: her email, her phone number (as typed
#: and as digits) and her devices (linked to her alone).
NEEDLES = [ANNA, ANNA_PHONE, "612345678", "w-anna", "a-anna"]


def _runner(client: Client, data_dir: Path, *, batch_rows: int, resume: bool) -> EmbeddedRunner:
    sink = ClickHouseSink(client, batch_rows=batch_rows, flush_interval_s=None)
    return EmbeddedRunner(
        sink,
        store=JourneyStateStore(client),
        resume=resume,
        clock=lambda: 1_800_000_000.0,
        privacy=privacy_filter(client, data_dir, JourneyConfig(), SECRET),
    )


def _ingest_once(client: Client, data_dir: Path, *, close: bool = False) -> None:
    runner = _runner(client, data_dir, batch_rows=50_000, resume=True)
    lines = ANNA_AND_BEN.ingest_lines().splitlines() + ANNA_REJECTED_LINES
    runner.feed_lines(lines, source="story")
    runner.finish(close=close)  # not closed: her journey stays in the saved state


def _replay_cut_otherwise(client: Client, data_dir: Path, *, resume: bool) -> int:
    """The same events, two to a message (JSON arrays), in another file, written in batches
    of 2 rows (other dedup tokens): only the suppression list can keep her out."""
    messages = list(ANNA_AND_BEN.messages())
    lines = []
    for i in range(0, len(messages), 2):
        pair = messages[i : i + 2]
        if len({topic for topic, _ in pair}) == 2:
            lines += [orjson.dumps({"topic": t, "value": orjson.loads(v)}) for t, v in pair]
        else:
            values = [orjson.loads(v) for _, v in pair]
            lines.append(orjson.dumps({"topic": pair[0][0], "value": values}))
    runner = _runner(client, data_dir, batch_rows=2, resume=resume)
    runner.feed_lines(lines + ANNA_REJECTED_LINES, source="replay")
    return runner.finish(close=True).suppressed


_found = found


def test_forget_leaves_nothing_and_a_replay_cut_otherwise_brings_nothing_back(
    ch: Client, tmp_path: Path
) -> None:
    _ingest_once(ch, tmp_path)
    assert _found(ch, ANNA).keys() >= {"events", "sessions", "identity_links", "journey_state"}
    assert _found(ch, "w-anna")
    # Scrubbing at decode: her phone number and the email she typed as a search term never
    # reached a property or a rejected input's bytes (only the id fields hold her email).
    assert _found(ch, ANNA_PHONE) == {}
    props = ch.query("SELECT properties FROM events WHERE event_type = 'search'").result_rows
    assert ANNA not in props[0][0] and "[redacted:email]" in props[0][0]
    assert ch.query("SELECT count() FROM rejections").result_rows[0][0] == 2
    ben_before = _found(ch, BEN)

    key = load_key(SECRET, tmp_path)
    receipt = forget(ch, key, "customer", ANNA)

    assert receipt.rows["events"] == 6 and receipt.rows["identity_links"] == 2
    assert receipt.rows["sessions"] >= 1 and receipt.state_entries >= 3
    assert set(receipt.rows) == set(TABLES)
    for needle in NEEDLES:
        assert _found(ch, needle) == {}, needle
    assert _found(ch, BEN) == ben_before  # his rows and his saved state are untouched
    # The audit row holds only a keyed hash, the kind, the time and a count.
    audit = ch.query("SELECT kind, subject_hash, rows_removed FROM privacy_erasures").result_rows
    assert audit == [("customer", key.subject("customer", ANNA), receipt.total)]
    assert key.subject("customer", ANNA) != PrivacyKey("another key").subject("customer", ANNA)

    # Replays, carrying on from the cleaned state, then from nothing: she stays out. Dropped:
    # her 6 events and the rejected input naming her as customer_id; the other rejected line
    # is stored again, scrubbed (nothing of her is left in it).
    counted = REGISTRY.get_sample_value("parcours_privacy_suppressed_total") or 0.0
    assert _replay_cut_otherwise(ch, tmp_path, resume=True) == 6 + 1
    assert _replay_cut_otherwise(ch, tmp_path, resume=False) == 6 + 1
    assert REGISTRY.get_sample_value("parcours_privacy_suppressed_total") == counted + 14
    for needle in NEEDLES:
        assert _found(ch, needle) == {}, needle
    sessions = ch.query("SELECT person_id FROM sessions FINAL").result_rows
    assert sessions == [(BEN,)]
    # The per-minute aggregates are anonymous and keep her contribution (said in the README).
    views = ch.query(
        "SELECT sum(count) FROM events_per_minute WHERE metric = 'events'"
    ).result_rows[0][0]
    assert views >= len(ANNA_AND_BEN.steps)


def test_rows_are_physically_removed_by_a_finished_mutation(ch: Client, tmp_path: Path) -> None:
    """`ALTER TABLE … DELETE … SETTINGS mutations_sync = 2`: when forget returns, every
    mutation is done and the rows are gone from the parts themselves (not merely masked, as a
    lightweight DELETE leaves them until a merge)."""
    _ingest_once(ch, tmp_path)
    forget(ch, load_key(SECRET, tmp_path), "customer", ANNA)
    mutations = ch.query(
        "SELECT table, is_done, command FROM system.mutations WHERE database = currentDatabase()"
    ).result_rows
    deletes = {t for t, _, command in mutations if command.startswith("(DELETE WHERE")}
    assert deletes >= {"events", "sessions", "identity_links", "journey_state"}
    assert all(done for _, done, _ in mutations)
    # no lightweight delete: that would be a mutation updating the `_row_exists` mask
    assert not any("_row_exists" in command for _, _, command in mutations)
    hidden = ch.query(
        "SELECT count() FROM events WHERE customer_id = {c:String}",
        parameters={"c": ANNA},
        settings={"apply_deleted_mask": 0},
    ).result_rows[0][0]
    assert hidden == 0


def test_forget_a_device_and_forget_again(ch: Client, tmp_path: Path) -> None:
    _ingest_once(ch, tmp_path, close=True)
    key = load_key(SECRET, tmp_path)
    receipt = forget(ch, key, "device", "w-ben")
    assert receipt.rows["events"] == 3 and receipt.rows["identity_links"] == 1
    assert _found(ch, "w-ben") == {}
    assert _found(ch, ANNA)  # another person's rows stay
    again = forget(ch, key, "device", "w-ben")
    assert again.total == 0
    assert ch.query("SELECT count() FROM privacy_erasures").result_rows[0][0] == 2
