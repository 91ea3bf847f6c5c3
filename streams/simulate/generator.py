"""The traffic generator: population -> scheduled visits -> messages in arrival order.

Intuition: every visit's start time is drawn up front (cheap: a few per customer), sorted, and
visits are expanded into events one at a time in start order. Their messages wait in a heap
keyed by arrival time and leave it once no visit still to come can produce anything earlier,
so memory holds the visits in flight, not the week. Noise (out-of-order and late arrivals,
duplicates, batches, malformed input) is applied to messages on their way into the heap.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.simulate import stories as st
from streams.simulate.config import SimulationConfig
from streams.simulate.population import Customer, build_population

TOPICS = {"web": "clickstream", "app": "app-events", "store": "store-events"}
#: Relative traffic per hour of day (evening peak) and per weekday (weekend boost).
HOURLY = [
    1,
    0.5,
    0.3,
    0.2,
    0.2,
    0.3,
    0.8,
    1.5,
    2.5,
    3,
    3.2,
    3.5,
    4,
    3.6,
    3.3,
    3.3,
    3.6,
    4.2,
    5,
    5.8,
    6,
    5,
    3.5,
    2,
]
WEEKDAY = [1.0, 0.95, 1.0, 1.05, 1.15, 1.4, 1.3]


@dataclass(frozen=True, slots=True)
class SimulatedMessage:
    """One Kafka message: `payload` is a JSON-able event or array, or raw (malformed) bytes."""

    topic: str
    key: bytes | None
    payload: object | bytes
    #: Deliberately broken (the pipeline must reject it) / a re-send of an earlier message.
    malformed: bool = False
    duplicate: bool = False


@dataclass
class SimulationStats:
    lines: int = 0
    events: int = 0
    malformed: int = 0
    duplicates: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)


def _iso(ts_ms: int, offset_h: int) -> str:
    at = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    if offset_h:
        return at.astimezone(_TZ[offset_h]).isoformat(timespec="milliseconds")
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_TZ = {h: __import__("datetime").timezone(timedelta(hours=h)) for h in (1, 2, -5)}


def _visit_starts(config: SimulationConfig, rng: random.Random) -> list[tuple[int, int, int]]:
    """(start_ms, customer index, visit number), sorted: the whole schedule, a few ints a visit."""
    start_ms = int(config.start.timestamp() * 1000)
    span_ms = int(config.days * 86_400_000)
    weights = [
        HOURLY[h] * WEEKDAY[(config.start.weekday() + d) % 7]
        for d in range(math.ceil(config.days))
        for h in range(24)
    ]
    cumulative = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    mean = config.sessions_per_week * config.days / 7
    starts: list[tuple[int, int, int]] = []
    for c in range(config.customers):
        n = _poisson(rng, mean)
        for k in range(n):
            hour = _bisect(cumulative, rng.random() * total)
            offset = hour * 3_600_000 + rng.randrange(3_600_000)
            if offset < span_ms:
                starts.append((start_ms + offset, c, k))
    starts.sort()
    return starts


def _bisect(cumulative: list[float], x: float) -> int:
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _online_visit(
    c: Customer, start: int, rng: random.Random, config: SimulationConfig
) -> list[st.Step]:
    use_app = c.app_device is not None and rng.random() < 0.45
    shared = c.shared_tablet is not None and rng.random() < 0.3
    if shared:
        assert c.shared_tablet is not None
        channel, device, dtype = "app", c.shared_tablet, "tablet"
    elif use_app:
        assert c.app_device is not None
        channel, device, dtype = "app", c.app_device, "mobile"
    else:
        i = rng.randrange(len(c.web_devices))
        channel, device, dtype = "web", c.web_devices[i], c.web_types[i]
    logged = device in c.logged_in and not shared
    v = st.Visit(
        rng, start, channel, device, c.customer_id if logged else None, dtype, config.incidents
    )
    if shared:  # a family tablet: everyone logs in as themselves (a login names its customer)
        v.customer = c.customer_id
        v.emit("login", method="password")
        logged = True
    st.land(v)
    if rng.random() < 0.30:
        if rng.random() < 0.15:
            st.quick_back(v)
        return v.steps
    st.browse(v, rng.randint(1, 8))
    if rng.random() < 0.18:
        st.search(v, fruitless=rng.random() < 0.25)
    if rng.random() < 0.03:
        st.rage(v)
    bug = v.incident_factor("checkout_bug")
    if rng.random() < 0.015 * (bug or 1.0) or (bug == 0.0 and rng.random() < 0.3):
        v.emit(
            "exception", description="ProductView: image carousel failed", fatal=rng.random() < 0.3
        )
    if rng.random() < 0.05:
        v.emit("apply_coupon", code=rng.choice(["XMAS", "WELCOME10", "VIP"]))
    if rng.random() >= 0.25 + 0.5 * c.buyer:
        if not logged and rng.random() < 0.15:
            _login(v, c)
        return v.steps
    value = st.add_to_cart(v)
    if rng.random() < 0.35:
        return v.steps
    if not logged:
        _login(v, c)
    result = st.checkout(v, value, c)
    if result == "abandoned" and c.has_card and rng.random() < 0.35:
        store = st.Visit(
            rng,
            v.now + rng.randint(10, 50) * 60_000,
            "store",
            None,
            c.customer_id,
            "pos",
            config.incidents,
        )
        store.emit("store_visit", store_id=rng.choice(st.STORES))
        store.wait(60, 600)
        st.store_receipt(store, value)
        v.steps.extend(store.steps)
    elif result == "purchased" and rng.random() < 0.1:
        v.wait(30, 300)
        v.emit("survey_response", kind="csat", score=rng.randint(1, 5), touchpoint="checkout")
    return v.steps


def _login(v: st.Visit, c: Customer) -> None:
    v.wait(5, 30)
    v.customer = c.customer_id
    v.emit("sign_up" if v.rng.random() < 0.05 else "login", method="password")
    if v.device:
        c.logged_in.add(v.device)


def _store_visit(
    c: Customer, start: int, rng: random.Random, config: SimulationConfig
) -> list[st.Step]:
    if c.has_card:
        v = st.Visit(rng, start, "store", None, c.customer_id, "pos", config.incidents)
        v.emit("store_visit", store_id=rng.choice(st.STORES))
    else:  # no loyalty card: the receipt is all we see, from the till (st.store_receipt)
        rng.getrandbits(48)  # once a per-receipt device id: drawn still, so seeds keep their output
        v = st.Visit(rng, start, "store", None, None, "pos", config.incidents)
    if rng.random() < 0.6 or not c.has_card:
        v.wait(120, 1800)
        st.store_receipt(v, round(rng.uniform(8, 250), 2))
        if c.has_card:
            _survey(v, c, "nps", "store", 0.08)
    return v.steps


#: Scores as retail surveys tend to answer: NPS mostly promoters and passives, a tail of
#: detractors; CES (1 very easy .. 7 very hard) mostly easy.
_SCORES = {
    "nps": ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), (1, 1, 1, 2, 2, 4, 6, 12, 21, 25, 25)),
    "ces": ((1, 2, 3, 4, 5, 6, 7), (20, 30, 20, 12, 9, 6, 3)),
}


def _survey(v: st.Visit, c: Customer, kind: str, touchpoint: str, rate: float) -> None:
    """A satisfaction survey after some visits (NPS after a loyalty receipt in store, CES
    after a support contact), sent `rate` of the time a few minutes later. Drawn from a
    generator of its own, seeded by the visit, so the visit's random stream (and every other
    seeded output) is the same as before surveys were simulated."""
    rng = random.Random(f"survey:{kind}:{c.customer_id}:{v.now}")
    if rng.random() >= rate:
        return
    values, weights = _SCORES[kind]
    visit_end, v.now = v.now, v.now + rng.randint(60, 900) * 1000  # the visit's last step
    v.emit(
        "survey_response", kind=kind, score=rng.choices(values, weights)[0], touchpoint=touchpoint
    )
    v.now = visit_end  # what follows the visit is timed from the visit, as before


def _support(
    c: Customer, start: int, rng: random.Random, config: SimulationConfig
) -> list[st.Step]:
    device = c.web_devices[0]
    v = st.Visit(rng, start, "web", device, c.customer_id, c.web_types[0], config.incidents)
    c.logged_in.add(device)
    st.land(v)
    v.wait(10, 60)
    v.emit("support_contact", medium="chat", topic="delivery")
    _survey(v, c, "ces", "support", 0.2)
    steps = v.steps
    if rng.random() < 0.5:  # not solved: calls the next day or a few hours later
        call = st.Visit(
            rng,
            v.now + rng.randint(2, 20) * 3_600_000,
            "store",
            None,
            c.customer_id,
            "",
            config.incidents,
        )
        call.emit("support_contact", medium=rng.choice(["phone", "in_store"]), topic="delivery")
        _survey(call, c, "ces", "support", 0.2)
        steps.extend(call.steps)
    return steps


def _app_then_web(
    c: Customer, start: int, rng: random.Random, config: SimulationConfig
) -> list[st.Step]:
    """Browses the app anonymously, logs in on the app, buys on the web minutes later."""
    app_device = c.app_device or f"a-x{c.customer_id}"
    v = st.Visit(rng, start, "app", app_device, None, "mobile", config.incidents)
    st.land(v)
    st.browse(v, rng.randint(2, 5))
    _login(v, c)
    web = st.Visit(
        rng,
        v.now + rng.randint(2, 10) * 60_000,
        "web",
        c.web_devices[0],
        c.customer_id,
        c.web_types[0],
        config.incidents,
    )
    c.logged_in.add(c.web_devices[0])
    st.land(web)
    value = st.add_to_cart(web)
    st.checkout(web, value, c)
    return v.steps + web.steps


def _visit(c: Customer, start: int, rng: random.Random, config: SimulationConfig) -> list[st.Step]:
    roll = rng.random()
    if roll < 0.84:
        return _online_visit(c, start, rng, config)
    if roll < 0.95:
        return _store_visit(c, start, rng, config)
    if roll < 0.97:
        return _support(c, start, rng, config)
    return _app_then_web(c, start, rng, config)


def visits(config: SimulationConfig) -> Iterator[list[st.Step]]:
    """Each visit's steps, in start order, without noise or messages: the same visits as
    `generate` makes (the same seed), for benchmarks that count what happened."""
    rng = random.Random(config.seed)
    customers = build_population(
        config.customers,
        rng,
        config.app_share,
        config.loyalty_card_share,
        config.shared_device_share,
    )
    for start, ci, k in _visit_starts(config, rng):
        yield _visit(customers[ci], start, random.Random(f"{config.seed}/{ci}/{k}"), config)


def generate(config: SimulationConfig) -> Iterator[SimulatedMessage]:
    """Messages in arrival order, reproducible from the config."""
    rng = random.Random(config.seed)
    customers = build_population(
        config.customers,
        rng,
        config.app_share,
        config.loyalty_card_share,
        config.shared_device_share,
    )
    noise = _Noise(config, random.Random(config.seed * 7919 + 1))
    heap: list[tuple[int, int, SimulatedMessage]] = []
    for start, ci, k in _visit_starts(config, rng):
        while heap and heap[0][0] < start:
            yield heapq.heappop(heap)[2]
        steps = _visit(customers[ci], start, random.Random(f"{config.seed}/{ci}/{k}"), config)
        for arrival, msg in noise.messages(steps):
            heapq.heappush(heap, (arrival, noise.next_seq(), msg))
    while heap:
        yield heapq.heappop(heap)[2]


class _Noise:
    """Turns steps into messages, with duplicates, batches, jitter and malformed input."""

    def __init__(self, config: SimulationConfig, rng: random.Random) -> None:
        self.config, self.rng = config, rng
        self.counter = 0
        self.seq = 0
        self.now_ms = int(datetime.now(UTC).timestamp() * 1000)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _event(self, step: st.Step) -> dict[str, Any]:
        self.counter += 1
        doc: dict[str, Any] = {
            "event_id": f"e-{self.config.seed}-{self.counter:08x}",
            "event_type": step.event_type,
            "occurred_at": _iso(step.ts_ms, 1 if self.rng.random() < 0.1 else 0),
            "properties": step.properties,
        }
        if step.device_id is not None:
            doc["device_id"] = step.device_id
        if step.customer_id is not None:
            doc["customer_id"] = step.customer_id
        return doc

    def messages(self, steps: list[st.Step]) -> Iterator[tuple[int, SimulatedMessage]]:
        rng, cfg = self.rng, self.config
        i = 0
        while i < len(steps):
            step = steps[i]
            topic = TOPICS[step.channel]
            key = (step.device_id or step.customer_id or "").encode() or None
            group = [step]
            if rng.random() < cfg.batch_rate:
                while (
                    len(group) < 4
                    and i + len(group) < len(steps)
                    and steps[i + len(group)].channel == step.channel
                    and steps[i + len(group)].device_id == step.device_id
                ):
                    group.append(steps[i + len(group)])
            i += len(group)
            docs = [self._event(s) for s in group]
            arrival = group[-1].ts_ms
            roll = rng.random()
            if roll < cfg.late_rate:
                arrival += rng.randint(10, 60) * 60_000
            elif roll < cfg.late_rate + cfg.jitter_rate:
                arrival += rng.randint(2_000, 60_000)
            if rng.random() < cfg.malformed_rate:
                yield arrival, self._malformed(topic, key, docs)
                continue
            payload: object = docs if len(docs) > 1 else docs[0]
            yield arrival, SimulatedMessage(topic, key, payload)
            if rng.random() < cfg.duplicate_rate:
                yield (
                    arrival + rng.randint(1_000, 30_000),
                    SimulatedMessage(topic, key, payload, duplicate=True),
                )

    def _malformed(
        self, topic: str, key: bytes | None, docs: list[dict[str, Any]]
    ) -> SimulatedMessage:
        doc = dict(docs[0])
        kind = self.rng.randrange(9)
        if kind == 0:
            return SimulatedMessage(
                topic,
                key,
                b'{"event_id": "' + doc["event_id"].encode() + b'", "event_type": "page_',
                malformed=True,
            )
        if kind == 1:
            doc.pop("event_id")
        elif kind == 2:
            doc["properties"] = (
                {**doc["properties"], "results_count": "three"}
                if doc["event_type"] == "search"
                else "not-an-object"
            )
        elif kind == 3:
            doc["event_type"] = "Add To Cart"
        elif kind == 4:
            doc["occurred_at"] = "1999-12-31T23:59:59Z"
        elif kind == 5:
            return SimulatedMessage(f"{topic}-legacy", key, doc, malformed=True)
        elif kind == 6:
            return SimulatedMessage(topic, key, 42, malformed=True)
        elif kind == 7:
            doc["occurred_at"] = "last tuesday"
        else:
            return SimulatedMessage(
                topic, key, [*docs, {"event_type": "page_view"}], malformed=True
            )
        return SimulatedMessage(topic, key, doc, malformed=True)
