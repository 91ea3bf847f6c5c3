"""Erasure in streaming mode, as a story: Anna (her email is her customer id, her phone in a
property) streams through a worker and the sink into chDB; `parcours forget --customer` is run
while the worker runs; then the same input is produced again, cut into other messages (a
replay). Afterwards nothing of her is left in any table (every column read as text), in any
topic Parcours reads back (records, journey, dead letters, both state changelogs) or in the
worker's local directory, and Ben's rows are still there. Only the raw input topics keep her
(the producers' topics: their retention decides, README "Privacy")."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from tests.journeys.privacy_stories import ANNA, ANNA_AND_BEN, ANNA_PHONE, ANNA_REJECTED_LINES, BEN
from tests.kafka.harness import (
    drained,
    free_port,
    query,
    run,
    sink_all,
    start_worker,
    stop,
    stream_env,
    total,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.integration, pytest.mark.slow]

#: Her email, her phone (as typed and as digits), her devices (linked to her alone).
NEEDLES = [ANNA, ANNA_PHONE, "612345678", "w-anna", "a-anna"]
#: On the replay: her 6 events and the rejected line naming her as customer_id (at least: a
#: rejected line sharing a message with her events names her too, and an input partition
#: read again after a pause counts again).
SUPPRESSED_ON_REPLAY = 6 + 1


def _story_ending_now(path: Path) -> int:
    """Write the story (and the rejected lines naming her) moved in time to end 5 minutes
    ago: her journey is still in the worker's state (an open session, her devices' links)
    when she is forgotten, not closed and pruned long ago. Returns the lines written."""
    docs = [json.loads(line) for line in ANNA_AND_BEN.ingest_lines().splitlines()]
    docs += [json.loads(line) for line in ANNA_REJECTED_LINES]
    stamps = [
        datetime.fromisoformat(d["value"]["occurred_at"].replace("Z", "+00:00"))
        for d in docs
        if isinstance(d["value"], dict)
    ]
    shift = datetime.now(UTC) - timedelta(minutes=5) - max(stamps)
    for doc in docs:
        value = doc["value"]
        if isinstance(value, dict):
            at = datetime.fromisoformat(value["occurred_at"].replace("Z", "+00:00")) + shift
            value["occurred_at"] = at.isoformat(timespec="milliseconds")
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return len(docs)


def _topic_texts(bootstrap: str, topics: list[str]) -> dict[str, list[bytes]]:
    """Every record of the topics, from their first kept offset: key, value and headers."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"privacy-check-{uuid.uuid4().hex[:8]}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    out: dict[str, list[bytes]] = {t: [] for t in topics}
    try:
        tps = []
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=30).topics[topic]
            assert meta.error is None, (topic, meta.error)
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                if high > low:
                    tps.append(TopicPartition(topic, p, low))
        consumer.assign(tps)
        pending = {(tp.topic, tp.partition) for tp in tps}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for m in consumer.consume(500, timeout=0.2):
                error = m.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard((m.topic(), m.partition()))
                    continue
                headers = b"".join(k.encode() + (v or b"") for k, v in m.headers() or [])
                out[str(m.topic())].append((m.key() or b"") + b"|" + (m.value() or b"") + headers)
        assert not pending, f"could not read to the end: {pending}"
    finally:
        consumer.close()
    return out


