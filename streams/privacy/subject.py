"""Who is being erased, in every form they are stored under, and erasure of the saved state.

Intuition: a person is stored under several names. A customer `anna@example.fr` is the person
`anna@example.fr`; the devices she logged in from (and no one else did) were the person
`anon:<device>` before she logged in, and their anonymous rows are hers too (the resolved views
give them to her). With pseudonymisation on, each id is stored as its pseudonym, and rows
written before it was turned on hold the clear id. `Subject` gathers all these names once, so
every table is searched for all of them.

The saved journey state (`journey_state`, the embedded runner's snapshot) is plain data:
`forget_in_state` drops every person and device entry that is the subject's or mentions one of
its names anywhere (a pending event, a link), and the subject's links from devices that stay.
Dropping a whole entry is the safe side: another person's unfinished state that mentions her
restarts from nothing, rather than keeping her id. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from streams.privacy.keys import PrivacyKey, SubjectKind


@dataclass(frozen=True, slots=True)
class Subject:
    """Every stored name of one erased customer or device."""

    kind: SubjectKind
    #: Customer ids as stored (clear, pseudonym).
    customers: frozenset[str]
    #: Device ids as stored: the device itself, or the devices linked to the customer alone.
    devices: frozenset[str]

    @property
    def persons(self) -> frozenset[str]:
        return self.customers | frozenset(f"anon:{d}" for d in self.devices)

    @property
    def guest_prefixes(self) -> tuple[str, ...]:
        """Guest visits of a shared device are persons `anon:<device>:<first event id>`."""
        return tuple(sorted(f"anon:{d}:" for d in self.devices))

    @property
    def names(self) -> frozenset[str]:
        return self.customers | self.devices | self.persons

    def suppression_hashes(self, key: PrivacyKey) -> list[tuple[SubjectKind, str]]:
        """The keyed hashes to put on the suppression list: every stored form of every id."""
        out: list[tuple[SubjectKind, str]] = [
            ("customer", key.subject("customer", c)) for c in sorted(self.customers)
        ]
        out += [("device", key.subject("device", d)) for d in sorted(self.devices)]
        return out


def stored_forms(value: str, key: PrivacyKey, pseudonymise: bool) -> frozenset[str]:
    """The forms an id given in clear may be stored under (its pseudonym when that is on,
    and always the clear id: rows written before pseudonymisation was turned on)."""
    return frozenset({value, key.pseudonym(value)} if pseudonymise else {value})


def forget_in_state(state: dict[str, Any], subject: Subject) -> tuple[dict[str, Any], int]:
    """The runner's saved state without the subject; returns it and the entries removed."""
    journey = state.get("journey")
    if not isinstance(journey, dict):
        return state, 0
    tokens = _tokens(subject.names)
    prefixes = subject.guest_prefixes
    removed = 0
    persons: dict[str, Any] = {}
    for pid, person in journey.get("persons", {}).items():
        if pid in subject.persons or pid.startswith(prefixes) or _mentions(person, tokens):
            removed += 1
            continue
        persons[pid] = person
    devices: dict[str, Any] = {}
    for did, device in journey.get("devices", {}).items():
        if did in subject.devices:
            removed += 1
            continue
        links = [link for link in device.get("links", []) if link[1] not in subject.customers]
        kept = {**device, "links": links}
        if _mentions(kept, tokens):
            removed += 1
            continue
        devices[did] = kept
    return {**state, "journey": {**journey, "persons": persons, "devices": devices}}, removed


def _tokens(names: frozenset[str]) -> list[bytes]:
    """What betrays a name in serialised state: the name as a JSON string, and for names long
    enough not to occur by chance, the name anywhere (inside a URL, a message)."""
    out = []
    for name in sorted(names):
        out.append(orjson.dumps(name))
        if len(name) >= 6:
            out.append(orjson.dumps(name)[1:-1])
    return out


def _mentions(entry: Any, tokens: list[bytes]) -> bool:
    data = orjson.dumps(entry)
    return any(token in data for token in tokens)
