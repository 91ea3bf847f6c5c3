"""What the streaming stages drop, and which of their state is an erased subject's.

Intuition: in streaming mode the suppression list arrives while the stages run (a compacted
topic, streams/worker/suppression_topic.py), and it holds keyed hashes only: no stage can turn
a hash back into an id. So each stage turns the ids it *has* into hashes and asks the one rule,
`PrivacyFilter.is_suppressed`: the decoder's events (policy.py), the sink's records (the
customer, device and person they name), the journey topic's inputs, and the names in a worker's
state. The names found on the list form a `Subject`, and the state is cleaned by the same
`forget_in_state` that cleans the embedded runner's saved state (subject.py): one rule for who
is suppressed, one for what of the state is hers.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from streams.core.records import (
    EventRow,
    FrictionSignal,
    IdentityLink,
    Record,
    SessionMerge,
    SessionSummary,
)
from streams.privacy.policy import ANON, PrivacyFilter
from streams.privacy.subject import Subject, forget_in_state
from streams.sinks.base import RejectedInput

#: A name-holding member of serialised state (streams/core/codec.py, compact JSON): a string
#: field, or a list of device ids (`devices`) or of `[linked_at, customer]` links (`links`).
_NAMED = re.compile(
    rb'"(customer_id|device_id|last_device|person_id|anon_person_id|into_person|from_person)"'
    rb':"((?:[^"\\]|\\.)*)"'
)
_LISTED = re.compile(rb'"(devices|links)":\[((?:[^\[\]]|\[[^\[\]]*\])*)\]')
_STRING = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_CUSTOMER_FIELDS = frozenset({b"customer_id", b"links"})
_DEVICE_FIELDS = frozenset({b"device_id", b"devices", b"last_device"})


def record_suppressed(privacy: PrivacyFilter, record: Record | RejectedInput) -> bool:
    """Whether a record names a suppressed subject (anonymous aggregates and spikes never do)."""
    if not privacy.suppressed:
        return False
    if isinstance(record, RejectedInput):
        return privacy.names_suppressed(record.rejection.raw)
    if isinstance(record, EventRow):
        return (
            (
                record.customer_id is not None
                and privacy.is_suppressed("customer", record.customer_id)
            )
            or (record.device_id is not None and privacy.is_suppressed("device", record.device_id))
            or privacy.person_suppressed(record.person_id)
        )
    if isinstance(record, SessionSummary):
        return privacy.person_suppressed(record.person_id) or any(
            privacy.is_suppressed("device", d) for d in record.devices
        )
    if isinstance(record, FrictionSignal):
        return privacy.person_suppressed(record.person_id) or (
            record.device_id is not None and privacy.is_suppressed("device", record.device_id)
        )
    if isinstance(record, IdentityLink):
        return privacy.is_suppressed("customer", record.customer_id) or privacy.is_suppressed(
            "device", record.device_id
        )
    if isinstance(record, SessionMerge):
        return privacy.person_suppressed(record.person_id)
    return False


def names_in(data: Any) -> tuple[set[str], set[str], set[str]]:
    """The customer ids, device ids and person ids a piece of plain state data names, by the
    fields that hold them (a person's state, a device's, a journey input). Read from its JSON
    with regular expressions: a walk of the nested data in Python cost 40 times more."""
    customers: set[str] = set()
    devices: set[str] = set()
    persons: set[str] = set()
    raw = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    for field, value in _NAMED.findall(raw):
        _file(field, value, customers, devices, persons)
    for field, inner in _LISTED.findall(raw):
        for value in _STRING.findall(inner):
            _file(field, value, customers, devices, persons)
    return customers, devices, persons


def _file(
    field: bytes, value: bytes, customers: set[str], devices: set[str], persons: set[str]
) -> None:
    text = _unescape(value)
    if text is None:
        return
    if field in _CUSTOMER_FIELDS:
        customers.add(text)
    elif field in _DEVICE_FIELDS:
        devices.add(text)
    else:
        persons.add(text)


def _unescape(value: bytes) -> str | None:
    if b"\\" not in value:
        return value.decode("utf-8", "replace")
    try:
        text = orjson.loads(b'"' + value + b'"')
    except orjson.JSONDecodeError:
        return None
    return text if isinstance(text, str) else None


def item_suppressed(privacy: PrivacyFilter, data: Any) -> bool:
    """Whether a journey input (plain data: an event, a link notice, a hand-over) names a
    suppressed subject: one sent before the suppression was read, now arriving."""
    if not privacy.suppressed:
        return False
    if isinstance(data, dict) and data.get("kind") == "event":  # the common case, directly
        event = data.get("event")
        if isinstance(event, dict):
            customer, device = event.get("customer_id"), event.get("device_id")
            return (
                privacy.person_suppressed(str(data.get("person_id", "")))
                or (isinstance(customer, str) and privacy.is_suppressed("customer", customer))
                or (isinstance(device, str) and privacy.is_suppressed("device", device))
            )
    customers, devices, persons = names_in(data)
    return (
        any(privacy.is_suppressed("customer", c) for c in customers)
        or any(privacy.is_suppressed("device", d) for d in devices)
        or any(privacy.person_suppressed(p) for p in persons)
    )


def suppressed_subject(
    privacy: PrivacyFilter, customers: Iterable[str], devices: Iterable[str], persons: Iterable[str]
) -> Subject | None:
    """The names among these that are on the suppression list, as one `Subject` (None: no
    name is). A person id stands for its customer, or for its device when anonymous."""
    found_customers = {c for c in customers if privacy.is_suppressed("customer", c)}
    found_devices = {d for d in devices if privacy.is_suppressed("device", d)}
    for person in persons:
        if not person.startswith(ANON):
            if privacy.is_suppressed("customer", person):
                found_customers.add(person)
            continue
        rest = person[len(ANON) :]
        candidates = [rest] + [rest[:i] for i, ch in enumerate(rest) if ch == ":" and i > 0]
        found_devices.update(d for d in candidates if privacy.is_suppressed("device", d))
    if not found_customers and not found_devices:
        return None
    return Subject("customer", frozenset(found_customers), frozenset(found_devices))


def forget_suppressed(
    privacy: PrivacyFilter, persons: dict[str, Any], devices: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """A worker's state (plain data: person id -> person, device id -> device) without every
    suppressed subject it names; returns the persons and devices kept, and the entries
    removed. The same cleaning as the embedded runner's saved state (`forget_in_state`)."""
    customers, device_ids, person_ids = names_in([persons, devices])
    subject = suppressed_subject(
        privacy, customers, device_ids | devices.keys(), person_ids | persons.keys()
    )
    if subject is None:
        return persons, devices, 0
    state = {"journey": {"persons": persons, "devices": devices}}
    cleaned, removed = forget_in_state(state, subject)
    journey = cleaned["journey"]
    return journey["persons"], journey["devices"], removed
