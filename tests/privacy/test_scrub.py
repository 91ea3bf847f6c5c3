"""The scrubber: generated emails, phone numbers and card numbers inside arbitrary text are
redacted; ordinary analytics text is left exactly as it was."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.privacy.scrub import CARD, EMAIL, PHONE, Scrubber, luhn, marker

pytestmark = pytest.mark.unit

_ALNUM = string.ascii_letters + string.digits
emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(_ALNUM + "._+-", min_size=1, max_size=20).filter(lambda s: s[0].isalnum()),
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=15),
    st.sampled_from(["fr", "com", "de", "co.uk", "io", "shop"]),
)


def _grouped(digits: str, sep: str, size: int) -> str:
    return sep.join(digits[i : i + size] for i in range(0, len(digits), size))


french_phones = st.builds(
    lambda d, sep: _grouped("0" + d, sep, 2),
    st.text("0123456789", min_size=9, max_size=9),
    st.sampled_from(["", " ", ".", "-"]),
)
international_phones = st.builds(
    lambda cc, rest, sep: f"+{cc}{sep}" + _grouped(rest, sep, 2),
    st.sampled_from(["33", "49", "44", "1", "352"]),
    st.text("0123456789", min_size=8, max_size=10),
    st.sampled_from(["", " ", ".", "-"]),
)
us_phones = st.builds(
    lambda a, b, c, fmt: fmt.format(a, b, c),
    st.text("0123456789", min_size=3, max_size=3),
    st.text("0123456789", min_size=3, max_size=3),
    st.text("0123456789", min_size=4, max_size=4),
    st.sampled_from(["({}) {}-{}", "{}-{}-{}", "{}.{}.{}"]),
)


def _with_luhn(body: str) -> str:
    for check in "0123456789":
        if luhn(body + check):
            return body + check
    raise AssertionError("unreachable")


cards = st.builds(
    lambda body, sep: _grouped(_with_luhn(body), sep, 4),
    st.text("0123456789", min_size=15, max_size=15).map(lambda s: "4" + s[1:]),
    st.sampled_from(["", " ", "-"]),
)
#: Text around the personal data: words, spaces and punctuation (a separator on each side).
context = st.text(string.ascii_letters + " ,;!?()'\"/=\n", max_size=30)
#: Ordinary analytics values: words, pages, prices, quantities, dates and times, sku codes.
ordinary = st.one_of(
    st.text(string.ascii_letters + " -_/", max_size=40),
    st.builds(lambda n: f"/p/shoes-{n}", st.integers(0, 10**6)),
    st.builds(lambda n: f"sku-{n}", st.integers(0, 10**12)),
    st.builds(lambda a, b: f"{a}.{b:02d} EUR", st.integers(0, 10**5), st.integers(0, 99)),
    st.datetimes().map(lambda d: d.isoformat(sep=" ", timespec="seconds")),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.integers(0, 10**6).map(str),
    st.builds(
        lambda a, b, c: f"v{a}.{b}.{c}", st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)
    ),
)


@settings(max_examples=300)
@given(
    context,
    st.one_of(
        emails.map(lambda e: (EMAIL, e)),
        french_phones.map(lambda p: (PHONE, p)),
        international_phones.map(lambda p: (PHONE, p)),
        us_phones.map(lambda p: (PHONE, p)),
        cards.map(lambda c: (CARD, c)),
    ),
    context,
)
def test_personal_data_in_any_text_is_redacted(
    before: str, found: tuple[str, str], after: str
) -> None:
    kind, value = found
    scrubber = Scrubber()
    text = f"{before} {value} {after}"
    out = scrubber.text(text)
    assert value not in out
    assert marker(kind) in out
    assert out.startswith(before) and out.endswith(after)
    raw = scrubber.raw(text.encode())
    assert value.encode() not in raw and marker(kind).encode() in raw


@settings(max_examples=500)
@given(ordinary)
def test_ordinary_text_is_left_alone(value: str) -> None:
    scrubber = Scrubber()
    assert scrubber.text(value) == value
    assert scrubber.raw(value.encode()) == value.encode()
    assert not scrubber.found


@given(st.binary(max_size=200), emails, st.binary(max_size=200))
def test_bytes_that_are_not_text_stay_byte_for_byte_around_a_redaction(
    before: bytes, email: str, after: bytes
) -> None:
    data = before + b" " + email.encode() + b" " + after
    out = Scrubber().raw(data)
    assert email.encode() not in out
    # what came before the first thing redacted is untouched
    cut = out.index(b"[redacted:")
    assert data.startswith(out[:cut])


def test_properties_nested_allowed_and_url_queries() -> None:
    scrubber = Scrubber()
    props = {
        "page": "/checkout?email=anna%40example.fr&step=2&tel=0612345678",
        "transaction_id": "4111111111111111",
        "note": {"lines": ["ok", "card 4111 1111 1111 1111"]},
        "value": 4111111111111111,
        "search_term": "shoes",
    }
    out = scrubber.properties(props)
    assert out["page"] == "/checkout?email=[redacted:email]&step=2&tel=[redacted:phone]"
    assert out["transaction_id"] == props["transaction_id"]  # allowed: an id, not a card
    assert out["note"] == {"lines": ["ok", "card [redacted:card]"]}
    assert out["value"] == props["value"]  # numbers are not text
    assert props["note"] == {"lines": ["ok", "card 4111 1111 1111 1111"]}  # input not mutated
    untouched = {"page": "/home", "search_term": "red shoes 42"}
    assert scrubber.properties(untouched) is untouched


def test_extra_patterns_and_allow_list() -> None:
    scrubber = Scrubber.with_extra({"iban": r"FR\d{2}(?: ?\d{4}){5}"}, allow=["contact"])
    assert scrubber.text("pay to FR76 3000 6000 0112 3456 7890") == "pay to [redacted:iban]"
    assert scrubber.properties({"contact": "a@b.fr"}) == {"contact": "a@b.fr"}
