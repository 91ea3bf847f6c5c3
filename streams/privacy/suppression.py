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

from collections.abc import Iterable, Iterator
from typing import Any

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

#: Fields of the state's plain data (streams/core/codec.py) that hold a name.
_CUSTOMER_FIELDS = frozenset({"customer_id"})
_DEVICE_FIELDS = frozenset({"device_id", "devices", "last_device"})
_PERSON_FIELDS = frozenset({"person_id", "anon_person_id", "into_person", "from_person"})


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
    fields that hold them (a person's state, a device's, a journey input)."""
    customers: set[str] = set()
    devices: set[str] = set()
    persons: set[str] = set()
    for field, value in _named(data):
        if field in _CUSTOMER_FIELDS:
            customers.add(value)
        elif field in _DEVICE_FIELDS:
            devices.add(value)
        else:
            persons.add(value)
    return customers, devices, persons


def _named(data: Any) -> Iterator[tuple[str, str]]:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k == "links" and isinstance(v, list | tuple):  # a device's [at, customer]
                    yield from (("customer_id", x[1]) for x in v if _is_link(x))
                    continue
                if k in _CUSTOMER_FIELDS or k in _DEVICE_FIELDS or k in _PERSON_FIELDS:
                    if isinstance(v, str):
                        yield k, v
                        continue
                    if isinstance(v, list | tuple):
                        yield from ((k, x) for x in v if isinstance(x, str))
                        continue
                if isinstance(v, dict | list | tuple):
                    stack.append(v)
        elif isinstance(item, list | tuple):
            stack.extend(x for x in item if isinstance(x, dict | list | tuple))


def _is_link(x: Any) -> bool:
    return isinstance(x, list | tuple) and len(x) == 2 and isinstance(x[1], str)


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
