"""`parcours forget`: erase one customer or device from every table and the saved state.

Intuition: erasure is a transaction the database does not offer, so it is done in an order that
is safe to repeat. First the subject goes on the suppression list (from then on no run can
write her again, even one started in between), then every table's rows naming her are deleted,
then the saved journey state is rewritten without her, then the audit row is written. Run again
after a failure, every step finds less to do and ends the same.

How rows are physically removed: `ALTER TABLE … DELETE WHERE … SETTINGS mutations_sync = 2`, a
*mutation*: ClickHouse rewrites every data part holding a matching row without those rows and
waits (`mutations_sync = 2`: on every replica of a replicated server too) before returning. The
same SQL runs on chDB and on a server. Not a lightweight `DELETE FROM`, which only masks rows
(`_row_exists`) until a later merge rewrites the part: the bytes would stay on disk for an
unknown time. The parts replaced by a mutation are inactive at once (no query reads them) and
ClickHouse deletes their files after `old_parts_lifetime` (8 minutes by default).

What is not erased: per-minute aggregates (`minute_aggregates`) are anonymous counts by
channel and event type; her contribution stays in them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from streams.embedded.runner import STATE_FORMAT
from streams.embedded.state import JourneyStateStore
from streams.privacy.errors import PrivacyError
from streams.privacy.keys import PrivacyKey, SubjectKind
from streams.privacy.subject import Subject, forget_in_state, stored_forms

#: Every table holding personal rows, in the order they are erased.
TABLES = (
    "events",
    "sessions",
    "friction",
    "identity_links",
    "session_merges",
    "rejected_events",
    "rejected_messages",
    "quarantined_rows",
)
_SYNC = {"mutations_sync": 2}


@dataclass
class Receipt:
    """What an erasure removed: rows per table (every stored version of a row counts), and
    the entries of the saved journey state."""

    kind: SubjectKind
    subject_hash: str
    rows: dict[str, int] = field(default_factory=dict)
    state_entries: int = 0
    #: Streaming mode: records deleted from the topics Parcours reads back, per topic
    #: (not in `total`, which counts what the audit row records: rows and state entries).
    topics: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + self.state_entries


def find_subject(
    client: Client, key: PrivacyKey, kind: SubjectKind, value: str, pseudonymise: bool
) -> Subject:
    """The subject in every stored form. A customer brings the devices linked to her and to
    no other customer (their anonymous rows are hers); a device shared with another customer
    keeps its anonymous rows (erase it with `--device` too when they are hers)."""
    forms = stored_forms(value, key, pseudonymise)
    if kind == "device":
        return Subject(kind, frozenset(), forms)
    rows = client.query(
        "SELECT device_id FROM identity_links GROUP BY device_id "
        "HAVING countIf(customer_id IN {c:Array(String)}) > 0 "
        "AND countIf(customer_id NOT IN {c:Array(String)}) = 0",
        parameters={"c": sorted(forms)},
    ).result_rows
    return Subject(kind, forms, frozenset(r[0] for r in rows))


def _conditions(subject: Subject, sessions: list[str]) -> dict[str, tuple[str, dict[str, object]]]:
    """Table -> (WHERE clause, parameters) selecting the subject's rows."""
    customers, devices = sorted(subject.customers), sorted(subject.devices)
    persons, prefixes = sorted(subject.persons), list(subject.guest_prefixes)
    # Raw bytes and quarantined rows are searched for each name as a JSON string ("…"), so a
    # short device id does not match inside other text.
    tokens = [f'"{n}"' for n in sorted(subject.customers | subject.devices)]
    person = (
        "(person_id IN {persons:Array(String)} OR "
        "arrayExists(p -> startsWith(person_id, p), {prefixes:Array(String)}))"
    )
    p: dict[str, object] = {
        "customers": customers,
        "devices": devices,
        "persons": persons,
        "prefixes": prefixes,
        "sessions": sessions,
        "tokens": tokens,
    }
    raw = "multiSearchAny(raw, {tokens:Array(String)})"
    return {
        "events": (
            f"customer_id IN {{customers:Array(String)}} OR device_id IN {{devices:Array(String)}}"
            f" OR {person}",
            p,
        ),
        "sessions": (
            f"{person} OR hasAny(devices, {{devices:Array(String)}})"
            " OR session_id IN {sessions:Array(String)}",
            p,
        ),
        "friction": (
            f"{person} OR device_id IN {{devices:Array(String)}}"
            " OR session_id IN {sessions:Array(String)}",
            p,
        ),
        "identity_links": (
            "customer_id IN {customers:Array(String)} OR device_id IN {devices:Array(String)}",
            p,
        ),
        "session_merges": (
            f"{person} OR session_id IN {{sessions:Array(String)}}"
            " OR merged_into IN {sessions:Array(String)}",
            p,
        ),
        "rejected_events": (
            f"{raw} OR message_id IN (SELECT message_id FROM rejected_messages WHERE {raw})",
            p,
        ),
        "rejected_messages": (raw, p),
        "quarantined_rows": ("multiSearchAny(row, {tokens:Array(String)})", p),
    }


