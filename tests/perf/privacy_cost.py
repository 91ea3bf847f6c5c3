"""Benchmark: what privacy at decode costs (scrubbing, pseudonymisation, suppression).

Runs over the same simulated messages as tests/perf/core_throughput.py (the simulator puts no
personal data in properties, so this is the cost paid on ordinary traffic: the scan that finds
nothing), alternating the variants in each round so machine noise falls on all of them:

- decode alone, then decode + the filter with scrubbing (the default), + pseudonymisation,
  + a suppression list of 1,000 subjects (every event's ids hashed and looked up);
- decode + the whole journey core, without and with the default filter (what a run pays);
- streaming mode's checks against a list of 1,000 suppressed subjects, per event of that
  run: the journey stage's check of each journey input (the event as plain data), and the
  sink's check of each record, as a share of the CPU the decode + core run took;
- a worker's erasure of one customer from a journey partition holding the run's persons
  (state still open: the run is not finished): finding what names her, then serialising the
  partition whole for its changelog (the Kafka write and the purge are not in it).

Prints events/s per core (CPU time, median of the rounds) and each variant's ratio to its
baseline, side by side. A second table scrubs text that does hold emails and phone numbers.

    .venv/bin/python tests/perf/privacy_cost.py [--events 200000] [--repeat 3]

Figures, not assertions: the machine is shared, read medians and ratios from one run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from schemas import Event, decode
from streams.core.codec import message_to_dict, person_to_dict
from streams.core.config import JourneyConfig
from streams.core.identity import Routed, anonymous_person
from streams.core.pipeline import JourneyPipeline
from streams.core.records import Record
from streams.core.watermarks import WatermarkTracker
from streams.privacy.keys import PrivacyKey
from streams.privacy.policy import PrivacyFilter
from streams.privacy.scrub import Scrubber
from streams.privacy.suppression import forget_suppressed, item_suppressed, record_suppressed
from streams.worker.checkpoint import JourneyPartition, full_commit
from tests.perf.core_throughput import simulated_messages

Messages = list[tuple[str, bytes]]
KEY = PrivacyKey("benchmark key")


def _filters() -> dict[str, PrivacyFilter | None]:
    suppressed = [KEY.subject("customer", f"gone-{i}") for i in range(1000)]
    return {
        "decode": None,
        "decode + scrub (default)": PrivacyFilter(KEY, scrubber=Scrubber()),
        "decode + scrub + pseudonymise": PrivacyFilter(KEY, scrubber=Scrubber(), pseudonymise=True),
        "decode + scrub + 1,000 suppressed": PrivacyFilter(
            KEY, scrubber=Scrubber(), suppressed=suppressed
        ),
    }


def _decode(messages: Messages, privacy: PrivacyFilter | None) -> tuple[float, int]:
    gc.collect()
    events = 0
    cpu = time.process_time()
    for topic, value in messages:
        results = decode(value, topic)
        if privacy is not None:
            results = privacy.apply(results)
        events += len(results)
    return time.process_time() - cpu, events


def _core(messages: Messages, privacy: PrivacyFilter | None) -> tuple[float, int]:
    gc.collect()
    pipeline = JourneyPipeline(JourneyConfig())
    events = 0
    cpu = time.process_time()
    for topic, value in messages:
        results = decode(value, topic)
        if privacy is not None:
            results = privacy.apply(results)
        for result in results:
            if isinstance(result, Event):
                events += 1
                pipeline.process(result, 0)
    pipeline.finish()
    return time.process_time() - cpu, events


def _streaming_inputs(messages: Messages) -> tuple[list[dict[str, object]], list[Record]]:
    """The journey inputs (as the journey stage reads them) and the records of one run."""
    items: list[dict[str, object]] = []
    records: list[Record] = []
    pipeline = JourneyPipeline(JourneyConfig())
    for topic, value in messages:
        for result in decode(value, topic):
            if isinstance(result, Event):
                person = result.customer_id or anonymous_person(result.device_id or "")
                items.append(message_to_dict(Routed(person, result, 0, 0, "t/0", 0)))
                records.extend(pipeline.process(result, 0))
    records.extend(pipeline.finish())
    return items, records


def _checks(
    items: list[dict[str, object]], records: list[Record], privacy: PrivacyFilter
) -> tuple[float, float]:
    """CPU seconds of the journey-input checks and of the sink's record checks."""
    gc.collect()
    cpu = time.process_time()
    for item in items:
        item_suppressed(privacy, item)
    journey = time.process_time() - cpu
    cpu = time.process_time()
    for record in records:
        record_suppressed(privacy, record)
    return journey, time.process_time() - cpu


