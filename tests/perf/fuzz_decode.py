"""Fuzz `decode` with a million hostile inputs: throughput, worst case, and escapes (must be 0).

Inputs (seeded, reproducible): random bytes, valid events with a few byte edits (invalid UTF-8,
NUL, lone-surrogate escapes, cut brackets), events with a field replaced by an odd value or an
odd timestamp, properties nested up to 1,100 levels, arrays of up to 5,000 non-events, and
arrays of mutated events. An *escape* is an exception out of `decode`, or an input that only
the decoder's last-resort guard caught ("undecodable input": a bug the contract did not name).

    .venv/bin/python tests/perf/fuzz_decode.py [--inputs 1000000] [--seed 12]

Figures, not assertions (shared machines), except that the script exits 1 on any escape.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import orjson

from schemas import Rejection, decode

NOW = datetime(2026, 11, 23, tzinfo=UTC)
TOPICS = ["clickstream", "app-events", "store-events", "other"]
VALID = {
    "event_id": "e1",
    "event_type": "purchase",
    "occurred_at": "2026-11-02T10:00:00Z",
    "device_id": "d1",
    "customer_id": "c1",
    "properties": {"transaction_id": "t1", "value": 12.5, "currency": "EUR", "page": "/p"},
}
VALID_BYTES = orjson.dumps(VALID)
ODD = [
    None,
    0,
    -1,
    2**63 - 1,
    1.7e308,
    -0.0,
    "",
    "\x00",
    "é" * 200,
    [],
    {},
    [[[[]]]],
    "2026-11-02t10:00:00z",
    "2016-12-31T23:59:60Z",
    "2026-02-30T10:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999999Z",
    "2026-11-02 10:00:00Z",
    "2026-11-02T10:00:00+23:59",
    "１２３４-11-02T10:00:00Z",
]
EDITS = [b"\xff", b"\xed\xa0\x80", b"\x00", b"\\ud800", b"", b"]", b"{", b'"', b"\xc3"]


def _mutated(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        doc = dict(VALID)
        doc[rng.choice(list(VALID))] = rng.choice(ODD)
        raw = bytearray(orjson.dumps(doc))
    else:
        raw = bytearray(VALID_BYTES)
    for _ in range(rng.randint(0, 3)):
        at = rng.randint(0, len(raw))
        raw[at : at + rng.randint(0, 2)] = rng.choice(EDITS)
    return bytes(raw)


def _deep(rng: random.Random) -> bytes:
    depth = rng.randint(1, 1100)
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    return VALID_BYTES[:-2] + b',"x":' + nested + b"}}"


def _input(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.25:
        return rng.randbytes(rng.randint(0, 300))
    if kind < 0.70:
        return _mutated(rng)
    if kind < 0.80:
        return _deep(rng)
    if kind < 0.85:
        return b"[" + b",".join([b"1"] * rng.randint(0, 5000)) + b"]"
    return b"[" + b",".join(_mutated(rng) for _ in range(rng.randint(1, 8))) + b"]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    escapes: list[tuple[bytes, str]] = []
    reasons: Counter[str] = Counter()
    worst, worst_input = 0.0, b""
    decoding = 0.0
    events = 0
    for _ in range(args.inputs):
        raw, topic = _input(rng), rng.choice(TOPICS)
        started = time.perf_counter()
        try:
            results = decode(raw, topic, now=NOW)
        except Exception as exc:  # an escape: counted, shown below
            escapes.append((raw, repr(exc)))
            continue
        spent = time.perf_counter() - started
        decoding += spent
        if spent > worst:
            worst, worst_input = spent, raw
        for result in results:
            if isinstance(result, Rejection):
                reasons[str(result.reason)] += 1
                if result.message.startswith("undecodable input"):
                    escapes.append((raw, result.message))
            else:
                events += 1
    print(f"inputs: {args.inputs:,} (seed {args.seed})")
    print(f"inputs/s: {args.inputs / decoding:,.0f} (decode time only: {decoding:.1f} s)")
    print(f"worst time per input: {worst * 1000:.2f} ms ({len(worst_input):,} bytes)")
    print(
        f"events: {events:,}; rejections: {sum(reasons.values()):,} {dict(reasons.most_common())}"
    )
    print(f"escapes: {len(escapes)}")
    for raw, error in escapes[:5]:
        print(f"  {raw[:80]!r}: {error}")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