def _sessions_of(client: Client, subject: Subject) -> list[str]:
    """Every session id holding one of the subject's events or naming one of her persons."""
    person = (
        "(person_id IN {persons:Array(String)} OR "
        "arrayExists(p -> startsWith(person_id, p), {prefixes:Array(String)}))"
    )
    params = {
        "customers": sorted(subject.customers),
        "devices": sorted(subject.devices),
        "persons": sorted(subject.persons),
        "prefixes": list(subject.guest_prefixes),
    }
    rows = client.query(
        "SELECT DISTINCT session_id FROM events WHERE session_id != '' AND ("
        f"customer_id IN {{customers:Array(String)}} OR device_id IN {{devices:Array(String)}}"
        f" OR {person}) UNION DISTINCT SELECT session_id FROM sessions WHERE {person}"
        " OR hasAny(devices, {devices:Array(String)})",
        parameters=params,
    ).result_rows
    return sorted(r[0] for r in rows)


def forget(
    client: Client,
    key: PrivacyKey,
    kind: SubjectKind,
    value: str,
    *,
    pseudonymise: bool = False,
    now_ms: int | None = None,
    publish: Callable[[list[tuple[SubjectKind, str]], int], None] | None = None,
) -> Receipt:
    """Erase the customer or device `value` (given in clear) everywhere; see the module.
    `publish`: streaming mode, puts the hashes on the suppression topic too, right after the
    suppression table and before any row is deleted (streams/privacy/streaming.py)."""
    if not value:
        raise PrivacyError(f"forget: the {kind} id is empty")
    at_ms = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        subject = find_subject(client, key, kind, value, pseudonymise)
        receipt = Receipt(kind, key.subject(kind, value))
        hashes = subject.suppression_hashes(key)
        client.insert(
            "privacy_suppressions",
            [[h, k, at_ms] for k, h in hashes],
            column_names=["subject_hash", "kind", "added_at"],
        )
        if publish is not None:
            publish(hashes, at_ms)
        conditions = _conditions(subject, _sessions_of(client, subject))
        for table in TABLES:
            where, params = conditions[table]
            count = int(
                client.query(
                    f"SELECT count() FROM {table} WHERE {where}", parameters=params
                ).result_rows[0][0]
            )
            if count:
                client.command(
                    f"ALTER TABLE {table} DELETE WHERE {where}", parameters=params, settings=_SYNC
                )
            receipt.rows[table] = count
        receipt.state_entries = _forget_in_journey_state(client, subject)
        client.insert(
            "privacy_erasures",
            [[at_ms, kind, receipt.subject_hash, receipt.total]],
            column_names=["erased_at", "kind", "subject_hash", "rows_removed"],
        )
    except PrivacyError:
        raise
    except Exception as exc:
        # The message names tables and ClickHouse's error, never the id (nor the key, which
        # no query carries).
        message = str(exc)
        for name in sorted(stored_forms(value, key, pseudonymise), key=len, reverse=True):
            message = message.replace(name, "<subject>")
        raise PrivacyError(f"the erasure did not complete (run it again): {message}") from None
    return receipt


def _forget_in_journey_state(client: Client, subject: Subject) -> int:
    """Rewrite the newest saved state without the subject, and delete every older save
    (they hold her too)."""
    store = JourneyStateStore(client)
    state = store.load()
    if state is None:
        return 0
    cleaned, removed = forget_in_state(state, subject)
    seq = store.save(cleaned, int(state.get("format", STATE_FORMAT)))
    client.command(
        "ALTER TABLE journey_state DELETE WHERE name = {name:String} AND seq < {seq:UInt64}",
        parameters={"name": store.name, "seq": seq},
        settings=_SYNC,
    )
    return removed


def suppression_list(client: Client) -> frozenset[str]:
    """Every keyed hash on the suppression list (read at the start of each run)."""
    try:
        rows = client.query("SELECT DISTINCT subject_hash FROM privacy_suppressions").result_rows
    except Exception as exc:
        raise PrivacyError(f"cannot read the suppression list: {exc}") from exc
    return frozenset(r[0] for r in rows)
