"""Running the streaming processes in tests: a worker, the sink, and comparing with embedded.

Each test gets its own topics and consumer group (a random suffix), a chDB database of its own
for the sink, and starts the real `parcours worker` / `parcours sink` commands as processes, so
that they can be killed like a production process would be.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import TOPIC_CHANNELS
from streams.embedded.runner import EmbeddedRunner
from streams.sinks.clickhouse import ClickHouseSink
from streams.worker.sink_stage import SINK_GROUP

PARCOURS = [sys.executable, "-m", "streams.cli.main"]
CANONICAL_TOPICS = frozenset(TOPIC_CHANNELS)
Rows = list[tuple[object, ...]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream_env(bootstrap: str, db_dir: Path, **extra: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "PARCOURS_KAFKA_BOOTSTRAP": bootstrap,
        "PARCOURS_STREAM_APP_ID": f"parcours-{suffix}",
        "PARCOURS_STREAM_CLICKSTREAM_TOPIC": f"clickstream-{suffix}",
        "PARCOURS_STREAM_APP_EVENTS_TOPIC": f"app-events-{suffix}",
        "PARCOURS_STREAM_STORE_EVENTS_TOPIC": f"store-events-{suffix}",
        "PARCOURS_STREAM_JOURNEY_TOPIC": f"parcours-journey-{suffix}",
        "PARCOURS_STREAM_RECORDS_TOPIC": f"parcours-records-{suffix}",
        "PARCOURS_STREAM_DLQ_TOPIC": f"parcours-dlq-{suffix}",
        "PARCOURS_STREAM_SUPPRESSIONS_TOPIC": f"parcours-suppressions-{suffix}",
        "PARCOURS_STREAM_IDLE_AFTER_S": "6",
        "PARCOURS_CLICKHOUSE_DSN": f"chdb://{db_dir}",
        **extra,
    }


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create topics with the given partition counts (as a producer's platform team would)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, n, 1) for name, n in topics.items()])
    for future in futures.values():
        future.result(30)


def run(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARCOURS, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def query(env: dict[str, str], sql: str) -> Rows:
    result = run(env, "sql", sql, "--format", "json")
    assert result.returncode == 0, result.stderr
    return [tuple(_plain(v) for v in row.values()) for row in json.loads(result.stdout)]


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("parcours_") and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def total(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if re.match(re.escape(prefix) + r"(\{|$)", k))


def start_worker(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    """A worker whose log goes to `<tmp>/worker-<port>.log` (shown when it does not finish)."""
    log = Path(env["PARCOURS_CLICKHOUSE_DSN"].removeprefix("chdb://")).parent / f"worker-{port}.log"
    worker = _WORKERS[port] = subprocess.Popen(
        [*PARCOURS, "worker", "--web-port", str(port), "--loglevel", "info"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
        text=True,
        start_new_session=True,
    )
    return worker


#: The workers started here, by web port: `wait_for` gives up at once on one that exited.
_WORKERS: dict[int, subprocess.Popen[str]] = {}


def stop(worker: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    """Stop a worker; one that does not shut down in time is killed, never left running."""
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
    try:
        worker.wait(45)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(15)


def wait_for(
    port: int, done: object, timeout: float = 240, log: Path | None = None
) -> dict[str, float]:
    """Scrape a worker until `done(metrics)` holds; returns the last scrape."""
    deadline = time.monotonic() + timeout
    metrics: dict[str, float] = {}
    worker = _WORKERS.get(port)
    while time.monotonic() < deadline:
        time.sleep(1)
        if worker is not None and worker.poll() is not None:
            break
        try:
            metrics = scrape(port)
        except OSError:
            continue
        if done(metrics):  # type: ignore[operator]
            return metrics
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    exited = "" if worker is None or worker.poll() is None else f" (exited {worker.returncode})"
    raise AssertionError(f"the worker on :{port} did not get there{exited}: {metrics}\n{tail}")


def drained(metrics: dict[str, float]) -> bool:
    """Every input partition went silent: event time follows the wall clock, all is closed."""
    return metrics.get("parcours_watermark_timestamp_seconds", 0) > time.time() - 3600


def replay_with_one_worker(env: dict[str, str], tmp_path: Path) -> dict[str, float]:
    """Run one worker until every input partition went silent, stop it, and store its
    records with the sink; returns the worker's last metrics scrape."""
    port = free_port()
    worker = start_worker(env, port)
    try:
        metrics = wait_for(port, drained, timeout=300, log=tmp_path / f"worker-{port}.log")
    finally:
        stop(worker)
    sink_all(env)
    return metrics


def sink_all(env: dict[str, str]) -> None:
    sink = run(env, "sink", "--idle-exit", "8", timeout=300)
    assert sink.returncode == 0, sink.stderr


class GroupOffsets:
    """A consumer group's committed offsets against a topic's ends, read without joining the
    group (no subscription): whether the group has processed all there is. The worker commits
    an input batch only after processing it (Faust acks `take_events` batches after the agent's
    loop body) and the sink after writing it."""

    def __init__(self, env: dict[str, str], group: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": env["PARCOURS_KAFKA_BOOTSTRAP"],
                "group.id": group,
                "enable.auto.commit": False,
            }
        )

    def behind(self, topic: str) -> dict[int, tuple[int, int]]:
        """Partition -> (committed, end) for each partition not committed to its end."""
        c = self.consumer
        partitions = c.list_topics(topic, timeout=30).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = {tp.partition: c.get_watermark_offsets(tp, timeout=30)[1] for tp in tps}
        committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=30)}
        return {p: (committed[p], end) for p, end in ends.items() if end > 0 and committed[p] < end}

    def close(self) -> None:
        self.consumer.close()