def _tables_naming(env: dict[str, str]) -> dict[str, dict[str, int]]:
    """Needle -> table -> rows holding it (tests/privacy/search.py, in a process of its own:
    chDB opens a database in one process at a time)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.privacy.search", env["PARCOURS_CLICKHOUSE_DSN"], *NEEDLES],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, dict[str, int]] = json.loads(result.stdout)
    return found


def test_forget_while_streaming_then_replay_leaves_nothing_anywhere(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = stream_env(
        kafka_bootstrap,
        tmp_path / "stream-chdb",
        PARCOURS_PRIVACY_KEY="a streaming test secret",
        PARCOURS_DATA_DIR=str(data_dir),
        PARCOURS_STREAM_IDLE_AFTER_S="3",
        PARCOURS_STREAM_PARTITIONS="2",
    )
    story = tmp_path / "anna.jsonl"
    lines = _story_ending_now(story)
    produced = run(env, "produce", str(story))
    assert produced.returncode == 0, produced.stderr

    port = free_port()
    log = tmp_path / f"worker-{port}.log"
    worker = start_worker(env, port)
    try:
        wait_for(
            port,
            lambda m: total(m, "parcours_events_consumed_total") >= lines and drained(m),
            timeout=120,
            log=log,
        )
        time.sleep(3)  # the last closes checkpointed
        sink_all(env)
        her = f"customer_id = '{ANNA}' OR device_id IN ('w-anna', 'a-anna')"
        [(stored,)] = query(env, f"SELECT count() FROM events WHERE {her}")
        assert stored == 6  # she is there before

        forgotten = run(env, "forget", "--customer", ANNA)
        assert forgotten.returncode == 0, forgotten.stderr
        assert "records deleted" in forgotten.stdout and ANNA not in forgotten.stdout
        # the dead-letter topic was rewritten without her: the other rejected line is kept
        [dead] = _topic_texts(kafka_bootstrap, [env["PARCOURS_STREAM_DLQ_TOPIC"]]).values()
        assert len(dead) == 1 and b"[redacted:email]" in dead[0], dead

        # the replay: the same events, three of a device to a message
        replayed = run(env, "produce", "--batch", "3", str(story))
        assert replayed.returncode == 0, replayed.stderr
        wait_for(
            port,
            lambda m: m.get("parcours_privacy_suppressed_total", 0) >= SUPPRESSED_ON_REPLAY,
            timeout=60,
            log=log,
        )
        time.sleep(3)  # the replay's batches checkpointed
    finally:
        stop(worker)
    said = log.read_text()
    sink_all(env)

    # a restart restores from the purged changelogs: Ben's open visit is back, and nothing
    # is erased again (each partition recorded that it is clean of the list as it is)
    port = free_port()
    restarted_log = tmp_path / f"worker-{port}.log"
    worker = start_worker(env, port)
    try:
        wait_for(port, lambda m: m.get("parcours_open_sessions", 0) >= 1, timeout=60, log=log)
    finally:
        stop(worker)
    assert "erased" not in restarted_log.read_text()

    # no table
    for needle, tables in _tables_naming(env).items():
        assert tables == {}, (needle, tables)
    [(ben_events,)] = query(env, f"SELECT count() FROM events WHERE customer_id = '{BEN}'")
    assert ben_events == 2

    # no topic Parcours reads back, and no state (the changelogs are what a restart restores)
    app_id = env["PARCOURS_STREAM_APP_ID"]
    topics = [
        env["PARCOURS_STREAM_RECORDS_TOPIC"],
        env["PARCOURS_STREAM_JOURNEY_TOPIC"],
        env["PARCOURS_STREAM_DLQ_TOPIC"],
        env["PARCOURS_STREAM_SUPPRESSIONS_TOPIC"],
        f"{app_id}-devices-changelog",
        f"{app_id}-persons-changelog",
    ]
    texts = _topic_texts(kafka_bootstrap, topics)
    assert texts[f"{app_id}-persons-changelog"] and texts[env["PARCOURS_STREAM_RECORDS_TOPIC"]]
    assert any(BEN.encode() in t for t in texts[f"{app_id}-persons-changelog"])
    for topic, records in texts.items():
        for needle in NEEDLES:
            assert not any(needle.encode() in r for r in records), (topic, needle)
    # the worker erased her live state (persons, devices), and said what it did, never whom
    erased = re.findall(r"(journey partition \d+|device state): erased (\d+) entries", said)
    assert {where.split()[0] for where, _ in erased} == {"journey", "device"}, said[-3000:]
    assert sum(int(n) for where, n in erased if where.startswith("journey")) >= 2
    assert sum(int(n) for where, n in erased if where == "device state") >= 2
    assert not any(needle in said for needle in NEEDLES)
    # the worker's local directory (Faust's, empty with in-memory tables) holds nothing of her
    for path in data_dir.rglob("*"):
        if path.is_file():
            for needle in NEEDLES:
                assert needle.encode() not in path.read_bytes(), (path, needle)
