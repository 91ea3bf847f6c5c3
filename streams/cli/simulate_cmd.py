"""`parcours simulate`: seeded omnichannel traffic, as an ingest JSON-lines file or into Kafka.

`--to kafka` streams the simulator's messages straight into the configured input topics: the
generator is lazy (memory holds the visits in flight, not the period), so nothing is written
to disk first and `--duration` can stop a large simulation at any point.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streams.cli.app import app
from streams.simulate import (
    SimulationConfig,
    SimulationError,
    SimulationStats,
    generate,
    parse_incident,
    write_ingest_file,
)
from streams.simulate.config import DEFAULT_START
from streams.simulate.output import count_message
from streams.worker.produce import OutgoingItem, ProduceStats


class Target(StrEnum):
    file = "file"
    kafka = "kafka"


_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """`30s`, `5m`, `1h30m`, `250ms` or a bare number of seconds -> seconds (> 0).

    A few lines rather than a dependency: these units are all a producer run needs, and a
    ValueError naming the accepted forms is clearer than a generic parse failure.
    """
    spec = text.strip().lower()
    try:
        seconds = float(spec)
    except ValueError:
        if not _DURATION.fullmatch(spec):
            raise ValueError(
                f"{text!r} is not a duration: use e.g. 30s, 5m, 1h30m, 250ms or a number of seconds"
            ) from None
        seconds = sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(spec))
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be positive and finite")
    return seconds


def _duration_option(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def kafka_topic(simulated: str, topics: dict[str, str]) -> str:
    """The Kafka topic for a simulated message. The simulator names the contract's canonical
    topics, and `<canonical>-legacy` for its misrouted noise; both follow the configured names
    (`PARCOURS_STREAM_*_TOPIC`) so that renamed or per-test topics keep the noise next to them."""
    if simulated in topics:
        return topics[simulated]
    base, _, suffix = simulated.rpartition("-")
    if base in topics:
        return f"{topics[base]}-{suffix}"
    return simulated


def simulated_items(
    config: SimulationConfig, topics: dict[str, str], stats: SimulationStats
) -> Iterator[OutgoingItem]:
    """The simulation as producer items, lazily, counting into `stats` what has been taken.

    The simulator's own key is kept (device_id, else customer_id; it also keys the malformed
    messages whose value has no usable id), and malformed messages are marked not packable so
    that batching never merges them with valid events or repairs them.
    """
    for msg in generate(config):
        count_message(stats, msg)
        yield OutgoingItem(
            kafka_topic(msg.topic, topics), msg.payload, msg.key, packable=not msg.malformed
        )


def _input_topic_names() -> dict[str, str]:
    """canonical topic -> configured topic name."""
    from streams.settings import StreamSettings

    return {canonical: name for name, canonical in StreamSettings().input_topics().items()}


@app.command()
def simulate(
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 5_000,
    days: Annotated[float, typer.Option(min=0.01, help="Length of the period, in days.")] = 7.0,
    start: Annotated[
        str, typer.Option(help="Start of the period (ISO 8601).")
    ] = DEFAULT_START.isoformat(),
    seed: Annotated[int, typer.Option(help="Same seed, same output.")] = 1,
    incident: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND:START:END[:CHANNEL], e.g. payment_outage:+3d10h:+3d14h (repeatable)."
        ),
    ] = None,
    malformed_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.005,
    duplicate_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.005,
    batch_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.05,
    out: Annotated[str, typer.Option(help="Output file, or - for stdout (--to file).")] = "-",
    to: Annotated[
        Target,
        typer.Option(
            help="file: ingest JSON lines (--out); kafka: the input topics (PARCOURS_KAFKA_BOOTSTRAP)."
        ),
    ] = Target.file,
    rate: Annotated[
        float | None, typer.Option(help="Cap on events/s sent to Kafka (--to kafka).")
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            parser=_duration_option,
            metavar="DURATION",
            help="Stop sending after this wall-clock time, e.g. 30s, 5m, 1h30m (--to kafka).",
        ),
    ] = None,
    batch: Annotated[
        int,
        typer.Option(min=1, help="Pack up to N events of one device per message (--to kafka)."),
    ] = 1,
) -> None:
    """Simulate realistic omnichannel traffic (with friction, incidents and noise) into an
    ingest JSON-lines file or straight into the Kafka input topics."""
    err = Console(stderr=True, soft_wrap=True)
    if to is Target.kafka and out != "-":
        raise typer.BadParameter(
            "is for --to file; --to kafka sends to the input topics", param_hint="--out"
        )
    if to is Target.file:
        given = [name for name, v in (("--rate", rate), ("--duration", duration)) if v is not None]
        given += ["--batch"] if batch != 1 else []
        if given:
            raise typer.BadParameter("only with --to kafka", param_hint=", ".join(given))
    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        raise typer.BadParameter(
            "must be a positive number of events per second", param_hint="--rate"
        )
    try:
        begin = datetime.fromisoformat(start)
        config = SimulationConfig(
            customers=customers,
            days=days,
            start=begin,
            seed=seed,
            incidents=tuple(parse_incident(text, begin) for text in incident or ()),
            malformed_rate=malformed_rate,
            duplicate_rate=duplicate_rate,
            batch_rate=batch_rate,
        )
    except (SimulationError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if to is Target.kafka:
        _simulate_to_kafka(err, config, rate=rate, duration_s=duration, batch=batch)
        return
    stats = write_ingest_file(config, sys.stdout.buffer if out == "-" else Path(out))
    err.print(
        f"simulated {stats.events:,} events in {stats.lines:,} lines "
        f"({stats.malformed:,} malformed, {stats.duplicates:,} duplicated) -> {out}"
    )


def _simulate_to_kafka(
    err: Console,
    config: SimulationConfig,
    *,
    rate: float | None,
    duration_s: float | None,
    batch: int,
) -> None:
    from streams.cli.stream_cmds import _bootstrap
    from streams.worker.produce import KafkaEventProducer

    topics = _input_topic_names()
    producer = KafkaEventProducer(_bootstrap())
    simulated = SimulationStats()
    interrupted = False
    try:
        producer.send_batched(
            simulated_items(config, topics, simulated),
            batch=batch,
            rate=rate,
            duration_s=duration_s,
        )
    except KeyboardInterrupt:  # a paced run is often stopped by hand: still report it
        interrupted = True
    stats = producer.flush()
    inputs = set(topics.values())
    outside = sum(n for t, n in simulated.by_topic.items() if kafka_topic(t, topics) not in inputs)
    _print_summary(err, stats, simulated, outside, interrupted, topics)
    if stats.failed:
        raise typer.Exit(1)


def _print_summary(
    err: Console,
    stats: ProduceStats,
    simulated: SimulationStats,
    outside: int,
    interrupted: bool,
    topics: dict[str, str],
) -> None:
    stop = (
        "interrupted"
        if interrupted
        else "stopped by --duration"
        if stats.deadline_reached
        else "simulation complete"
    )
    err.print(
        f"simulated {simulated.events:,} events in {simulated.lines:,} messages "
        f"({simulated.malformed:,} malformed, {simulated.duplicates:,} duplicated; {stop})",
        markup=False,
    )
    per_s = stats.events / stats.elapsed_s if stats.elapsed_s > 0 else 0.0
    err.print(
        f"produced {stats.messages:,} messages ({stats.events:,} events) in {stats.elapsed_s:.2f}s "
        f"({per_s:,.0f} events/s) to {', '.join(topics.values())}: "
        f"{stats.delivered:,} delivered, {stats.failed:,} failed",
        markup=False,
    )
    if outside:
        err.print(
            f"{outside:,} simulated messages went to <topic>-legacy topics on purpose "
            "(misrouted input nobody consumes)",
            markup=False,
        )
    for error, count in sorted(stats.errors.items()):
        err.print(f"  {count:,} failed: {error}", markup=False)