def _erasure(messages: Messages) -> tuple[int, float, float]:
    """Persons held, CPU seconds to clean them of one customer, and to write them whole."""
    logic = JourneyPipeline(JourneyConfig(), shard="journey-0")
    for topic, value in messages:
        for result in decode(value, topic):
            if isinstance(result, Event):
                logic.process(result, 0)
    logic.touched = set()
    customer = next(p for p in sorted(logic.persons) if not p.startswith("anon:"))
    privacy = PrivacyFilter(KEY, suppressed=[KEY.subject("customer", customer)])
    part = JourneyPartition(0, WatermarkTracker(), logic)
    held = len(logic.persons)
    gc.collect()
    cpu = time.process_time()
    plain = {pid: person_to_dict(state) for pid, state in logic.persons.items()}
    kept, _, _ = forget_suppressed(privacy, plain, {})
    gone = set(plain) - set(kept)
    for pid in gone:
        del logic.persons[pid]
    logic.reschedule()
    clean = time.process_time() - cpu
    cpu = time.process_time()
    full_commit(part, gone, kept)
    return held, clean, time.process_time() - cpu


def _table(title: str, rates: dict[str, list[float]], baseline: str) -> None:
    print(f"\n{title}")
    base = statistics.median(rates[baseline])
    print(f"{'variant':<40}{'events/s per core':>20}{'vs ' + baseline:>34}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<40}{median:>20,.0f}{median / base:>34.3f}")


def _scrub_text(repeat: int) -> None:
    scrubber = Scrubber()
    texts = {
        "no digit, no @ (fast path)": "red running shoes for the weekend",
        "digits, nothing personal": "/p/shoes-42?size=9&color=red&page=2",
        "an email and a phone": "mail anna.martin@example.fr or call +33 6 12 34 56 78",
    }
    print(f"\n{'scrubbing one string':<40}{'strings/s':>20}")
    for name, text in texts.items():
        times = []
        for _ in range(max(repeat, 1)):
            start = time.process_time()
            for _ in range(100_000):
                scrubber.text(text)
            times.append(time.process_time() - start)
        print(f"{name:<40}{100_000 / statistics.median(times):>20,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    messages = simulated_messages(args.events, args.seed)
    filters = _filters()
    decode_rates: dict[str, list[float]] = {name: [] for name in filters}
    core_rates: dict[str, list[float]] = {"decode + core": [], "decode + scrub + core": []}
    items, records = _streaming_inputs(messages)
    suppressing = filters["decode + scrub + 1,000 suppressed"]
    assert suppressing is not None
    core_seconds: list[float] = []
    check_seconds: dict[str, list[float]] = {"journey inputs": [], "sink records": []}
    for _ in range(args.repeat):
        journey, sink = _checks(items, records, suppressing)
        check_seconds["journey inputs"].append(journey)
        check_seconds["sink records"].append(sink)
        for name, privacy in filters.items():
            seconds, events = _decode(messages, privacy)
            decode_rates[name].append(events / seconds)
        for name, privacy in (
            ("decode + core", None),
            ("decode + scrub + core", filters["decode + scrub (default)"]),
        ):
            seconds, events = _core(messages, privacy)
            core_rates[name].append(events / seconds)
            if privacy is None:
                core_seconds.append(seconds)
    print(f"{len(messages):,} messages, {args.repeat} rounds (median), CPU time")
    _table("Decode with privacy", decode_rates, "decode")
    _table("Decode + journey core", core_rates, "decode + core")
    core = statistics.median(core_seconds)
    print(f"\nStreaming checks, 1,000 suppressed ({len(items):,} inputs, {len(records):,} records)")
    print(f"{'check':<40}{'per second':>20}{'CPU vs decode + core':>34}")
    for name, seconds in check_seconds.items():
        median = statistics.median(seconds)
        count = len(items) if name == "journey inputs" else len(records)
        print(f"{name:<40}{count / median:>20,.0f}{median / core:>34.3f}")
    erasures = [_erasure(messages) for _ in range(args.repeat)]
    held = erasures[0][0]
    clean = statistics.median(e[1] for e in erasures)
    write = statistics.median(e[2] for e in erasures)
    print(f"\nA worker's erasure of one customer, partition of {held:,} persons (CPU, median)")
    print(f"{'step':<40}{'seconds':>20}{'persons/s':>34}")
    print(f"{'find what names her, drop it':<40}{clean:>20.3f}{held / clean:>34,.0f}")
    print(f"{'serialise the partition whole':<40}{write:>20.3f}{held / write:>34,.0f}")
    _scrub_text(args.repeat)


if __name__ == "__main__":
    main()
