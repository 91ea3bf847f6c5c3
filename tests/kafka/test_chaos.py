"""Chaos against the real broker: hostile input, kills, a broker restart and a ClickHouse outage
change nothing in what is stored (issue 12).

100,000 events, 2 % of the messages malformed (the simulator's, plus bytes that are not UTF-8,
UTF-16, binary, nesting beyond the limit and beyond what a JSON library writes again, NUL and
lone surrogates, absurd amounts, arrays of non-events), 1 % re-sent. While one worker and the
sink process them:

- `kill -9` of the worker at about 10 %, 50 % and 90 % of the input (its group's commits),
- `kill -9` of the sink at about 10 %, 50 % and 90 % of the events stored,
- the broker stopped and started again at about 30 %,
- ClickHouse unreachable for 60 s for the sink's second life (after the kill at 10 %, while
  the worker still sends plenty), which starts with a backlog: the batch it holds is over
  `PARCOURS_SINK_BATCH_ROWS`, so the outage strikes a full-batch write (the fault's log shows
  an insert of exactly that many rows refused).

Then the tables equal the embedded runner's over the same bytes (fed with the same sources
and positions, so even the rejections' ids agree), every malformed input is in the DLQ and in
`rejected_events` with its reason and its bytes, and nothing is shown twice. The figures are
printed (`pytest -s`, or in the report of a failure).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.devkafka import LocalKafka
from streams.embedded.runner import EmbeddedRunner
from streams.sinks.clickhouse import ClickHouseSink
from tests.kafka.chaos_input import ChaosInput, build_input
from tests.kafka.chaos_run import Chaos, Recovery, outage_in, refused_inserts
from tests.kafka.harness import (
    _plain,
    assert_same_as_embedded,
    create_topics,
    drained,
    query,
    stop,
    stream_env,
)

pytestmark = [pytest.mark.kafka, pytest.mark.integration, pytest.mark.slow]

EVENTS = 100_000
BATCH_ROWS = 1_000
OUTAGE_S = 60
Positions = dict[int, tuple[str, int, int]]  # message index -> (topic, partition, offset)


@pytest.fixture
def broker() -> Iterator[LocalKafka]:
    """A broker of this test's own: it is restarted in the middle of the run."""
    kafka = LocalKafka()
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


def produce(chaos_input: ChaosInput, env: dict[str, str]) -> Positions:
    """Every message, keyed, in order; returns where each one landed."""
    topics = {
        "clickstream": env["PARCOURS_STREAM_CLICKSTREAM_TOPIC"],
        "app-events": env["PARCOURS_STREAM_APP_EVENTS_TOPIC"],
        "store-events": env["PARCOURS_STREAM_STORE_EVENTS_TOPIC"],
    }
    create_topics(env["PARCOURS_KAFKA_BOOTSTRAP"], {t: 4 for t in topics.values()})
    producer = Producer(
        {
            "bootstrap.servers": env["PARCOURS_KAFKA_BOOTSTRAP"],
            "enable.idempotence": True,
            "linger.ms": 20,
        }
    )
    landed: Positions = {}

    def report(index: int) -> object:
        def on_delivery(error: object, message: object) -> None:
            assert error is None, error
            landed[index] = (message.topic(), message.partition(), message.offset())  # type: ignore[attr-defined]

        return on_delivery

    for index, msg in enumerate(chaos_input.messages):
        producer.produce(topics[msg.topic], msg.value, msg.key, on_delivery=report(index))
        producer.poll(0)
    assert producer.flush(60) == 0
    assert len(landed) == len(chaos_input.messages)
    return landed


def reference(ch: Client, chaos_input: ChaosInput, landed: Positions) -> EmbeddedRunner:
    """The embedded runner over the same bytes, each with the source and position the worker
    gives it (so a rejection's stored id is the same on both sides)."""
    runner = EmbeddedRunner(ClickHouseSink(ch, flush_interval_s=None))
    for index, msg in enumerate(chaos_input.messages):
        topic, partition, offset = landed[index]
        runner.feed_message(msg.topic, msg.value, f"kafka:{topic}/{partition}", offset)
    runner.finish()
    return runner


