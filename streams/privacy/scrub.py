"""PII scrubbing: emails, phone numbers and card numbers redacted from free text.

Intuition: personal data must not get in, because what is stored is copied (tables, parts,
backups, the DLQ) and erasing every copy later is much harder than never keeping it. Tracking
plans do not ask for emails or phone numbers in properties, yet they arrive: a search box where
the shopper typed their email, a page URL with `?email=…`, a card number pasted in a survey
answer. So every *string* in an event's properties, and the raw bytes of a rejected input, go
through one pass of a few regular expressions, and what matches is replaced by a marker naming
its kind (`[redacted:email]`), which `parcours privacy report` counts.

Each pattern is narrow on purpose, so ordinary analytics text stays as it was:
- an email needs `local@domain.tld`;
- a phone number is either international (`+` then 8 to 15 digits, with single spaces, dots,
  dashes or a `(0)` between groups), or national with a leading 0 in pairs (`06 12 34 56 78`,
  `0612345678`), or North American (`(555) 123-4567`, `555-123-4567`): dates, prices, times and
  sku numbers do not have these shapes;
- a card number is 13 to 19 digits (spaces or dashes between groups allowed) whose Luhn check
  holds; order numbers of that length pass it one time in ten, so property names that hold
  such ids (`transaction_id`, …) are on the allow-list and never scrubbed.

URL query strings are taken apart: a parameter named like an email or phone field (`email`,
`phone`, `tel`, …) is redacted whatever its value, and each value is decoded (`a%40b.com`)
before the patterns look at it.

Pure: no I/O, so the decoder's callers and the tests use it alike. Fast path: a string with no
`@` and no run of 8 digits and separators cannot match anything and is returned as it is
(most property values).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

EMAIL = "email"
PHONE = "phone"
CARD = "card"

_EMAIL_RE = r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}"
_SEP = r"[ .\-]?"
_PHONE_RE = (
    # international: +CC then groups, 8-15 digits in all (counted again in _valid_phone)
    r"(?<![\w+])\+\d{1,3}"
    + _SEP
    + r"(?:\(0\)"
    + _SEP
    + r")?\d(?:"
    + _SEP
    + r"\d){6,13}(?!\d)"
    # national with a trunk 0, in pairs: 06 12 34 56 78, 06.12.34.56.78, 0612345678
    + r"|(?<![\w.,/:+-])0\d(?:"
    + _SEP
    + r"\d\d){4}(?![\w,/:-]|\.\d)"
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567
    + r"|(?<![\w.,/:+-])(?:\(\d{3}\) ?|\d{3}[.\-])\d{3}[.\-]\d{4}(?![\w,/:-]|\.\d)"
)
_CARD_RE = r"(?<![\w.,/:+-])\d(?:[ \-]?\d){12,18}(?![\w,/:-]|\.\d)"
#: Query parameter names whose value is personal whatever it looks like.
QUERY_NAMES = frozenset(
    {"email", "e-mail", "mail", "phone", "tel", "telephone", "mobile", "msisdn", "card", "pan"}
)
#: Property names that may hold long digit runs that are not card numbers.
DEFAULT_ALLOW = frozenset({"transaction_id", "item_id", "item_list_id", "store_id"})
_QUERY = re.compile(r"\?([^#\s]*)")


def luhn(digits: str) -> bool:
    """The Luhn checksum of a string of digits (what every payment card number satisfies)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def marker(kind: str) -> str:
    return f"[redacted:{kind}]"


@dataclass(frozen=True, slots=True)
class Pattern:
    """One kind of personal data: a regular expression, and for the built-in phone and card
    kinds a check on what matched (digit count, Luhn)."""

    kind: str
    regex: str


