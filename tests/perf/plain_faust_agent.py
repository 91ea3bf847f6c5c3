"""The baseline of tests/perf/kafka_e2e.py: a plain faust-streaming agent on the input topics.

    python tests/perf/plain_faust_agent.py BOOTSTRAP EXPECTED_EVENTS TOPIC [TOPIC ...]

What any Faust application pays at least: Faust's consumer, stream and acks, orjson per
message and a dict counter per event type (a message may hold a JSON array of events). It
prints one JSON line, {"events", "cpu_s", "wall_s"}, counted from the first message to the one
that completes EXPECTED_EVENTS, and exits. CPU time is the whole process's (every thread, as
the worker's is measured from /proc), so the two are compared per core on the same footing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid

import faust
import orjson


def main() -> None:
    bootstrap, expected, topics = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    app = faust.App(
        f"bench-plain-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="plain-faust-"),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=1,
    )
    source = app.topic(*topics, key_type=bytes, value_type=bytes, value_serializer="raw")
    counts: dict[str, int] = {}
    seen = [0]
    started = [0.0, 0.0]

    @app.agent(source)
    async def count(values: faust.StreamT[bytes]) -> None:
        async for value in values:
            if not seen[0]:
                started[:] = [time.process_time(), time.perf_counter()]
            try:
                data = orjson.loads(value)
            except orjson.JSONDecodeError:
                data = None
            for event in data if isinstance(data, list) else [data]:
                kind = event.get("event_type") if isinstance(event, dict) else None
                counts[str(kind)] = counts.get(str(kind), 0) + 1
                seen[0] += 1
            if seen[0] >= expected:
                cpu, wall = time.process_time() - started[0], time.perf_counter() - started[1]
                line = {"events": seen[0], "cpu_s": cpu, "wall_s": wall}
                # Straight to the file descriptor: Faust redirects sys.stdout to its logger.
                os.write(1, orjson.dumps(line) + b"\n")
                os._exit(0)  # the figure is out; no orderly shutdown to wait for

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main()
