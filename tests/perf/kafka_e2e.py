"""Benchmark: simulated events -> Kafka -> one `parcours worker` -> `parcours sink` -> chDB.

    .venv/bin/python tests/perf/kafka_e2e.py [--events 1000000] [--batch 20]

Two rounds: single-event messages, then messages packing up to `--batch` events of one device.
Each round has two stages, each on fresh topics, a fresh Faust app id (its consumer group) and
a fresh chDB directory, with one worker and one sink (the sink starts first and both have their
partitions assigned before anything is timed that depends on them):

Backlog stage
1. produce rate: N simulated events sent with the code of `parcours simulate --to kafka`
   (streams.cli.simulate_cmd.simulated_items -> KafkaEventProducer), timed to the last
   delivery report. Printed with and without the simulator's own time (measured around each
   item it yields), since a real producer does not simulate.
2. ceiling: a bare confluent-kafka consumer reading the input topics from the start; the
   median of `--repeat` fresh consumer groups, timed from the first message to the last.
3. worker throughput on that backlog. Events per second *per worker core* = events the worker
   completed (valid + duplicates + rejected, from its /metrics; each input event ends as
   exactly one of them) / CPU seconds of the worker process (utime + stime of all its threads,
   from /proc/<pid>/stat), from the last scrape before it had completed anything to the first
   showing every input event completed. CPU time rather than wall time because the broker, the
   sink and this script share the machine's cores. Also printed: the median over 1 s sampling
   intervals, and the wall-clock rate over the same window (which ends with the idle period
   that releases the last events). The batched round's backlog is sent unthrottled, so a
   device's packed events can span hours of simulated time and many arrive behind the
   watermark (flagged late; see streams/worker/produce.py); the count is printed.

Paced stage (latency; a backlog's latency would only be its queueing time)
4. With a fresh worker and sink running and assigned, events are produced *paced*, by default
   at half the backlog's wall-clock worker rate (half capacity, the issue's target: below
   saturation, so that the figure is latency rather than queueing; the worker's CPU use
   meanwhile is printed), for
   `--live-seconds`. Latency comes from the sink's `parcours_end_to_end_latency_seconds`
   histogram, scraped from its /metrics: per event row, the Kafka message timestamp
   (CreateTime, set by the producer at produce()) to ClickHouse acknowledging the insert. That
   histogram is what the sink itself measures; comparing events.received_at with an insert
   time would need an insert-time column the events table does not have. p50/p99 are
   interpolated within the buckets like PromQL's histogram_quantile, so their resolution is
   the bucket width (the bounds are printed with them). Two figures:
   - steady state: the difference between scrapes at 25% and at 100% of the paced run, i.e.
     the rows inserted while events kept coming (start-up and the end of input left out);
   - every paced event, scraped once the sink has inserted every event row the worker
     emitted. Its tail includes the last events, which a finite input only releases once
     the inputs have been silent for the idle period; a continuous stream never waits so.
   The simulated day lies in the past (it ends an hour ago), so once the input goes silent
   the watermark follows the wall clock past every event and all of them are released; a
   fresh worker is needed because a worker whose input went silent has its watermark at the
   wall clock, and older events would all be late. The simulator compresses a day into
   seconds, so the 120 s grace period of event time is milliseconds of wall time here: the
   figure is the pipeline's own latency (batching, watermarks over 12 input partitions,
   topics, inserts). With real-time traffic, add the grace period.
   At modest rates the idle period dominates it: a journey partition learns an input
   partition's watermark only from the messages routed to it (ticks carry none), so an
   (input partition, journey partition) pair that sees no message for a while holds events
   back until it counts as idle. Measured here: p50 about 3.7 s with 3 s idle, 9-13 s with
   the default 10 s; higher rates shorten the gaps.

The worker runs with the configured settings (`PARCOURS_STREAM_IDLE_AFTER_S`, 10 s by
default, is printed): a shorter idle period would end each stage sooner, but a worker slowed
down by a busy machine can leave an input partition unread that long in the middle of a
backlog, which then counts as idle and lets the watermark run ahead (more late events).
A broker is started with streams.devkafka.LocalKafka unless PARCOURS_KAFKA_BOOTSTRAP is set;
`--keep` keeps the working directory with the worker and sink logs.

Figures, not assertions: these machines are shared; read medians and ratios of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streams.cli.simulate_cmd import kafka_topic, simulated_items
from streams.devkafka import LocalKafka
from streams.settings import StreamSettings
from streams.simulate import SimulationConfig, SimulationStats
from streams.worker.produce import KafkaEventProducer, OutgoingItem

PARCOURS = [sys.executable, "-m", "streams.cli.main"]
CANONICAL = ("clickstream", "app-events", "store-events")
SINK_GROUP = "parcours-sink"  # streams/worker/sink_stage.py
LATENCY = "parcours_end_to_end_latency_seconds"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- measuring helpers -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all threads (fields 14 and 15 of /proc/<pid>/stat; the
    command name in field 2 may hold spaces, so split after its closing parenthesis)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def scrape(port: int) -> dict[str, float]:
    """Every `parcours_*` sample of a /metrics page, by its full name with labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("parcours_"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def total(metrics: dict[str, float], name: str) -> float:
    return sum(v for k, v in metrics.items() if re.match(re.escape(name) + r"(\{|$)", k))


def completed(metrics: dict[str, float]) -> float:
    """Events the worker is done with: valid ones through the journey core, duplicates
    dropped, rejections sent to the dead-letter topic."""
    return (
        total(metrics, "parcours_events_processed_total")
        + total(metrics, "parcours_events_duplicate_total")
        + total(metrics, "parcours_events_rejected_total")
    )


def histogram(metrics: dict[str, float], name: str) -> dict[float, float]:
    """Cumulative bucket counts by upper bound (inf included)."""
    buckets: dict[float, float] = {}
    for key, value in metrics.items():
        match = re.fullmatch(re.escape(name) + r'_bucket\{le="([^"]+)"\}', key)
        if match:
            buckets[float(match.group(1))] = value
    return buckets


def quantile(q: float, buckets: dict[float, float]) -> tuple[float, float, float]:
    """(estimate, bucket lower bound, upper bound), linear within the bucket like PromQL's
    histogram_quantile; the estimate is the lower bound when it falls in the +Inf bucket."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return math.nan, math.nan, math.nan
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for upper in bounds:
        if buckets[upper] >= rank:
            if math.isinf(upper):
                return lower, lower, upper
            inside = buckets[upper] - below
            return lower + (upper - lower) * (rank - below) / inside, lower, upper
        lower, below = upper, buckets[upper]
    return math.nan, math.nan, math.nan


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


# --- producing and the raw ceiling -------------------------------------------------------


@dataclass
class Produced:
    events: int = 0
    input_events: int = 0
    messages: int = 0
    elapsed_s: float = 0.0
    simulator_s: float = 0.0
    failed: int = 0


class _Timed:
    """Wraps an iterator and adds up the time spent producing its items."""

    def __init__(self, items: Iterator[OutgoingItem]) -> None:
        self.items = items
        self.seconds = 0.0

    def __iter__(self) -> _Timed:
        return self

    def __next__(self) -> OutgoingItem:
        started = time.perf_counter()
        try:
            return next(self.items)
        finally:
            self.seconds += time.perf_counter() - started


def _first_events(
    items: Iterator[OutgoingItem], limit: int, inputs: set[str], tally: Produced
) -> Iterator[OutgoingItem]:
    for item in items:
        n = len(item.value) if isinstance(item.value, list) else 1
        tally.events += n
        tally.input_events += n if item.topic in inputs else 0
        yield item
        if tally.events >= limit:
            return


def produce(
    bootstrap: str,
    topics: dict[str, str],
    config: SimulationConfig,
    *,
    limit: int,
    batch: int,
    rate: float | None = None,
    duration_s: float | None = None,
) -> Produced:
    """Simulate into Kafka like `parcours simulate --to kafka`; timed to the last delivery."""
    tally = Produced()
    timed = _Timed(simulated_items(config, topics, SimulationStats()))
    producer = KafkaEventProducer(bootstrap)
    started = time.perf_counter()
    producer.send_batched(
        _first_events(timed, limit, set(topics.values()), tally),
        batch=batch,
        rate=rate,
        duration_s=duration_s,
    )
    stats = producer.flush(120)
    tally.elapsed_s = time.perf_counter() - started
    tally.simulator_s = timed.seconds
    tally.messages, tally.failed = stats.messages, stats.failed
    if stats.failed:
        raise RuntimeError(f"{stats.failed} messages were not delivered: {stats.errors}")
    return tally


def messages_in(bootstrap: str, topics: list[str], partitions: int) -> int:
    """Messages in the topics (sum of high watermarks; the topics are fresh)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-offsets"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in topics
            for p in range(partitions)
        )
    finally:
        consumer.close()