@dataclass
class Scrubber:
    """Redacts what `patterns` match; `allow` names properties that are never scrubbed.

    `found` counts redactions by kind since the scrubber was made (for metrics and tests)."""

    patterns: tuple[Pattern, ...] = (
        Pattern(EMAIL, _EMAIL_RE),
        Pattern(CARD, _CARD_RE),
        Pattern(PHONE, _PHONE_RE),
    )
    allow: frozenset[str] = DEFAULT_ALLOW
    found: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        groups = "|".join(f"(?P<k{i}>{p.regex})" for i, p in enumerate(self.patterns))
        self._regex = re.compile(groups)
        self._bytes_regex = re.compile(groups.encode())
        self._kinds = {f"k{i}": p.kind for i, p in enumerate(self.patterns)}
        # Only the built-in kinds are known to need an '@' or a digit to match.
        self._fast = all(p.kind in (EMAIL, PHONE, CARD) for p in self.patterns)

    @classmethod
    def with_extra(
        cls, extra: Mapping[str, str] = {}, allow: Iterable[str] = DEFAULT_ALLOW
    ) -> Scrubber:
        """The built-in patterns plus `extra` (kind -> regular expression, e.g. an IBAN)."""
        base = cls().patterns
        return cls(base + tuple(Pattern(k, r) for k, r in extra.items()), frozenset(allow))

    # -- text -------------------------------------------------------------------------------

    def text(self, value: str) -> str:
        """`value` with every match redacted (the same object when nothing matched)."""
        if self._fast and not _may_match(value):
            return value
        out = self._regex.sub(self._replace, value)
        if "?" in out:
            out = _QUERY.sub(self._query, out)
        return out

    def _replace(self, match: re.Match[str]) -> str:
        kind = self._kinds[match.lastgroup or ""]
        text = match.group()
        if not _valid(kind, text):
            return text
        self.found[kind] += 1
        return marker(kind)

    def _query(self, match: re.Match[str]) -> str:
        params = match.group(1).split("&")
        changed = False
        for i, param in enumerate(params):
            name, eq, value = param.partition("=")
            if not eq or not value or value.startswith("[redacted:"):
                continue
            if unquote_plus(name).lower() in QUERY_NAMES:
                kind = PHONE if unquote_plus(name).lower() in {"phone", "tel", "mobile"} else EMAIL
                params[i] = f"{name}={marker(kind)}"
                self.found[kind] += 1
                changed = True
                continue
            decoded = unquote_plus(value)
            if decoded != value:
                scrubbed = self.text(decoded)
                if scrubbed != decoded:
                    params[i] = f"{name}={scrubbed}"
                    changed = True
        return "?" + "&".join(params) if changed else match.group()

    # -- properties and bytes ---------------------------------------------------------------

    def properties(self, props: dict[str, Any]) -> dict[str, Any]:
        """`props` with every string inside scrubbed (nested objects and arrays too), except
        under an allowed name. The same object when nothing changed (the common case)."""
        out: dict[str, Any] | None = None
        for name, value in props.items():
            if name in self.allow:
                continue
            new = self._value(value)
            if new is not value:
                if out is None:
                    out = dict(props)
                out[name] = new
        return props if out is None else out

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            new = self.text(value)
            return value if new == value else new
        if isinstance(value, dict):
            return self.properties(value)
        if isinstance(value, list):
            items = [self._value(v) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        return value

    def raw(self, data: bytes) -> bytes:
        """Raw input bytes (a rejected message, whatever its encoding) with matches redacted.

        Works on the bytes, not on decoded text, so bytes that are not UTF-8 stay byte for byte
        as they were around what is redacted. Allowed property names are not recognised here
        (the bytes may not even be JSON): a long id in a rejected input may be redacted."""
        if self._fast and not _may_match_bytes(data):
            return data
        out = self._bytes_regex.sub(self._replace_bytes, data)
        if b"?" in out:
            text = out.decode("utf-8", "surrogateescape")
            scrubbed = _QUERY.sub(self._query, text)
            if scrubbed != text:
                out = scrubbed.encode("utf-8", "surrogateescape")
        return out

    def _replace_bytes(self, match: re.Match[bytes]) -> bytes:
        kind = self._kinds[match.lastgroup or ""]
        text = match.group().decode("ascii", "replace")
        if not _valid(kind, text):
            return match.group()
        self.found[kind] += 1
        return marker(kind).encode()


#: What every phone or card number contains: 8 or more characters of digits and separators,
#: starting and ending with a digit. Searching for this first is about 10x cheaper than the
#: full patterns, whose look-behinds are tried at every position.
_DIGIT_RUN = re.compile(r"\d[\d ().\-]{6,}\d")
_DIGIT_RUN_BYTES = re.compile(rb"\d[\d ().\-]{6,}\d")
_QUERY_NAME = re.compile(r"[?&](?:" + "|".join(map(re.escape, QUERY_NAMES)) + r")=", re.I)


def _may_match(value: str) -> bool:
    """Whether a built-in pattern could match at all (an email needs an '@', possibly
    URL-encoded; a phone or card number a digit run; a query parameter its name)."""
    return (
        "@" in value
        or "%40" in value
        or _DIGIT_RUN.search(value) is not None
        or ("?" in value and _QUERY_NAME.search(value) is not None)
    )


def _may_match_bytes(value: bytes) -> bool:
    return (
        b"@" in value
        or b"%40" in value
        or _DIGIT_RUN_BYTES.search(value) is not None
        or (b"?" in value and _QUERY_NAME.search(value.decode("latin-1")) is not None)
    )


def _valid(kind: str, text: str) -> bool:
    if kind == CARD:
        digits = "".join(c for c in text if c.isdigit())
        return 13 <= len(digits) <= 19 and luhn(digits)
    if kind == PHONE:
        count = sum(c.isdigit() for c in text)
        return 8 <= count <= 15
    return True
