"""The session-table KPIs as they were before issue 13's speed work (commit 46ff3f9), verbatim,
so that `embedded_ingest.py` prints the former and the shipped timings side by side.

They read `uniqExact(session_id)` and `LIMIT 1 BY session_id` after `FINAL` (which already
yields one row per session), and the abandonment KPI read the `events_resolved` and
`friction_resolved` views, which resolve every row's person for nothing.
"""

from __future__ import annotations

FORMER_KPIS = {
    "conversion": """SELECT
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
        uniqExact(session_id) AS sessions_touching,
        uniqExactIf(session_id, converted) AS converted_sessions_touching
    FROM
    (
        SELECT session_id, channels, converted
        FROM sessions FINAL
        WHERE {date_from:DateTime64(3)} <= started_at AND started_at < {date_to:DateTime64(3)}
        LIMIT 1 BY session_id
    )
    ARRAY JOIN channels AS channel
    GROUP BY channel
) AS s
FULL OUTER JOIN
(
    SELECT channel, uniqExact(event_id) AS purchases, sum(ifNull(value, 0)) AS revenue
    FROM
    (
        SELECT event_id, channel, value
        FROM events
        WHERE event_type = 'purchase' AND NOT duplicate_transaction AND {date_from:DateTime64(3)} <= occurred_at AND occurred_at < {date_to:DateTime64(3)}
        LIMIT 1 BY event_id
    )
    GROUP BY channel
) AS p USING (channel)
ORDER BY sessions_touching DESC, channel""",
    "bounce": """SELECT
    landing_page,
    if(length(channels) = 1, channels[1], 'omni') AS channel,
    uniqExact(session_id) AS sessions,
    uniqExactIf(session_id, bounced) AS bounces,
    round(bounces / sessions, 4) AS bounce_rate
FROM sessions FINAL
WHERE {date_from:DateTime64(3)} <= started_at AND started_at < {date_to:DateTime64(3)} AND landing_page != '' AND NOT is_open
GROUP BY landing_page, channel
HAVING sessions >= {min_sessions:UInt32}
ORDER BY sessions DESC
LIMIT {limit:UInt32}""",
    "abandonment": """SELECT
    device_type,
    uniqExactIf(session, kind = 'cart') AS carts,
    uniqExactIf(session, kind = 'cart' AND abandoned = 1) AS carts_abandoned,
    round(if(carts = 0, 0, carts_abandoned / carts), 4) AS cart_abandonment_rate,
    uniqExactIf(session, kind = 'checkout') AS checkouts,
    uniqExactIf(session, kind = 'checkout' AND abandoned = 1) AS checkouts_abandoned,
    round(if(checkouts = 0, 0, checkouts_abandoned / checkouts), 4) AS checkout_abandonment_rate
FROM
(
    SELECT resolved_session_id AS session,
           if(event_type = 'add_to_cart', 'cart', 'checkout') AS kind,
           argMin(device_type, (occurred_at, event_id)) AS device_type
    FROM events_resolved
    WHERE {date_from:DateTime64(3)} <= occurred_at AND occurred_at < {date_to:DateTime64(3)} AND event_type IN ('add_to_cart', 'begin_checkout', 'add_shipping_info', 'add_payment_info')
    GROUP BY session, kind
) AS s
LEFT JOIN
(
    SELECT DISTINCT resolved_session_id AS session,
           if(type = 'cart_abandoned', 'cart', 'checkout') AS kind,
           toUInt8(1) AS abandoned
    FROM friction_resolved
    WHERE type IN ('cart_abandoned', 'checkout_abandoned')
      AND occurred_at >= {date_from:DateTime64(3)}
) AS f USING (session, kind)
GROUP BY device_type
ORDER BY carts DESC, device_type""",
}