def dead_letters(env: dict[str, str]) -> list[tuple[str, int, int, str]]:
    """(topic, partition, offset, reason) of every message on the DLQ, from its headers."""
    consumer = Consumer(
        {
            "bootstrap.servers": env["PARCOURS_KAFKA_BOOTSTRAP"],
            "group.id": f"dlq-reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    topic = env["PARCOURS_STREAM_DLQ_TOPIC"]
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    tps = [TopicPartition(topic, p) for p in metadata.partitions]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    found, read = [], dict.fromkeys(ends, 0)
    deadline = time.monotonic() + 60
    while any(read[p] < ends[p] for p in ends) and time.monotonic() < deadline:
        for m in consumer.consume(1000, timeout=1):
            if m.error() is not None:
                continue
            read[m.partition()] = m.offset() + 1
            h = {k: (v or b"").decode("utf-8", "replace") for k, v in m.headers() or []}
            found.append(
                (
                    h["__connect.errors.topic"],
                    int(h["__connect.errors.partition"]),
                    int(h["__connect.errors.offset"]),
                    h["parcours.reason"],
                )
            )
    consumer.close()
    return found


def run_chaos(chaos: Chaos, records_topic: str, timeout_s: float = 900) -> None:
    """Fire each fault when its part got that far. A part is struck again once it has
    recovered; the worker and the sink independently, the broker with both up."""
    worker_faults = [
        (0.10, "worker killed at 10 %", chaos.kill_worker),
        (0.30, "broker restarted at 30 %", chaos.restart_broker),
        (0.50, "worker killed at 50 %", chaos.kill_worker),
        (0.90, "worker killed at 90 %", chaos.kill_worker),
    ]
    outage = {
        "PARCOURS_TEST_FAULT": "clickhouse-down",
        "PARCOURS_TEST_FAULT_AFTER_INSERTS": "0",
        "PARCOURS_TEST_FAULT_OUTAGE_S": str(OUTAGE_S),
    }
    sink_faults = [
        # the outage meets the sink restarted early, while the worker still sends it plenty
        # (restarted later, a sink that had caught up could have no batch left to write)
        (0.10, "sink killed at 10 %", lambda name: chaos.kill_sink(name, outage)),
        (0.50, "sink killed at 50 %", lambda name: chaos.kill_sink(name)),
        (0.90, "sink killed at 90 %", lambda name: chaos.kill_sink(name)),
    ]
    outage_seen: Recovery | None = None
    deadline = time.monotonic() + timeout_s
    chaos.start_worker()
    chaos.start_sink()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        chaos.check_alive()
        chaos.poll_recoveries()
        if outage_seen is None and len(chaos.sink_lives) >= 2:
            window = outage_in(chaos.sink_log)
            if window is not None:
                outage_seen = chaos.outage_recovery(window[1])
        at, name, fire = worker_faults[0] if worker_faults else (2.0, "", None)
        both = name.startswith("broker")  # the broker is restarted with both parts up
        waits_for = ("worker", "broker", *(("sink", "clickhouse") if both else ()))
        if fire is not None and not chaos.busy(*waits_for) and chaos.worker_progress() >= at:
            worker_faults.pop(0)
            fire(name)
            continue
        if sink_faults and not chaos.busy("sink", "broker", "clickhouse"):
            at, name, fire = sink_faults[0]
            # the last kill comes after the outage, not during it
            if chaos.sink_progress() >= at and (at < 0.9 or outage_seen is not None):
                sink_faults.pop(0)
                fire(name)
                continue
        finished = not worker_faults and not sink_faults and not chaos.busy()
        if finished and drained(chaos.worker_lives[-1].scrape()):
            break
    else:
        raise AssertionError(f"chaos did not finish in {timeout_s:.0f} s: {chaos.recoveries}")
    stop(chaos.worker_lives[-1].process)
    # the sink goes on until it has committed everything the worker wrote
    watch = Consumer(
        {"bootstrap.servers": chaos.env["PARCOURS_KAFKA_BOOTSTRAP"], "group.id": "parcours-sink"}
    )
    tps = [TopicPartition(records_topic, p) for p in range(4)]
    ends = [watch.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    while time.monotonic() < deadline:
        chaos.check_alive("sink")
        if [tp.offset for tp in watch.committed(tps, timeout=10)] == ends:
            break
        time.sleep(1)
    watch.close()
    stop(chaos.sink_lives[-1].process)


def test_chaos_changes_nothing_stored(broker: LocalKafka, tmp_path: Path, ch: Client) -> None:
    started = time.monotonic()
    env = stream_env(
        broker.bootstrap,
        tmp_path / "chdb",
        PARCOURS_STREAM_IDLE_AFTER_S="20",  # longer than a restart: waited for, not idle
        # Faust's own settings: a killed worker's partitions move after the group session
        # times out (60 s by default); 15 s keeps three kills within the CI budget
        BROKER_SESSION_TIMEOUT="15",
        BROKER_HEARTBEAT_INTERVAL="3",
        PARCOURS_SINK_BATCH_ROWS=str(BATCH_ROWS),
    )
    chaos_input = build_input(EVENTS, malformed_share=0.02, duplicate_rate=0.01, seed=12)
    landed = produce(chaos_input, env)
    runner = reference(ch, chaos_input, landed)

    chaos = Chaos(broker, env, tmp_path, chaos_input.malformed)
    chaos.inputs = [
        TopicPartition(env[f"PARCOURS_STREAM_{name}_TOPIC"], p)
        for name in ("CLICKSTREAM", "APP_EVENTS", "STORE_EVENTS")
        for p in range(4)
    ]
    chaos.produced = len(chaos_input.messages)
    try:
        run_chaos(chaos, env["PARCOURS_STREAM_RECORDS_TOPIC"])
    finally:
        chaos.stop_all()

    refused = refused_inserts(chaos.sink_log)
    show(
        "chaos, the run",
        {
            "events in": chaos_input.events,
            "messages in": len(chaos_input.messages),
            "malformed messages in (made so)": chaos_input.malformed,
            "re-sent messages in": chaos_input.duplicates,
            "inserts refused during the outage": len(refused),
            "wall time so far (s)": round(time.monotonic() - started),
        },
        chaos.recoveries,
    )
    # the outage caught a full batch being written, and lasted
    assert any(n == BATCH_ROWS for n, _ in refused), refused
    window = outage_in(chaos.sink_log)
    assert window is not None and window[1] - window[0] == pytest.approx(OUTAGE_S)
    assert len(chaos.worker_lives) == 4 and len(chaos.sink_lives) == 4

    assert_same_as_embedded(env, ch)
    # the rejections themselves: same ids, reasons, elements and original bytes
    for sql in (
        "SELECT DISTINCT rejection_id, reason, field, batch_index, source, position, message_id "
        "FROM rejected_events ORDER BY ALL",
        "SELECT DISTINCT message_id, source, position, hex(raw) FROM rejected_messages ORDER BY ALL",
    ):
        expected = [tuple(_plain(v) for v in r) for r in ch.query(sql).result_rows]
        assert query(env, sql) == expected, sql
    # every input the contract refuses (the rows were compared above, ids and bytes included)
    # is in the DLQ once at least, with the reason of its first rejected element
    first_reason: dict[tuple[str, int, int], str] = {}
    for source, position, reason in ch.query(
        "SELECT source, position, argMin(reason, ifNull(batch_index, -1)) "
        "FROM rejected_events GROUP BY source, position"
    ).result_rows:
        topic, partition = source.removeprefix("kafka:").rsplit("/", 1)
        first_reason[(topic, int(partition), position)] = reason
    flagged = {landed[i] for i, m in enumerate(chaos_input.messages) if m.malformed}
    assert flagged <= set(first_reason), sorted(flagged - set(first_reason))[:5]
    dlq = dead_letters(env)
    assert {(t, p, o) for t, p, o, _ in dlq} == set(first_reason)
    for t, p, o, reason in dlq:
        assert first_reason[(t, p, o)] == reason, (t, p, o)
    # nothing shown twice: the documented ways of reading give the embedded runner's counts
    for sql in (
        "SELECT count() FROM events FINAL",
        "SELECT count() FROM sessions FINAL",
        "SELECT count() FROM friction FINAL",
        "SELECT count() FROM rejected_events FINAL",
        "SELECT count() FROM rejected_messages FINAL",
        "SELECT uniqExact(session_id), sum(events), round(sum(revenue), 2) "
        "FROM (SELECT * FROM sessions_resolved LIMIT 1 BY session_id)",
    ):
        expected = [tuple(_plain(v) for v in r) for r in ch.query(sql).result_rows]
        assert query(env, sql) == expected, sql

    [(stored, rejections)] = query(
        env, "SELECT uniqExact(event_id), (SELECT count() FROM rejected_events FINAL) FROM events"
    )
    [(quarantined,)] = query(env, "SELECT count() FROM quarantined_rows")
    show(
        "chaos, what is stored",
        {
            "events stored (distinct ids)": stored,
            "rejections stored": rejections,
            "messages rejected (each in the DLQ)": len(first_reason),
            "  of them not made malformed on purpose": len(set(first_reason) - flagged),
            "DLQ messages (re-sent after kills included)": len(dlq),
            "rows quarantined": quarantined,
            "re-sent events dropped (embedded runner)": runner.stats.duplicates,
            "wall time (s)": round(time.monotonic() - started),
        },
        [],
    )
    assert all(r.seconds is not None for r in chaos.recoveries), chaos.recoveries


def show(title: str, figures: dict[str, int], recoveries: list[Recovery]) -> None:
    print(f"\n{title}:")
    for name, value in figures.items():
        print(f"  {name:48} {value:>10,}")
    for recovery in recoveries:
        took = "not recovered" if recovery.seconds is None else f"{recovery.seconds:8.1f} s"
        print(f"  recovery after {recovery.fault:33} {took:>10}")
