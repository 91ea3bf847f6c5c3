SELECT
    touchpoint,
    channel,
    countIf(kind = 'nps') AS nps_responses,
    if(nps_responses = 0, nan,
       round(100 * (countIf(kind = 'nps' AND score >= 9) - countIf(kind = 'nps' AND score <= 6))
             / nps_responses, 1)) AS nps,
    countIf(kind = 'csat') AS csat_responses,
    if(csat_responses = 0, nan,
       round(100 * countIf(kind = 'csat' AND score >= 4) / csat_responses, 1)) AS csat_percent,
    countIf(kind = 'ces') AS ces_responses,
    if(ces_responses = 0, nan, round(avgIf(score, kind = 'ces'), 2)) AS ces
FROM
(
    SELECT
        if(JSONExtractString(properties, 'touchpoint') = '', '(unnamed)',
           JSONExtractString(properties, 'touchpoint')) AS touchpoint,
        channel,
        JSONExtractString(properties, 'kind') AS kind,
        JSONExtractFloat(properties, 'score') AS score
    FROM events
    WHERE event_type = 'survey_response' AND occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)}
    LIMIT 1 BY event_id
)
GROUP BY touchpoint, channel
ORDER BY nps_responses + csat_responses + ces_responses DESC, touchpoint, channel
