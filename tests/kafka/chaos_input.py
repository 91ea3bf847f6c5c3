"""The chaos test's input: simulated traffic with hostile messages and re-sends, as bytes.

Intuition: the stream and the embedded runner must see the very same bytes, so the input is
built once as a list of Kafka messages (topic, key, value bytes) and handed to both: produced to
the broker as is, and fed to the embedded runner message by message. The simulator gives the
journeys, its re-sends (duplicates) and its usual malformed messages; hostile messages the
simulator does not make (bytes that are not UTF-8, UTF-16, binary, nesting beyond the limit and
beyond what a JSON library can write again, NUL and lone surrogates, absurd numbers) are
spread evenly over the input until malformed messages are the requested share of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from streams.simulate import SimulationConfig
from streams.simulate.generator import SimulatedMessage, generate

#: The simulator misroutes some messages to `<topic>-legacy` (a topic no worker reads);
#: here each one is replaced by a hostile message on the real topic instead.
_MISROUTED = "-legacy"


@dataclass(frozen=True, slots=True)
class ChaosMessage:
    topic: str  # canonical: clickstream, app-events, store-events
    key: bytes | None
    value: bytes
    malformed: bool = False
    duplicate: bool = False


@dataclass
class ChaosInput:
    messages: list[ChaosMessage] = field(default_factory=list)
    events: int = 0
    hostile: int = 0

    @property
    def malformed(self) -> int:
        return sum(m.malformed for m in self.messages)

    @property
    def duplicates(self) -> int:
        return sum(m.duplicate for m in self.messages)


#: Elements of the hostile array of non-events (each is a rejection of its own).
HOSTILE_ARRAY = 20


def _event(n: int, device: str, **extra: object) -> dict[str, object]:
    return {
        "event_id": f"hostile-{n}",
        "event_type": "page_view",
        "occurred_at": "2026-01-05T10:00:00Z",
        "device_id": device,
        "properties": {"page": "/p"},
        **extra,
    }


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"1" + b"}" * (depth - 1)


#: Hostile message values, each made from a counter and a device id. Every one breaks the
#: contract: none of them may end up as a stored event.
HOSTILE: list[Callable[[int, str], bytes]] = [
    # a Latin-1 page name: the bytes are not UTF-8
    lambda n, d: orjson.dumps(_event(n, d)).replace(b'"/p"', b'"/caf\xe9"'),
    # binary noise
    lambda n, d: bytes([0xFF, 0xFE, 0x00, n % 256, 0x80, 0xC3, 0x28]) + d.encode(),
    # a whole event in UTF-16 (with its byte order mark)
    lambda n, d: orjson.dumps(_event(n, d)).decode().encode("utf-16"),
    # properties nested 100 levels deep: beyond the documented limit of 64
    lambda n, d: orjson.dumps(_event(n, d)).replace(b'{"page":"/p"}', _nested(100)),
    # nested 500 levels: parsed, but more than a JSON library writes back (issue 12)
    lambda n, d: orjson.dumps(_event(n, d)).replace(b'{"page":"/p"}', _nested(500)),
    # a NUL byte and a lone surrogate in the event id
    lambda n, d: orjson.dumps(_event(n, d)).replace(b'"hostile-', b'"\\u0000\\ud800-'),
    # a purchase of 1.7e308 (a session's revenue would be inf)
    lambda n, d: orjson.dumps(
        _event(
            n,
            d,
            event_type="purchase",
            properties={"transaction_id": f"t{n}", "value": 1.7e308, "currency": "EUR"},
        )
    ),
    # an array of non-events, and a truncated message
    lambda n, d: b"[" + b",".join([b"1"] * HOSTILE_ARRAY) + b"]",
    lambda n, d: orjson.dumps(_event(n, d))[:-7],
]


_ARRAY = 7  # the index in HOSTILE of the array of non-events


def build_input(
    events: int, malformed_share: float, duplicate_rate: float, seed: int
) -> ChaosInput:
    """About `events` events (a message holding an array counts each element), of which
    `malformed_share` of the messages are malformed; the simulator's re-sends at
    `duplicate_rate`. The simulated day is cut where the count is reached."""
    config = SimulationConfig(
        customers=max(100, events // 8),
        days=1,
        seed=seed,
        malformed_rate=malformed_share / 2,
        duplicate_rate=duplicate_rate,
        late_rate=0,  # see test_worker_recovery.py: sparse partitions judge very late events apart
    )
    simulated: list[ChaosMessage] = []
    counted = malformed = 0
    hostile = 0
    for msg in generate(config):
        if msg.topic.endswith(_MISROUTED):
            continue  # counted below among the hostile messages to add
        simulated.append(_as_bytes(msg))
        counted += len(msg.payload) if isinstance(msg.payload, list) else 1
        malformed += msg.malformed
        # hostile messages to add so that malformed ones are `malformed_share` of all
        hostile = max(
            0, math.ceil((malformed_share * len(simulated) - malformed) / (1 - malformed_share))
        )
        if counted + _elements(hostile) >= events:
            break
    result = ChaosInput(hostile=hostile)
    every = len(simulated) // max(1, hostile) if hostile else len(simulated) + 1
    made = 0
    for i, msg in enumerate(simulated):
        result.messages.append(msg)
        if made < hostile and i % every == every - 1:
            result.messages.append(_hostile(made, msg))
            made += 1
    while made < hostile:
        result.messages.append(_hostile(made, simulated[-1]))
        made += 1
    result.events = counted + _elements(hostile)
    return result


def _elements(hostile: int) -> int:
    """Events in the first `hostile` hostile messages (the array counts each element)."""
    arrays = sum(1 for n in range(hostile) if n % len(HOSTILE) == _ARRAY)
    return hostile + arrays * (HOSTILE_ARRAY - 1)


def _hostile(n: int, beside: ChaosMessage) -> ChaosMessage:
    device = (beside.key or b"d-hostile").decode("utf-8", "replace")
    value = HOSTILE[n % len(HOSTILE)](n, device)
    return ChaosMessage("clickstream", beside.key, value, malformed=True)


def _as_bytes(msg: SimulatedMessage) -> ChaosMessage:
    value = msg.payload if isinstance(msg.payload, bytes) else orjson.dumps(msg.payload)
    return ChaosMessage(msg.topic, msg.key, value, msg.malformed, msg.duplicate)