def raw_consume_s(bootstrap: str, topics: list[str], expected: int) -> float:
    """Seconds for a bare consumer to read `expected` messages, first message to last (group
    join and the first fetch's wait are not the consumer's rate)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    count, first = 0, 0.0
    deadline = time.monotonic() + 600
    try:
        while count < expected and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1.0):
                if msg.error() is None:
                    if not count:
                        first = time.perf_counter()
                    count += 1
        if count < expected:
            raise RuntimeError(f"raw consumer read {count} of {expected} messages")
        return time.perf_counter() - first
    finally:
        consumer.close()


def plain_faust(bootstrap: str, topics: list[str], expected: int) -> tuple[float, float]:
    """(events per CPU second, per wall second) of a plain Faust agent reading the input
    topics from the start (tests/perf/plain_faust_agent.py): what Faust itself costs."""
    script = Path(__file__).with_name("plain_faust_agent.py")
    done = subprocess.run(
        [sys.executable, str(script), bootstrap, str(expected), *topics],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(
            f"the plain Faust agent failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    figures = json.loads(lines[-1])
    return figures["events"] / figures["cpu_s"], figures["events"] / figures["wall_s"]


def topic_bytes(bootstrap: str, topics: list[str]) -> dict[str, tuple[int, int]]:
    """topic -> (records, key + value bytes) of every record in it, read from the start."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-bytes-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    found: dict[str, tuple[int, int]] = {}
    try:
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
            ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts}
            consumer.assign(parts)
            left = {p for p, end in ends.items() if end > 0}
            records = size = 0
            while left:
                for msg in consumer.consume(10_000, timeout=1.0):
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            left.discard(msg.partition())
                        continue
                    records += 1
                    size += len(msg.value() or b"") + len(msg.key() or b"")
            found[topic] = (records, size)
            consumer.unassign()
    finally:
        consumer.close()
    return found


