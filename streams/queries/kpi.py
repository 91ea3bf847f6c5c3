"""The KPIs of the product brief, each one query with bound parameters.

Counts are distinct ids (uniqExact), never row counts, and sums or medians read rows deduplicated
by id first (`LIMIT 1 BY id`, after the time filter), so a duplicate row not yet merged away by
ReplacingMergeTree cannot inflate a figure (see infra/clickhouse/0001_tables.sql). Sessions and
signals are read `FINAL`: their newest version only, withdrawn ones left out (0004). Sessions are
counted under every channel they touched (a web-then-store session counts for web and for
store: "sessions touching"); revenue goes to the channel of each purchase.

Speed (issue 13: session-table KPIs under 200 ms on 10M events). `sessions` is ordered by
`session_id` alone and not partitioned, so `sessions FINAL` yields exactly one row per session:
counting its rows is counting distinct sessions, and `count()` replaces `uniqExact(session_id)`
and `LIMIT 1 BY session_id` (each a hash table of every session id: most of the former cost).
Session ids are only resolved through `session_merges` (one small join), never through the
identity views, which would also resolve every row's person for nothing.
"""

from __future__ import annotations

from datetime import datetime

from streams.queries.query import Query, QueryError

_RANGE = "{date_from:DateTime64(3)} <= {col} AND {col} < {date_to:DateTime64(3)}"


def _range(column: str) -> str:
    return _RANGE.replace("{col}", column)


def conversion_by_channel() -> str:
    """Per channel: the sessions touching it, and the purchases made on it.

    Two different questions, so two clearly named groups of figures. *Sessions touching the
    channel* count a web-then-store session under web and under store (how much of the traffic
    that converts passes through a channel). *Revenue* is attributed to the channel of the
    purchase itself: a 99 € receipt at the till of a web+app+store session is 99 € for store
    and nothing for web or app, so revenue adds up across channels to the total sold (the
    `revenue` of the per-minute totals: every purchase of the range that is not a copy of one
    already counted, `duplicate_transaction`). Crediting a session's whole revenue to every
    channel it touched (what this KPI did before) counted that 99 € three times.
    """
    return f"""SELECT
    channel,
    s.sessions_touching AS sessions_touching,
    s.converted_sessions_touching AS converted_sessions_touching,
    round(if(sessions_touching = 0, 0, converted_sessions_touching / sessions_touching), 4)
        AS conversion_rate_touching,
    p.purchases AS purchases,
    round(p.revenue, 2) AS revenue
FROM
(
    SELECT
        channel,
        count() AS sessions_touching,
        countIf(converted) AS converted_sessions_touching
    FROM
    (
        SELECT channels, converted
        FROM sessions FINAL
        WHERE {_range("started_at")}
    )
    ARRAY JOIN arrayDistinct(channels) AS channel
    GROUP BY channel
) AS s
FULL OUTER JOIN
(
    SELECT channel, uniqExact(event_id) AS purchases, sum(ifNull(value, 0)) AS revenue
    FROM
    (
        SELECT event_id, channel, value
        FROM events
        WHERE event_type = 'purchase' AND NOT duplicate_transaction AND {_range("occurred_at")}
        LIMIT 1 BY event_id
    )
    GROUP BY channel
) AS p USING (channel)
ORDER BY sessions_touching DESC, channel"""


def bounce_by_landing_page() -> str:
    return f"""SELECT
    landing_page,
    if(length(channels) = 1, channels[1], 'omni') AS channel,
    count() AS sessions,
    countIf(bounced) AS bounces,
    round(bounces / sessions, 4) AS bounce_rate
FROM sessions FINAL
WHERE {_range("started_at")} AND landing_page != '' AND NOT is_open
GROUP BY landing_page, channel
HAVING sessions >= {{min_sessions:UInt32}}
ORDER BY sessions DESC
LIMIT {{limit:UInt32}}"""


#: A merged session's id -> the session it joined (as events_resolved resolves it).
_MERGES = (
    "SELECT session_id AS merged_session_id, any(merged_into) AS merged_into "
    "FROM session_merges GROUP BY session_id"
)

CHECKOUT_STEPS = ("begin_checkout", "add_shipping_info", "add_payment_info")


