"""What happens to a decoded message before anything is stored or sent on.

Intuition: there is one door through which input enters Parcours, the decoder, and privacy is
enforced right behind it, in one function applied to what it returns (`PrivacyFilter.apply`).
Behind that door nothing holds an email typed into a search box, nothing holds the clear id of
a pseudonymised customer, and nothing of an erased subject gets in again. Three steps, in this
order for each result:

1. **Suppression.** An event whose `customer_id` or `device_id` is on the suppression list (by
   its keyed hash) is dropped and counted: a replay of old input cannot bring an erased person
   back. A rejection whose raw bytes name a suppressed id (as a `customer_id` or `device_id`
   field) is dropped too.
2. **Scrubbing** (on by default): every string in the properties, and the raw bytes, message and
   event id of a rejection, through `Scrubber`.
3. **Pseudonymisation** (optional): `customer_id` and `device_id` replaced by their keyed
   pseudonym, also inside a rejection's raw bytes. A shared device (a till, a kiosk: no person)
   keeps its id, so the configured shared-device patterns still recognise it.

Pure: the suppression list is given, not read; the caller (the runner) owns the I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson

from schemas import Event, Rejection
from schemas.event import trusted_event
from streams.privacy.keys import PrivacyKey, SubjectKind
from streams.privacy.scrub import Scrubber

DecodeResult = Event | Rejection

#: Ids whose verdict is remembered at most (some 20 MB at most).
VERDICTS_MAX = 100_000
#: The prefix of an anonymous person id (`anon:<device>`, streams/core/identity.py).
ANON = "anon:"
#: A `"customer_id": "…"` or `"device_id": "…"` member in raw JSON bytes.
_ID_MEMBER = re.compile(rb'"(customer_id|device_id)"(\s*:\s*)"((?:[^"\\]|\\.){1,512})"')


@dataclass(slots=True)
class PrivacyCounts:
    """What the filter did since it was made (metrics, the ingest summary)."""

    suppressed_events: int = 0
    suppressed_rejections: int = 0


class PrivacyFilter:
    """Suppression, scrubbing and pseudonymisation of decode results (see the module)."""

    def __init__(
        self,
        key: PrivacyKey,
        *,
        scrubber: Scrubber | None = None,
        pseudonymise: bool = False,
        suppressed: Iterable[str] = (),
        shared_device: Callable[[Event], bool] = lambda event: False,
    ) -> None:
        self.key = key
        self.scrubber = scrubber
        self.pseudonymise = pseudonymise
        self.suppressed = frozenset(suppressed)
        self.shared_device = shared_device
        self.counts = PrivacyCounts()
        #: (kind, id) -> whether it is on the list: an id comes back with every event of its
        #: person, and a keyed hash costs a microsecond. Emptied when the list grows, and
        #: when full (a bound on memory, not an eviction policy).
        self._verdicts: dict[tuple[str, str], bool] = {}

    def suppress(self, hashes: Iterable[str]) -> frozenset[str]:
        """Add subject hashes to the list (streaming: read from the suppression topic while
        running); returns those that were not on it yet."""
        new = frozenset(hashes) - self.suppressed
        if new:
            self.suppressed = self.suppressed | new
            self._verdicts.clear()
        return new

    @property
    def active(self) -> bool:
        """Whether `apply` can change anything at all."""
        return bool(self.scrubber or self.pseudonymise or self.suppressed)

    def apply(self, results: list[DecodeResult]) -> list[DecodeResult]:
        """The results to keep, each made private (see the module). Never raises for input."""
        if not self.active:
            return results
        out: list[DecodeResult] = []
        raw_done: dict[int, bytes | None] = {}  # one message's rejections share its bytes
        for result in results:
            if isinstance(result, Event):
                event = self.event(result)
                if event is not None:
                    out.append(event)
                continue
            key = id(result.raw)
            if key not in raw_done:
                raw_done[key] = self.raw(result.raw)
            raw = raw_done[key]
            if raw is None:
                self.counts.suppressed_rejections += 1
                continue
            out.append(self._rejection(result, raw))
        return out

    def event(self, event: Event) -> Event | None:
        customer, device = event.customer_id, event.device_id
        if self.suppressed and (
            (customer is not None and self.is_suppressed("customer", customer))
            or (device is not None and self.is_suppressed("device", device))
        ):
            self.counts.suppressed_events += 1
            return None
        props = event.properties
        if self.scrubber is not None:
            props = self.scrubber.properties(props)
        if self.pseudonymise:
            if customer is not None:
                customer = self.key.pseudonym(customer)
            if device is not None and not self.shared_device(event):
                device = self.key.pseudonym(device)
        if props is event.properties and not self.pseudonymise:
            return event
        return trusted_event(
            event.event_id,
            event.event_type,
            event.ts_ms,
            event.channel,
            device,
            customer,
            props,
            event.schema_version,
        )

    def rejection(self, rejection: Rejection) -> Rejection | None:
        """A rejection made outside the decoder (an ingest line rejected whole)."""
        raw = self.raw(rejection.raw)
        if raw is None:
            self.counts.suppressed_rejections += 1
            return None
        return self._rejection(rejection, raw)

    def _rejection(self, rejection: Rejection, raw: bytes) -> Rejection:
        if self.scrubber is None:
            return rejection if raw is rejection.raw else dataclasses.replace(rejection, raw=raw)
        event_id = rejection.event_id
        return dataclasses.replace(
            rejection,
            raw=raw,
            message=self.scrubber.text(rejection.message),
            event_id=None if event_id is None else self.scrubber.text(event_id),
        )

    def raw(self, data: bytes) -> bytes | None:
        """Raw input bytes made private, or None when they name a suppressed subject."""
        if self.suppressed or self.pseudonymise:
            found = False
            for match in _ID_MEMBER.finditer(data):
                found = True
                if self.suppressed:
                    kind: SubjectKind = "customer" if match.group(1) == b"customer_id" else "device"
                    value = _json_string(match.group(3))
                    if value is not None and self.is_suppressed(kind, value):
                        return None
            if found and self.pseudonymise:
                data = _ID_MEMBER.sub(self._pseudonymise_member, data)
        if self.scrubber is not None:
            data = self.scrubber.raw(data)
        return data

    def names_suppressed(self, data: bytes) -> bool:
        """Whether raw bytes name a suppressed subject in a `customer_id` or `device_id`
        member (what `raw` drops), without making them private."""
        if not self.suppressed:
            return False
        for match in _ID_MEMBER.finditer(data):
            kind: SubjectKind = "customer" if match.group(1) == b"customer_id" else "device"
            value = _json_string(match.group(3))
            if value is not None and self.is_suppressed(kind, value):
                return True
        return False

    def person_suppressed(self, person_id: str) -> bool:
        """Whether a person id belongs to a suppressed subject: a customer's person is her id;
        `anon:<device>` and a guest visit `anon:<device>:<event id>` are the device's."""
        if not self.suppressed:
            return False
        if not person_id.startswith(ANON):
            return self.is_suppressed("customer", person_id)
        rest = person_id[len(ANON) :]
        if self.is_suppressed("device", rest):
            return True
        # a guest visit: the device is what comes before one of the colons (ids may hold some)
        at = rest.find(":")
        while at > 0:
            if self.is_suppressed("device", rest[:at]):
                return True
            at = rest.find(":", at + 1)
        return False

    def is_suppressed(self, kind: SubjectKind, value: str) -> bool:
        """Whether the id is on the list, in clear or (pseudonymising) as its pseudonym: the
        devices found linked to an erased customer are only known in their stored form.
        The one test of the suppression rule: every other check here goes through it."""
        if not self.suppressed:
            return False
        verdict = self._verdicts.get((kind, value))
        if verdict is None:
            if len(self._verdicts) >= VERDICTS_MAX:
                self._verdicts.clear()
            verdict = self.key.subject(kind, value) in self.suppressed or (
                self.pseudonymise
                and self.key.subject(kind, self.key.pseudonym(value)) in self.suppressed
            )
            self._verdicts[(kind, value)] = verdict
        return verdict

    def _pseudonymise_member(self, match: re.Match[bytes]) -> bytes:
        value = _json_string(match.group(3))
        if value is None:
            return match.group()
        pseudonym = self.key.pseudonym(value).encode()
        return b'"' + match.group(1) + b'"' + match.group(2) + b'"' + pseudonym + b'"'


def _json_string(escaped: bytes) -> str | None:
    try:
        value = orjson.loads(b'"' + escaped + b'"')
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, str) else None