def disk_bytes(data_dir: Path | None, topic: str) -> int | None:
    """Bytes of the topic's partitions in the local broker's log directory (what Kafka keeps,
    compressed as sent; compaction may have run), or None with another broker."""
    if data_dir is None:
        return None
    return sum(
        f.stat().st_size
        for d in data_dir.glob(f"{topic}-*")
        if d.name.rsplit("-", 1)[0] == topic
        for f in d.iterdir()
        if f.suffix == ".log"
    )


# --- one pipeline under test -------------------------------------------------------------


class Stage:
    """Fresh topics, app id and chDB directory; the sink and the worker, stopped (by process
    group) whatever happens."""

    def __init__(self, bootstrap: str, workdir: Path, partitions: int) -> None:
        self.bootstrap, self.workdir, self.partitions = bootstrap, workdir, partitions
        self.suffix = uuid.uuid4().hex[:8]
        self.topics = {c: f"bench-{c}-{self.suffix}" for c in CANONICAL}
        self.inputs = list(self.topics.values())
        self.app_id = f"bench-{self.suffix}"
        self.records = f"bench-records-{self.suffix}"
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        legacy = [kafka_topic(f"{c}-legacy", self.topics) for c in CANONICAL]
        self._create([*self.inputs, self.records, f"bench-dlq-{self.suffix}"], partitions)
        self._create(legacy, 1)  # the simulator's misrouted noise lands there
        self.env = {
            **os.environ,
            "PARCOURS_KAFKA_BOOTSTRAP": bootstrap,
            "PARCOURS_STREAM_APP_ID": self.app_id,
            "PARCOURS_STREAM_CLICKSTREAM_TOPIC": self.topics["clickstream"],
            "PARCOURS_STREAM_APP_EVENTS_TOPIC": self.topics["app-events"],
            "PARCOURS_STREAM_STORE_EVENTS_TOPIC": self.topics["store-events"],
            "PARCOURS_STREAM_JOURNEY_TOPIC": f"bench-journey-{self.suffix}",
            "PARCOURS_STREAM_RECORDS_TOPIC": self.records,
            "PARCOURS_STREAM_DLQ_TOPIC": f"bench-dlq-{self.suffix}",
            "PARCOURS_CLICKHOUSE_DSN": f"chdb://{workdir / f'chdb-{self.suffix}'}",
            "PARCOURS_DATA_DIR": str(workdir / f"data-{self.suffix}"),
        }
        self.worker_port, self.sink_port = free_port(), free_port()
        self.logs: list[TextIO] = []
        self.sink: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def _create(self, names: list[str], partitions: int) -> None:
        futures = self.admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
        for future in futures.values():
            future.result(30)

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}-{self.suffix}.log").open("w")
        self.logs.append(log)
        return subprocess.Popen(
            [*PARCOURS, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_sink(self) -> None:
        self.sink = self._start(
            "sink", "sink", "--metrics-port", str(self.sink_port), "--idle-exit", "900"
        )
        self.wait_assigned(SINK_GROUP, [self.records])

    def start_worker(self) -> subprocess.Popen[bytes]:
        self.worker = self._start("worker", "worker", "--web-port", str(self.worker_port))
        return self.worker

    def wait_assigned(self, group: str, topics: list[str], timeout_s: float = 180) -> None:
        """Until the group is stable with every partition of `topics` assigned."""
        wanted = {(t, p) for t in topics for p in range(self.partitions)}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                description = self.admin.describe_consumer_groups([group], request_timeout=10)[
                    group
                ].result()
            except KafkaException:  # the group coordinator may still be loading: ask again
                time.sleep(0.5)
                continue
            assigned = {
                (tp.topic, tp.partition)
                for member in description.members
                if member.assignment is not None
                for tp in member.assignment.topic_partitions
            }
            if description.state == ConsumerGroupState.STABLE and wanted <= assigned:
                return
            time.sleep(0.5)
        raise RuntimeError(f"group {group} did not get {topics} assigned in {timeout_s:.0f}s")

    def check_alive(self) -> None:
        for name, proc in (("worker", self.worker), ("sink", self.sink)):
            if proc is not None and proc.poll() is not None:
                log = self.workdir / f"{name}-{self.suffix}.log"
                raise RuntimeError(
                    f"the {name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )

    def stop(self) -> None:
        procs = [p for p in (self.worker, self.sink) if p is not None]
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for log in self.logs:
            log.close()


@dataclass
class Sample:
    at: float
    cpu: float
    consumed: float
    completed: float


def drain(stage: Stage, expected: int, timeout_s: float) -> list[Sample]:
    """Samples of the worker every 0.5 s (from its start) until it has completed `expected`
    events; before its web server answers, a sample has only its CPU time."""
    assert stage.worker is not None
    samples: list[Sample] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stage.check_alive()
        cpu = cpu_seconds(stage.worker.pid)
        try:
            m = scrape(stage.worker_port)
        except OSError:
            samples.append(Sample(time.monotonic(), cpu, 0.0, 0.0))
            time.sleep(0.25)
            continue
        s = Sample(time.monotonic(), cpu, total(m, "parcours_events_consumed_total"), completed(m))
        samples.append(s)
        if s.completed >= expected:
            return samples
        time.sleep(0.5)
    last = samples[-1].completed if samples else 0.0
    raise RuntimeError(f"the worker completed {last:,.0f} of {expected:,} events in time")


def throughput(samples: list[Sample]) -> tuple[float, float, float]:
    """(events per CPU second, median of the same over 1 s intervals, wall-clock events/s)
    from the last sample with nothing completed to the first with everything completed."""
    final = samples[-1].completed
    started = max((s for s in samples if s.completed == 0), key=lambda s: s.at, default=samples[0])
    ended = next(s for s in samples if s.completed >= final)
    done = ended.completed - started.completed
    cpu, wall = ended.cpu - started.cpu, ended.at - started.at
    rates: list[float] = []
    mark = started
    for s in samples:
        if mark.at < s.at <= ended.at and s.at - mark.at >= 1.0:
            if s.cpu - mark.cpu >= 0.2 and s.completed > mark.completed:
                rates.append((s.completed - mark.completed) / (s.cpu - mark.cpu))
            mark = s
    return (
        done / cpu if cpu > 0 else math.nan,
        median(rates),
        done / wall if wall > 0 else math.nan,
    )


def wait_sink_caught_up(stage: Stage, timeout_s: float) -> dict[str, float]:
    """Scrape until the sink has inserted as many event rows (its latency histogram counts one
    per event row) as the worker has emitted valid events; returns the sink's metrics."""
    deadline = time.monotonic() + timeout_s
    inserted = emitted = 0.0
    while time.monotonic() < deadline:
        stage.check_alive()
        emitted = total(scrape(stage.worker_port), "parcours_events_processed_total")
        metrics = scrape(stage.sink_port)
        inserted = metrics.get(f"{LATENCY}_count", 0.0)
        if inserted >= emitted:
            return metrics
        time.sleep(0.5)
    raise RuntimeError(f"the sink inserted {inserted:,.0f} of {emitted:,.0f} events in time")


# --- a round -----------------------------------------------------------------------------


@dataclass
class RoundResult:
    label: str
    produced: Produced
    input_messages: int = 0
    ceiling_events_s: float = math.nan
    plain_per_core: float = math.nan
    plain_wall: float = math.nan
    #: topic role -> (records, key + value bytes, bytes on the broker's disk or None)
    written: dict[str, tuple[int, int, int | None]] = field(default_factory=dict)
    per_core: float = math.nan
    per_core_intervals: float = math.nan
    wall: float = math.nan
    late: float = 0.0
    stored_events: float = 0.0
    live: Produced | None = None
    live_rate: float = 0.0
    #: worker CPU seconds per wall second while the paced events were produced
    live_busy: float = math.nan
    #: quantile -> (estimate, bucket bounds), over the steady window / over every paced event
    steady: dict[float, tuple[float, float, float]] = field(default_factory=dict)
    steady_events: float = 0.0
    everything: dict[float, tuple[float, float, float]] = field(default_factory=dict)
    everything_events: float = 0.0


def where_time_goes(folded: Path) -> str:
    """The worker's py-spy samples (collapsed stacks) by the first frame that names a part:
    Parcours's own code by module, the journey core, Faust, aiokafka, asyncio and the rest."""
    parts: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    samples = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = stack.split(";")
        leaf = frames[-1]
        part = "other"
        for name, marker in (
            ("journey core (streams/core)", "streams/core/"),
            ("decode (schemas)", "schemas/"),
            ("Parcours worker (streams/worker)", "streams/worker/"),
            ("prometheus_client", "prometheus_client"),
            ("orjson", "orjson"),
            ("aiokafka", "aiokafka"),
            ("faust / mode", "faust/"),
            ("asyncio", "asyncio"),
        ):
            if marker in leaf or (name == "faust / mode" and "mode/" in leaf):
                part = name
                break
        parts[part] = parts.get(part, 0) + n
        for marker in ("streams/", "schemas/"):
            if any(marker in f for f in frames):
                inclusive[marker] = inclusive.get(marker, 0) + n
    lines = [f"py-spy, {samples:,} samples of the worker (leaf frame's part):"]
    for part, n in sorted(parts.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {part:36} {n / samples:6.1%}")
    parcours = max(inclusive.get("streams/", 0), inclusive.get("schemas/", 0))
    lines.append(f"  (stacks through any Parcours code: {parcours / samples:.1%})")
    return "\n".join(lines)


def show_written(result: RoundResult) -> None:
    """Bytes per topic, and what the worker wrote against what it read (logical: key +
    value of every record; on disk: the broker's log segments, compressed as sent)."""
    _, input_bytes, input_disk = result.written["input (3 topics)"]
    print("written to Kafka, per topic: records, key+value bytes (x input), on disk (x input)")
    out = disk_out = 0
    for role, (records, size, disk) in result.written.items():
        ratio = f"{size / input_bytes:.2f}x" if input_bytes else "-"
        on_disk = "-" if disk is None else f"{disk / 1e6:,.1f} MB"
        if disk is not None and input_disk:
            on_disk += f" ({disk / input_disk:.2f}x)"
        print(f"  {role:22} {records:>10,} {size / 1e6:>10,.1f} MB ({ratio:>6}) {on_disk:>22}")
        if not role.startswith("input"):
            out += size
            disk_out += disk or 0
    print(
        f"  {'by the worker':22} {'':>10} {out / 1e6:>10,.1f} MB "
        f"({out / input_bytes:.2f}x)"
        + (f" {disk_out / 1e6:>13,.1f} MB ({disk_out / input_disk:.2f}x)" if input_disk else ""),
        flush=True,
    )


def backlog_stage(
    bootstrap: str,
    args: argparse.Namespace,
    label: str,
    batch: int,
    workdir: Path,
    data_dir: Path | None = None,
) -> RoundResult:
    partitions = StreamSettings().partitions
    stage = Stage(bootstrap, workdir, partitions)
    print(f"\n== {label}: batch {batch}; backlog on bench-*-{stage.suffix}", flush=True)
    config = SimulationConfig(customers=max(500, args.events // 60), days=7, seed=args.seed)
    produced = produce(bootstrap, stage.topics, config, limit=args.events, batch=batch)
    sending_s = produced.elapsed_s - produced.simulator_s
    print(
        f"produce: {produced.events:,} events in {produced.messages:,} messages, "
        f"{produced.elapsed_s:.1f}s to the last delivery report = "
        f"{produced.events / produced.elapsed_s:,.0f} events/s "
        f"({produced.events / sending_s:,.0f} events/s without the simulator's "
        f"{produced.simulator_s:.1f}s)",
        flush=True,
    )
    result = RoundResult(label, produced)
    result.input_messages = messages_in(bootstrap, stage.inputs, partitions)
    runs = [
        raw_consume_s(bootstrap, stage.inputs, result.input_messages) for _ in range(args.repeat)
    ]
    ceiling_s = median(runs)
    result.ceiling_events_s = produced.input_events / ceiling_s
    print(
        f"ceiling: bare confluent-kafka consumer, {result.input_messages:,} messages: "
        f"{result.input_messages / ceiling_s:,.0f} messages/s = {result.ceiling_events_s:,.0f} "
        f"events/s (median of {len(runs)}: {', '.join(f'{r:.2f}s' for r in runs)})",
        flush=True,
    )
    result.plain_per_core, result.plain_wall = plain_faust(
        bootstrap, stage.inputs, produced.input_events
    )
    print(
        f"plain Faust agent (orjson per message, a dict counter): {result.plain_per_core:,.0f} "
        f"events/s per core (CPU time); wall clock {result.plain_wall:,.0f} events/s",
        flush=True,
    )
    try:
        stage.start_sink()
        stage.start_worker()
        spy = None
        if args.py_spy:
            assert stage.worker is not None
            out = workdir / f"worker-{stage.suffix}.folded"
            spy = subprocess.Popen(
                [
                    args.py_spy,
                    "record",
                    "-p",
                    str(stage.worker.pid),
                    "-r",
                    "50",
                    "--format",
                    "raw",
                    "-o",
                    str(out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        samples = drain(stage, produced.input_events, timeout_s=max(600, args.events / 50))
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            print(where_time_goes(workdir / f"worker-{stage.suffix}.folded"), flush=True)
        result.per_core, result.per_core_intervals, result.wall = throughput(samples)
        result.late = total(scrape(stage.worker_port), "parcours_events_late_total")
        sink = wait_sink_caught_up(stage, timeout_s=600)
        result.stored_events = total(sink, 'parcours_sink_rows_total{table="events"}')
    finally:
        stage.stop()
    roles = {
        "input (3 topics)": stage.inputs,
        "journey": [stage.env["PARCOURS_STREAM_JOURNEY_TOPIC"]],
        "records": [stage.records],
        "dead letters": [stage.env["PARCOURS_STREAM_DLQ_TOPIC"]],
        "persons changelog": [f"{stage.app_id}-persons-changelog"],
        "devices changelog": [f"{stage.app_id}-devices-changelog"],
    }
    sizes = topic_bytes(bootstrap, [t for names in roles.values() for t in names])
    for role, names in roles.items():
        disk = [disk_bytes(data_dir, t) for t in names]
        result.written[role] = (
            sum(sizes.get(t, (0, 0))[0] for t in names),
            sum(sizes.get(t, (0, 0))[1] for t in names),
            None if None in disk else sum(d or 0 for d in disk),
        )
    show_written(result)
    print(
        f"worker: {samples[-1].completed:,.0f} events completed (valid + duplicates + rejected; "
        f"{result.late:,.0f} flagged late), {samples[-1].cpu:.1f} CPU s since its start: "
        f"{result.per_core:,.0f} events/s per worker core (median of 1 s intervals "
        f"{result.per_core_intervals:,.0f}); wall clock {result.wall:,.0f} events/s; "
        f"sink stored {result.stored_events:,.0f} event rows",
        flush=True,
    )
    return result


def paced_stage(
    bootstrap: str, args: argparse.Namespace, result: RoundResult, batch: int, workdir: Path
) -> None:
    stage = Stage(bootstrap, workdir, StreamSettings().partitions)
    rate = args.live_rate or max(20.0, 0.5 * result.wall)
    events = int(rate * args.live_seconds)
    # a simulated day that ended an hour ago: see the module docstring
    start = (datetime.now(UTC) - timedelta(hours=25)).replace(second=0, microsecond=0)
    config = SimulationConfig(
        customers=max(200, events // 4), days=1, start=start, seed=args.seed + 1000
    )
    print(
        f"paced: {rate:,.0f} events/s for {args.live_seconds:g}s on bench-*-{stage.suffix}, "
        "worker and sink running",
        flush=True,
    )
    marks: dict[str, tuple[float, float, dict[str, float]]] = {}

    def mark(name: str) -> None:
        """(wall time, worker CPU, sink metrics) now; from a timer thread for the first."""
        assert stage.worker is not None
        with contextlib.suppress(OSError):
            marks[name] = (time.monotonic(), cpu_seconds(stage.worker.pid), scrape(stage.sink_port))

    try:
        stage.start_sink()
        stage.start_worker()
        stage.wait_assigned(stage.app_id, stage.inputs)
        timer = threading.Timer(args.live_seconds / 4, mark, ("from",))
        timer.start()
        result.live = produce(
            bootstrap,
            stage.topics,
            config,
            limit=events,
            batch=batch,
            rate=rate,
            duration_s=args.live_seconds,
        )
        timer.join()
        mark("to")
        drain(stage, result.live.input_events, timeout_s=600)
        sink = wait_sink_caught_up(stage, timeout_s=600)
    finally:
        stage.stop()
    result.live_rate = rate
    everything = histogram(sink, LATENCY)
    result.everything_events = everything.get(math.inf, 0.0)
    result.everything = {q: quantile(q, everything) for q in (0.5, 0.99)}
    if "from" in marks and "to" in marks:
        (t0, cpu0, m0), (t1, cpu1, m1) = marks["from"], marks["to"]
        old, new = histogram(m0, LATENCY), histogram(m1, LATENCY)
        steady = {le: n - old.get(le, 0.0) for le, n in new.items()}
        result.steady_events = steady.get(math.inf, 0.0)
        result.steady = {q: quantile(q, steady) for q in (0.5, 0.99)}
        result.live_busy = (cpu1 - cpu0) / (t1 - t0)

    def show(name: str, n: float, qs: dict[float, tuple[float, float, float]]) -> str:
        p50, p99 = qs.get(0.5, (math.nan,) * 3), qs.get(0.99, (math.nan,) * 3)
        return (
            f"  {name}, {n:,.0f} event rows: p50 {p50[0]:.2f}s (bucket {p50[1]:g}-{p50[2]:g}s), "
            f"p99 {p99[0]:.2f}s (bucket {p99[1]:g}-{p99[2]:g}s)"
        )

    print(
        f"latency, produced -> ClickHouse insert acknowledged ({result.live.events:,} paced "
        f"events; worker busy {result.live_busy:.0%} of a core meanwhile):\n"
        + show(
            "steady state (inserted from 25% to 100% of the paced run)",
            result.steady_events,
            result.steady,
        )
        + "\n"
        + show(
            "every paced event (the last wait for the idle period)",
            result.everything_events,
            result.everything,
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events per round")
    parser.add_argument("--batch", type=int, default=20, help="events per message, round 2")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the raw-consume ceiling")
    parser.add_argument("--live-seconds", type=float, default=30.0, help="paced stage length")
    parser.add_argument(
        "--live-rate",
        type=float,
        default=None,
        help="default: half the backlog's worker rate (half capacity)",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--py-spy", default=None, help="path to py-spy: profile the backlog worker, print where"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    args = parser.parse_args()
    if args.events < 1 or args.batch < 2 or args.live_seconds <= 0:
        parser.error("--events must be >= 1, --batch >= 2 and --live-seconds > 0")

    broker: LocalKafka | None = None
    bootstrap = os.environ.get("PARCOURS_KAFKA_BOOTSTRAP")
    workdir = Path(tempfile.mkdtemp(prefix="parcours-kafka-bench-"))
    results: list[RoundResult] = []
    try:
        if not bootstrap:
            broker = LocalKafka()
            bootstrap = broker.start()
            print(f"started a local broker on {bootstrap}")
        print(
            f"{args.events:,} events per round; "
            f"PARCOURS_STREAM_IDLE_AFTER_S={StreamSettings().idle_after_s:g}; "
            f"{os.cpu_count()} cores"
        )
        for label, batch in (
            ("single-event messages", 1),
            (f"batched messages (--batch {args.batch})", args.batch),
        ):
            data_dir = broker.workdir / "data" if broker and broker.workdir else None
            result = backlog_stage(bootstrap, args, label, batch, workdir, data_dir)
            paced_stage(bootstrap, args, result, batch, workdir)
            results.append(result)
    finally:
        if broker is not None:
            broker.stop()
        if args.keep:
            print(f"kept {workdir} (worker and sink logs, chDB databases)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(results)


def written_ratio(r: RoundResult) -> str:
    if "input (3 topics)" not in r.written:
        return "-"
    _, size_in, disk_in = r.written["input (3 topics)"]
    out = [v for k, v in r.written.items() if not k.startswith("input")]
    text = f"{sum(v[1] for v in out) / size_in:.2f}x"
    if disk_in:
        text += f" (disk {sum(v[2] or 0 for v in out) / disk_in:.2f}x)"
    return text


def print_summary(results: list[RoundResult]) -> None:
    def rate(r: RoundResult, simulator: bool) -> str:
        p = r.produced
        return f"{p.events / (p.elapsed_s - (0 if simulator else p.simulator_s)):,.0f}"

    rows: list[tuple[str, list[str]]] = [
        ("produce, to the last delivery report", [rate(r, True) for r in results]),
        ("produce, without the simulator's time", [rate(r, False) for r in results]),
        ("raw consume ceiling (median)", [f"{r.ceiling_events_s:,.0f}" for r in results]),
        ("plain Faust agent per core (CPU)", [f"{r.plain_per_core:,.0f}" for r in results]),
        ("worker per core (CPU time)", [f"{r.per_core:,.0f}" for r in results]),
        (
            "worker / plain Faust agent (per core)",
            [f"{r.per_core / r.plain_per_core:.2f}x" for r in results],
        ),
        (
            "worker / raw consume ceiling",
            [f"{r.per_core / r.ceiling_events_s:.3f}x" for r in results],
        ),
        ("written by the worker / input bytes", [written_ratio(r) for r in results]),
        ("worker per core, median of 1 s", [f"{r.per_core_intervals:,.0f}" for r in results]),
        ("worker wall clock (1 worker)", [f"{r.wall:,.0f}" for r in results]),
        ("late events in the backlog (count)", [f"{r.late:,.0f}" for r in results]),
        ("paced rate", [f"{r.live_rate:,.0f}" for r in results]),
        ("worker busy while paced (of a core)", [f"{r.live_busy:.0%}" for r in results]),
        (
            "latency p50 (s), paced, steady",
            [f"{r.steady.get(0.5, (math.nan,))[0]:.2f}" for r in results],
        ),
        (
            "latency p99 (s), paced, steady",
            [f"{r.steady.get(0.99, (math.nan,))[0]:.2f}" for r in results],
        ),
        (
            "latency p50 (s), every paced event",
            [f"{r.everything.get(0.5, (math.nan,))[0]:.2f}" for r in results],
        ),
        (
            "latency p99 (s), every paced event",
            [f"{r.everything.get(0.99, (math.nan,))[0]:.2f}" for r in results],
        ),
    ]
    print("\n== summary (events/s unless said)")
    print(f"{'':40}" + "".join(f"{r.label[:28]:>30}" for r in results))
    for name, cells in rows:
        print(f"{name:40}" + "".join(f"{c:>30}" for c in cells))


if __name__ == "__main__":
    main()