def abandonment_by_device_type() -> str:
    """Cart and checkout abandonment per device type, counted in sessions on both sides.

    Carts: sessions with an `add_to_cart`; abandoned: those of them with a `cart_abandoned`
    signal. Checkouts: sessions with checkout activity (begin_checkout, add_shipping_info,
    add_payment_info, where a checkout attempt opens); abandoned: those of them with a
    `checkout_abandoned` signal. A session is attributed to the device type of its *first*
    add_to_cart (first checkout step) in both counts, so a rate is a share of the same sessions
    and stays within [0, 1]. (Signals carry the device where the session or attempt ended; a
    cart filled on desktop and abandoned on mobile used to count as a desktop cart and a mobile
    abandonment.) Sessions are resolved through session_merges on both sides (the rule of
    `events_resolved` / `friction_resolved`, 0003/0004, applied with one join each: those views
    would also resolve every row's person, unused here); the range applies to the cart
    (checkout) events, and a signal counts when its session is in the range. Both sides are
    one row per (session, kind) (GROUP BY, DISTINCT), so the join gives one row per session and
    kind, and counting rows counts sessions.
    """
    steps = ", ".join(f"'{t}'" for t in CHECKOUT_STEPS)
    return f"""SELECT
    device_type,
    countIf(kind = 'cart') AS carts,
    countIf(kind = 'cart' AND abandoned = 1) AS carts_abandoned,
    round(if(carts = 0, 0, carts_abandoned / carts), 4) AS cart_abandonment_rate,
    countIf(kind = 'checkout') AS checkouts,
    countIf(kind = 'checkout' AND abandoned = 1) AS checkouts_abandoned,
    round(if(checkouts = 0, 0, checkouts_abandoned / checkouts), 4) AS checkout_abandonment_rate
FROM
(
    SELECT if(m.merged_into != '', m.merged_into, e.session_id) AS session,
           if(e.event_type = 'add_to_cart', 'cart', 'checkout') AS kind,
           argMin(e.device_type, (e.occurred_at, e.event_id)) AS device_type
    FROM
    (
        SELECT session_id, event_type, device_type, occurred_at, event_id
        FROM events
        WHERE {_range("occurred_at")} AND event_type IN ('add_to_cart', {steps})
    ) AS e
    LEFT JOIN ({_MERGES}) AS m ON e.session_id = m.merged_session_id
    GROUP BY session, kind
) AS s
LEFT JOIN
(
    SELECT DISTINCT if(m.merged_into != '', m.merged_into, f.session_id) AS session,
           if(f.type = 'cart_abandoned', 'cart', 'checkout') AS kind,
           toUInt8(1) AS abandoned
    FROM
    (
        SELECT session_id, type
        FROM friction FINAL
        WHERE type IN ('cart_abandoned', 'checkout_abandoned')
          AND occurred_at >= {{date_from:DateTime64(3)}}
    ) AS f
    LEFT JOIN ({_MERGES}) AS m ON f.session_id = m.merged_session_id
) AS f USING (session, kind)
GROUP BY device_type
ORDER BY carts DESC, device_type"""


def channel_switches() -> str:
    return f"""SELECT
    JSONExtractString(details, 'checkout_channel') AS checkout_channel,
    JSONExtractString(details, 'purchase_channel') AS purchase_channel,
    uniqExact(signal_id) AS switches,
    round(median(JSONExtractFloat(details, 'minutes_after_checkout')), 1) AS median_minutes
FROM
(
    SELECT signal_id, details
    FROM friction FINAL
    WHERE type = 'channel_switch' AND {_range("occurred_at")}
    LIMIT 1 BY signal_id
)
GROUP BY checkout_channel, purchase_channel
ORDER BY switches DESC"""


def friction_over_time(by: str = "day", signal_type: str | None = None) -> str:
    """Signals per period, type and channel; `in_spike` marks a period that overlaps a friction
    spike of its type and channel, every device together (`friction_spikes`, streams/core/spikes.py)."""
    bucket = {"day": "toDate(occurred_at)", "hour": "toStartOfHour(occurred_at)"}.get(by)
    if bucket is None:
        raise QueryError("friction can be grouped --by day or hour")
    length = {"day": 86400, "hour": 3600}[by]
    type_filter = " AND type = {signal_type:String}" if signal_type else ""
    return f"""SELECT
    f.{by} AS {by},
    f.type AS type,
    f.channel AS channel,
    f.signals AS signals,
    toBool(arrayExists(
        (s, e) -> s < f.period_start + {length} AND e > f.period_start, sp.starts, sp.ends
    )) AS in_spike
FROM (
    SELECT
        {bucket} AS {by},
        toDateTime({by}, 'UTC') AS period_start,
        type,
        channel,
        uniqExact(signal_id) AS signals
    FROM friction FINAL
    WHERE {_range("occurred_at")}{type_filter}
    GROUP BY {by}, type, channel
) AS f
LEFT JOIN (
    SELECT type, channel, groupArray(toDateTime(started_at, 'UTC')) AS starts,
        groupArray(toDateTime(ended_at, 'UTC')) AS ends
    FROM friction_spikes FINAL
    WHERE device_type = ''
    GROUP BY type, channel
) AS sp ON f.type = sp.type AND f.channel = sp.channel
ORDER BY {by}, type, channel"""


KPIS = {
    "conversion": conversion_by_channel,
    "bounce": bounce_by_landing_page,
    "abandonment": abandonment_by_device_type,
    "channel_switch": channel_switches,
}


def kpi_query(
    name: str, date_from: datetime, date_to: datetime, *, limit: int = 20, min_sessions: int = 1
) -> Query:
    builder = KPIS.get(name)
    if builder is None:
        raise QueryError(f"unknown KPI {name!r}; one of {', '.join(KPIS)}")
    params = {
        "date_from": date_from,
        "date_to": date_to,
        "limit": limit,
        "min_sessions": min_sessions,
    }
    return Query(builder(), params)


def friction_query(
    date_from: datetime, date_to: datetime, by: str = "day", signal_type: str | None = None
) -> Query:
    params: dict[str, object] = {"date_from": date_from, "date_to": date_to}
    if signal_type:
        params["signal_type"] = signal_type
    return Query(friction_over_time(by, signal_type), params)
