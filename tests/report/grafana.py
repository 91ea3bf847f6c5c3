"""What Grafana and its ClickHouse plugin do to a panel's SQL before sending it, for the tests:
dashboard variables substituted (`$name`, `${name}`, `${name:singlequote}`), then the plugin's
time macros expanded as its README documents them (`$__timeFilter_ms(col)`,
`$__fromTime_ms`, `$__toTime_ms`, and the second-precision forms)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
MACROS = (
    "$__timeFilter_ms",
    "$__timeFilter",
    "$__fromTime_ms",
    "$__toTime_ms",
    "$__fromTime",
    "$__toTime",
)


def variables_used(text: str) -> set[str]:
    return {m.group(1) or m.group(3) for m in _VARIABLE.finditer(text)}


def substitute(
    sql: str, values: Mapping[str, str | Sequence[str]], start: datetime, end: datetime
) -> str:
    def variable(match: re.Match[str]) -> str:
        name, fmt = match.group(1) or match.group(3), match.group(2)
        value = values[name]
        items = [value] if isinstance(value, str) else list(value)
        if fmt == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in items)
        if fmt is not None:
            raise ValueError(f"format {fmt} not emulated")
        return ",".join(items)

    sql = _VARIABLE.sub(variable, sql)
    f_ms, t_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    f_s, t_s = f_ms // 1000, t_ms // 1000
    sql = re.sub(
        r"\$__timeFilter_ms\(([^)]+)\)",
        rf"\1 >= fromUnixTimestamp64Milli({f_ms}) AND \1 <= fromUnixTimestamp64Milli({t_ms})",
        sql,
    )
    sql = re.sub(
        r"\$__timeFilter\(([^)]+)\)", rf"\1 >= toDateTime({f_s}) AND \1 <= toDateTime({t_s})", sql
    )
    sql = sql.replace("$__fromTime_ms", f"fromUnixTimestamp64Milli({f_ms})")
    sql = sql.replace("$__toTime_ms", f"fromUnixTimestamp64Milli({t_ms})")
    sql = sql.replace("$__fromTime", f"toDateTime({f_s})").replace(
        "$__toTime", f"toDateTime({t_s})"
    )
    if "$" in sql:
        raise ValueError(f"not substituted: {sql[sql.index('$') :][:40]}")
    return sql
