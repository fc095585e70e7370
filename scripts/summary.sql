-- The demo's summary of one company's events (bots left out, as in every metric).
-- psql -v company=<uuid> -f scripts/summary.sql
\set QUIET on
\pset footer off
-- A subquery in a psql variable, not a temporary view: the read-only role
-- this runs as (userflow_reader) may not create objects, temporary ones included.
\set demo_events '(SELECT * FROM events WHERE company_id = ' :'company' ' AND NOT is_bot) AS e'

\echo
\echo 'Totals'
SELECT count(*) AS events,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS users,
       count(DISTINCT session_id) AS sessions,
       (SELECT count(*) FROM user_events WHERE company_id = :'company' AND is_bot) AS bot_events
FROM :demo_events;

\echo 'Sessions: bounce rate and median duration'
WITH s AS (
    SELECT session_id,
           count(*) FILTER (WHERE event_type = 'page_view') AS views,
           count(*) FILTER (WHERE event_type IN ('click', 'form_submit', 'custom')) AS engaged,
           max(event_timestamp) - min(event_timestamp) AS duration
    FROM :demo_events WHERE session_id IS NOT NULL GROUP BY session_id)
SELECT count(*) AS sessions,
       round(100.0 * count(*) FILTER (WHERE views = 1 AND engaged = 0) / nullif(count(*), 0), 1)
           AS bounce_rate_pct,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration) AS median_duration
FROM s;

\echo 'Top pages'
SELECT regexp_replace(page_url, '\?.*$', '') AS page, count(*) AS views,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS visitors
FROM :demo_events WHERE event_type = 'page_view'
GROUP BY 1 ORDER BY views DESC LIMIT 8;

\echo 'By device'
SELECT coalesce(device_type, 'unknown') AS device, count(*) AS events,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS users,
       count(DISTINCT session_id) AS sessions
FROM :demo_events GROUP BY 1 ORDER BY events DESC;

\echo 'By country'
SELECT coalesce(country, '??') AS country, count(DISTINCT coalesce(user_id, anonymous_id)) AS users
FROM :demo_events GROUP BY 1 ORDER BY users DESC LIMIT 8;
