-- The demo's summary of one company's data, read as the tenant's reader sees it:
-- psql -v read_key=<read key> -f scripts/summary.sql
-- (the tenant schema shows only the company of that key; bots are left out,
-- as in every metric). The same figures come from the query API.
\set QUIET on
\pset footer off
SELECT userflow_bind_read_key(:'read_key', true) \g /dev/null

\echo
\echo 'Totals'
SELECT count(*) FILTER (WHERE NOT is_bot) AS events,
       count(DISTINCT actor) FILTER (WHERE NOT is_bot) AS users,
       count(DISTINCT session_id) FILTER (WHERE NOT is_bot) AS sessions,
       count(*) FILTER (WHERE is_bot) AS bot_events
FROM tenant.events;

\echo 'Sessions: bounce rate and median duration (session_rollup)'
SELECT count(*) AS sessions,
       round(100.0 * count(*) FILTER (WHERE page_views = 1 AND engaged = 0) / nullif(count(*), 0), 1)
           AS bounce_rate_pct,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ended_at - started_at) AS median_duration
FROM tenant.session_rollup WHERE NOT is_bot;

\echo 'Top pages (session_page_rollup)'
SELECT page, sum(views) AS views, count(DISTINCT actor) AS visitors
FROM tenant.session_page_rollup WHERE NOT is_bot
GROUP BY 1 ORDER BY views DESC LIMIT 8;

\echo 'By device'
SELECT coalesce(device_type, 'unknown') AS device, count(*) AS sessions,
       count(DISTINCT actor) AS users
FROM tenant.session_rollup WHERE NOT is_bot GROUP BY 1 ORDER BY sessions DESC;

\echo 'By country'
SELECT coalesce(country, '??') AS country, count(DISTINCT actor) AS users
FROM tenant.session_rollup WHERE NOT is_bot GROUP BY 1 ORDER BY users DESC LIMIT 8;
