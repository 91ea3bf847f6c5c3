"""What to simulate: population size, period, rates of each story, incidents, noise."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from streams.errors import ParcoursError


class SimulationError(ParcoursError):
    """Base of the simulator's exceptions (bad incident specs, bad configuration)."""


@dataclass(frozen=True, slots=True)
class Incident:
    """A window during which a friction type is raised: `payment_outage` makes most purchase
    attempts fail with `payment_error`; `checkout_bug` causes exceptions and checkout loops.
    `channel` None means every channel. `factor` sizes the incident instead: the friction it
    raises (payment failures per checkout attempt, exceptions per visit) is `factor` times its
    normal rate (spec suffix `*F`, e.g. `payment_outage:+1d:+1d2h*5`; benchmarks use it).
    `device_type` limits it to visits from one device type (a bug in the tablet app alone; set
    in code, for tests of the spikes per device type)."""

    kind: str
    start: datetime
    end: datetime
    channel: str | None = None
    factor: float | None = None
    device_type: str | None = None

    def active(self, ts_ms: int, channel: str, device_type: str | None = None) -> bool:
        return (
            self.start.timestamp() * 1000 <= ts_ms < self.end.timestamp() * 1000
            and (self.channel is None or self.channel == channel)
            and (self.device_type is None or self.device_type == device_type)
        )


INCIDENT_KINDS = ("payment_outage", "checkout_bug")
CHANNELS = ("web", "app", "store")
_OFFSET = re.compile(r"^\+(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def _parse_time(text: str, start: datetime) -> datetime:
    match = _OFFSET.match(text)
    if match and any(match.groups()):
        days, hours, minutes = (int(g or 0) for g in match.groups())
        return start + timedelta(days=days, hours=hours, minutes=minutes)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SimulationError(
            f"{text!r} is neither an ISO timestamp nor an offset like +2d, +2d6h, +90m"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_incident(text: str, start: datetime) -> Incident:
    """`KIND:START:END[:CHANNEL]`; START/END are ISO timestamps or offsets from `start`.

    ISO timestamps contain colons, so the spec is split on the first colon for the kind and on
    the last for an optional channel; the rest is START and END separated by a colon that
    starts a new time (`+…` or a date).
    """
    factor: float | None = None
    body, star, size = text.rpartition("*")
    if star:
        try:
            factor = float(size)
        except ValueError:
            raise SimulationError(
                f"incident {text!r}: the size after `*` must be a number"
            ) from None
        if not 1 <= factor <= 20:
            raise SimulationError(f"incident {text!r}: the size must be between 1 and 20")
        text = body
    kind, _, rest = text.partition(":")
    if kind not in INCIDENT_KINDS:
        raise SimulationError(f"incident kind {kind!r} unknown; one of {', '.join(INCIDENT_KINDS)}")
    channel: str | None = None
    head, _, tail = rest.rpartition(":")
    if tail in CHANNELS:
        rest, channel = head, tail
    parts = re.split(r":(?=\+|\d{4}-)", rest)
    if len(parts) != 2:
        raise SimulationError(f"incident {text!r}: expected KIND:START:END[:CHANNEL]")
    begin, end = (_parse_time(p, start) for p in parts)
    if end <= begin:
        raise SimulationError(f"incident {text!r}: END must be after START")
    return Incident(kind, begin, end, channel, factor)


DEFAULT_START = datetime(2026, 11, 2, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """A reproducible simulation: the same config gives byte-identical output."""

    customers: int = 5_000
    days: float = 7.0
    start: datetime = DEFAULT_START
    seed: int = 1
    incidents: tuple[Incident, ...] = field(default_factory=tuple)
    #: Sessions per customer per week (mean).
    sessions_per_week: float = 10.0
    app_share: float = 0.5
    loyalty_card_share: float = 0.8
    shared_device_share: float = 0.03
    malformed_rate: float = 0.005
    duplicate_rate: float = 0.005
    batch_rate: float = 0.05
    #: Events that arrive up to a minute out of order / 10-60 minutes late.
    jitter_rate: float = 0.02
    late_rate: float = 0.001

    def __post_init__(self) -> None:
        if self.customers < 1 or self.days <= 0:
            raise SimulationError("customers must be >= 1 and days > 0")
        for name in ("malformed_rate", "duplicate_rate", "batch_rate", "jitter_rate", "late_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise SimulationError(f"{name} must be between 0 and 1")
        if self.start.tzinfo is None:
            raise SimulationError("start must be timezone-aware")