def sink_to_the_end(env: dict[str, str], log: Path, timeout: float = 300) -> None:
    """Run the sink until its group has committed the end of every records partition, then
    stop it. Only for records topics no worker writes any more (the workers stopped).

    Observed, not guessed: `sink --idle-exit` stops after a quiet period, and a sink slow to
    join its group or to write (a loaded machine) can be quiet that long with records left.
    """
    topic = env["PARCOURS_STREAM_RECORDS_TOPIC"]
    offsets = GroupOffsets(env, SINK_GROUP)
    sink = subprocess.Popen(
        [*PARCOURS, "sink"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        left = offsets.behind(topic)
        while left and time.monotonic() < deadline and sink.poll() is None:
            time.sleep(0.5)
            left = offsets.behind(topic)
        exited = "" if sink.poll() is None else f" (exited {sink.returncode})"
        assert not left, (
            f"the sink did not commit the records topic's end{exited}: {left}\n"
            f"{log.read_text()[-3000:]}"
        )
    finally:
        offsets.close()
        stop(sink)
    assert sink.returncode == 0, log.read_text()[-3000:]


def embedded_reference(ch: Client, traffic: Path) -> EmbeddedRunner:
    """The embedded runner over the lines the worker can see.

    The simulator's misrouted noise is addressed to `<topic>-legacy`: `parcours produce` sends
    it to that Kafka topic, which no worker reads (a misrouting producer's messages are not
    on our topics), while the embedded runner, reading the file, would reject each such line
    as `unknown_topic`. So the reference leaves those lines out, as the stream does.
    """
    runner = EmbeddedRunner(ClickHouseSink(ch, flush_interval_s=None))
    with traffic.open("rb") as fh:
        runner.feed_lines(
            (line for line in fh if not _misrouted(line)),
            source=f"file:{traffic.name}",
        )
    runner.finish()
    return runner


def misrouted_lines(traffic: Path) -> int:
    """Lines of an ingest file addressed to a topic the worker does not read."""
    with traffic.open("rb") as fh:
        return sum(1 for line in fh if _misrouted(line))


def _misrouted(line: bytes) -> bool:
    try:
        topic = json.loads(line).get("topic")
    except (ValueError, AttributeError):
        return False  # not the ingest format: `parcours produce` sends it to clickstream
    return topic not in CANONICAL_TOPICS


#: What must be identical between the embedded runner and the stream, as distinct contents
#: (a replay may store a row twice until ClickHouse merges it; its content is the same).
CONTENTS = {
    "events": "SELECT DISTINCT event_id, event_type, resolved_person_id, late "
    "FROM events_resolved ORDER BY ALL",
    "identity_links": "SELECT DISTINCT device_id, customer_id, "
    "toUnixTimestamp64Milli(linked_at) FROM identity_links ORDER BY ALL",
    "rejections": "SELECT reason, uniqExact(rejection_id) FROM rejected_events "
    "GROUP BY reason ORDER BY ALL",
    "friction": "SELECT DISTINCT type, resolved_person_id, channel, "
    "toUnixTimestamp64Milli(occurred_at) FROM friction_resolved ORDER BY ALL",
    "sessions": "SELECT resolved_person_id, uniqExact(session_id), sum(events), sum(views), "
    "sum(converted), round(sum(revenue), 2) FROM (SELECT DISTINCT * FROM sessions_resolved) "
    "GROUP BY resolved_person_id ORDER BY ALL",
    "per_minute": "SELECT metric, channel, key, sum(count) FROM events_per_minute "
    "GROUP BY ALL ORDER BY ALL",
}


def assert_same_as_embedded(env: dict[str, str], ch: Client) -> dict[str, Rows]:
    """Compare every public table's contents; returns the streamed contents."""
    streamed: dict[str, Rows] = {}
    for name, sql in CONTENTS.items():
        expected = [tuple(_plain(v) for v in r) for r in ch.query(sql).result_rows]
        streamed[name] = query(env, sql)
        assert streamed[name] == expected, f"{name} differs from the embedded runner:\n" + diff(
            expected, streamed[name]
        )
    # and the documented counting patterns show each id once: distinct ids, and versioned rows
    # read FINAL (README, "versioned rows"). Not the raw `sessions` table: a withdrawn session
    # keeps its row there until merged, and which intermediate sessions revisions write and
    # withdraw depends on the order of arrival (a late purchase read before the late visit it
    # ends opens a session of its own, withdrawn when the visit comes)
    for table, key in (("events", "event_id"), ("sessions FINAL", "session_id")):
        [(n,)] = query(env, f"SELECT uniqExact({key}) FROM {table}")
        [(m,)] = [tuple(r) for r in ch.query(f"SELECT uniqExact({key}) FROM {table}").result_rows]
        assert n == m, f"{table}: {n} ids streamed, {m} embedded"
    return streamed


def diff(expected: Rows, streamed: Rows, shown: int = 20) -> str:
    """The rows only one side has (up to `shown` of each), and how many there are: enough to
    tell a missing conclusion from a different one when a comparison fails."""
    missing = sorted(set(expected) - set(streamed), key=str)
    extra = sorted(set(streamed) - set(expected), key=str)
    lines = [
        f"{len(expected)} rows embedded, {len(streamed)} streamed; "
        f"{len(missing)} only embedded, {len(extra)} only streamed"
    ]
    lines += [f"  - {row}" for row in missing[:shown]]
    lines += [f"  + {row}" for row in extra[:shown]]
    return "\n".join(lines)


def _plain(value: object) -> object:
    return value if isinstance(value, int | float | str | bool) else str(value)
