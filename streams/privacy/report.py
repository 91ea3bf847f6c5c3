"""`parcours privacy report`: where personal data is, how much, and what was done about it.

Intuition: a data-protection officer asks four questions: which columns hold identifiers, how
many people are in there, did the scrubber catch anything, and were erasure requests carried
out. Each answer is one query on the tables themselves (not on counters kept on the side), so
the report is true for whatever the database holds, including rows an older version wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from streams.privacy.errors import PrivacyError
from streams.privacy.retention import current
from streams.privacy.scrub import CARD, EMAIL, PHONE, marker

#: Every column that holds an identifier of a person or of what they typed, and what it is.
IDENTIFIER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("events", "customer_id", "customer id (pseudonym when pseudonymising)"),
    ("events", "device_id", "device id (pseudonym when pseudonymising; tills and kiosks clear)"),
    ("events", "person_id", "customer id, anon:<device id> or a guest name"),
    ("events", "properties", "free-form values (scrubbed: emails, phones, cards)"),
    ("sessions", "person_id", "as events.person_id"),
    ("sessions", "devices", "device ids"),
    ("friction", "person_id", "as events.person_id"),
    ("friction", "device_id", "device id"),
    ("friction", "details", "JSON about the signal (pages, elements, search terms)"),
    ("identity_links", "device_id", "device id"),
    ("identity_links", "customer_id", "customer id"),
    ("session_merges", "person_id", "customer id"),
    ("rejected_messages", "raw", "rejected input bytes (scrubbed; ids kept unless pseudonymising)"),
    ("rejected_events", "event_id", "the producer's event id"),
    ("quarantined_rows", "row", "a refused row, any of the above"),
    ("journey_state", "state", "the embedded runner's saved state (ids of people in progress)"),
)

#: Where the scrubber's markers are counted.
SCRUBBED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("events", "properties"),
    ("rejected_messages", "raw"),
    ("rejected_events", "message"),
)


@dataclass
class PrivacyReport:
    subjects: dict[str, int] = field(default_factory=dict)
    pseudonymous_share: float | None = None
    #: (table.column, kind) -> rows holding at least one marker of that kind
    scrubbed: dict[tuple[str, str], int] = field(default_factory=dict)
    erasures: int = 0
    suppressed_subjects: int = 0
    last_erasure: str | None = None
    retention_days: dict[str, int] = field(default_factory=dict)


def privacy_report(client: Client) -> PrivacyReport:
    try:
        return _report(client)
    except PrivacyError:
        raise
    except Exception as exc:
        raise PrivacyError(f"cannot build the privacy report: {exc}") from exc


def _report(client: Client) -> PrivacyReport:
    report = PrivacyReport()
    customers, devices, persons, pseudo = client.query(
        "SELECT uniqExactIf(customer_id, customer_id != ''), uniqExactIf(device_id, "
        "device_id != ''), uniqExact(person_id), "
        "if(countIf(customer_id != '') = 0, NULL, "
        "countIf(match(customer_id, '^p_[0-9a-f]{32}$')) / countIf(customer_id != '')) "
        "FROM events"
    ).result_rows[0]
    report.subjects = {
        "customers (events.customer_id)": int(customers),
        "devices (events.device_id)": int(devices),
        "persons (events.person_id)": int(persons),
    }
    report.pseudonymous_share = None if pseudo is None else float(pseudo)
    for table, column in SCRUBBED_COLUMNS:
        counts = client.query(
            f"SELECT countIf(position({column}, {{e:String}}) > 0), "
            f"countIf(position({column}, {{p:String}}) > 0), "
            f"countIf(position({column}, {{c:String}}) > 0) FROM {table}",
            parameters={"e": marker(EMAIL), "p": marker(PHONE), "c": marker(CARD)},
        ).result_rows[0]
        for kind, n in zip((EMAIL, PHONE, CARD), counts, strict=True):
            report.scrubbed[(f"{table}.{column}", kind)] = int(n)
    erasures, last = client.query(
        "SELECT count(), if(count() = 0, '', toString(max(erased_at))) FROM privacy_erasures"
    ).result_rows[0]
    report.erasures, report.last_erasure = int(erasures), (last or None)
    report.suppressed_subjects = int(
        client.query("SELECT uniqExact(subject_hash) FROM privacy_suppressions").result_rows[0][0]
    )
    report.retention_days = current(client)
    return report
