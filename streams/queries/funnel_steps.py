"""Funnel steps and their filters: parsed from the command line, turned into bound SQL.

A step is an event type with optional filters, PostHog-style operators on a column or a
property: `purchase[channel=store]`, `purchase[channel!=web]`, `view_item[channel in web|app]`,
`purchase[value>50]`, `purchase[properties.items<3]`. Every value travels as a parameter; only
names checked against a list (columns) or passed as parameters (property names) reach the SQL.
Equality and `in` compare text (`JSONExtractString`); `>`/`<`/`>=`/`<=` compare numbers and are
false for a row whose property is missing or not a number (a missing price is not "< 10").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from streams.queries.query import QueryError

#: Text columns a step may filter on (properties are `properties.NAME`).
FILTER_COLUMNS = {"channel", "device_type", "page", "item_id", "currency"}
#: Numeric columns a step may compare with > < >= <=.
NUMERIC_COLUMNS = {"value"}
OPERATORS = ("!=", ">=", "<=", "=", ">", "<", " in ")
_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_FILTER = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(!=|>=|<=|=|>|<|\s+in\s+)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Filter:
    """`name op value`; `in` takes `a|b|c`."""

    name: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str, where: str) -> Filter:
        match = _FILTER.match(text)
        if not match:
            raise QueryError(
                f"{where}: filter {text!r} is not field=value (or !=, >, <, >=, <=, in a|b)"
            )
        name, op, value = match.group(1), match.group(2).strip(), match.group(3)
        return cls(name, op, value)


@dataclass(frozen=True)
class Step:
    """One funnel step: an event type and optional filters (all must hold)."""

    event_type: str
    filters: tuple[Filter, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Step:
        """`purchase` or `purchase[channel=store,properties.coupon=XMAS,value>20]`."""
        match = re.fullmatch(r"([a-z0-9_]+)(?:\[(.*)\])?", text.strip())
        if not match:
            raise QueryError(f"step {text!r}: expected event_type or event_type[field=value,…]")
        filters = tuple(
            Filter.parse(item, f"step {text!r}")
            for item in filter(None, (match.group(2) or "").split(","))
        )
        return cls(match.group(1), filters)


def step_condition(step: Step, prefix: str, params: dict[str, Any]) -> str:
    """The SQL condition of `step` (event type and filters), its values bound as `{prefix}_…`."""
    if not _TYPE.match(step.event_type):
        raise QueryError(f"{prefix}: {step.event_type!r} is not an event type")
    params[f"{prefix}_type"] = step.event_type
    parts = [f"event_type = {{{prefix}_type:String}}"]
    for j, f in enumerate(step.filters):
        parts.append(_filter_condition(f, f"{prefix}_{j}", prefix, params))
    return " AND ".join(parts)


def _filter_condition(f: Filter, key: str, where: str, params: dict[str, Any]) -> str:
    numeric = f.op in (">", "<", ">=", "<=")
    if f.name.startswith("properties.") and len(f.name) > len("properties."):
        params[f"{key}_p"] = f.name.removeprefix("properties.")
        column = (
            f"JSONExtract(properties, {{{key}_p:String}}, 'Nullable(Float64)')"
            if numeric
            else f"JSONExtractString(properties, {{{key}_p:String}})"
        )
    elif (numeric and f.name in NUMERIC_COLUMNS) or (not numeric and f.name in FILTER_COLUMNS):
        column = f.name
    else:
        allowed = sorted(NUMERIC_COLUMNS if numeric else FILTER_COLUMNS)
        raise QueryError(
            f"{where}: cannot filter on {f.name!r} with {f.op!r}; use one of {allowed} or properties.NAME"
        )
    if numeric:
        try:
            params[f"{key}_v"] = float(f.value)
        except ValueError:
            raise QueryError(f"{where}: {f.name} {f.op} {f.value!r}: not a number") from None
        return f"ifNull({column} {f.op} {{{key}_v:Float64}}, false)"
    if f.op == "in":
        values = [v.strip() for v in f.value.split("|")]
        if not all(values):
            raise QueryError(f"{where}: {f.name} in {f.value!r}: use a|b|c, no empty value")
        params[f"{key}_v"] = values
        return f"has({{{key}_v:Array(String)}}, {column})"
    params[f"{key}_v"] = f.value
    return f"{column} {f.op} {{{key}_v:String}}"
