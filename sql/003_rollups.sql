-- The seed's materialized views, with its slips mended ('relick' counted
-- page views, and the refresh named a view that does not exist). Bots are
-- left out, as in every metric. The unique indexes let pg_cron refresh them
-- CONCURRENTLY, so dashboards keep reading while they refresh.

CREATE MATERIALIZED VIEW mv_user_activity AS
SELECT
    company_id,
    coalesce(user_id, anonymous_id) AS user_id,
    count(*) AS total_events,
    count(*) FILTER (WHERE event_type = 'click') AS total_clicks,
    count(*) FILTER (WHERE event_type = 'page_view') AS total_page_views,
    max(event_timestamp) AS last_activity_timestamp
FROM user_events
WHERE event_timestamp >= now() - interval '1 hour'
  AND NOT is_bot
  AND coalesce(user_id, anonymous_id) IS NOT NULL
GROUP BY company_id, coalesce(user_id, anonymous_id);

CREATE UNIQUE INDEX mv_user_activity_key ON mv_user_activity (company_id, user_id);

CREATE MATERIALIZED VIEW mv_daily_event_summary AS
SELECT
    (event_timestamp AT TIME ZONE 'UTC')::date AS event_date,
    company_id,
    event_type,
    count(*) AS event_count
FROM user_events
WHERE event_timestamp >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day'
  AND NOT is_bot
GROUP BY 1, 2, 3;

CREATE UNIQUE INDEX mv_daily_event_summary_key
    ON mv_daily_event_summary (event_date, company_id, event_type);

-- pg_cron can only be created in the database named by cron.database_name;
-- elsewhere (a scratch database, a managed service without it) the schema
-- still applies and the jobs are left to whoever runs that database.
DO $$
BEGIN
    IF current_setting('cron.database_name', true) IS DISTINCT FROM current_database() THEN
        RAISE NOTICE 'pg_cron is not available in database %; jobs not scheduled', current_database();
        RETURN;
    END IF;
    CREATE EXTENSION IF NOT EXISTS pg_cron;
    PERFORM cron.schedule('userflow-refresh-views', '*/10 * * * *', $job$
        REFRESH MATERIALIZED VIEW CONCURRENTLY mv_user_activity;
        REFRESH MATERIALIZED VIEW CONCURRENTLY mv_daily_event_summary;
    $job$);
    PERFORM cron.schedule('userflow-partitions', '7 * * * *',
        'SELECT userflow_ensure_partitions(1, 7)');
    PERFORM cron.schedule('userflow-retention', '17 3 * * *',
        'SELECT userflow_apply_retention()');
END;
$$;
