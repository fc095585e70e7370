-- Grafana's data source: userflow_dashboards (the role: sql/bootstrap.sql).
--
-- The product dashboards (dashboards/*.json) are the platform team's tool and
-- show every tenant, one at a time through a tenant variable, so they cannot
-- read as userflow_reader, which sees only the company of one read key. This
-- role reads what the panels read, for every company, and nothing else: the
-- events view and the tables it is made of, the rollups and the seed's
-- materialized views, and of the companies only what names them. It reads no
-- key (api_key), no contact details, nothing pending or internal
-- (rollup_pending, event_ledger, schema_migrations), and writes nothing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'userflow_dashboards') THEN
        RAISE EXCEPTION 'the role userflow_dashboards does not exist: run `userflow db bootstrap` '
            '(sql/bootstrap.sql) as a superuser first';
    END IF;
END;
$$;

GRANT SELECT ON events, user_events, user_agent, text_value, session_rollup, session_page_rollup,
                actor_hour_rollup, mv_user_activity, mv_daily_event_summary TO userflow_dashboards;
GRANT SELECT (company_id, slug, name) ON company TO userflow_dashboards;
-- The panels speak of pages (a path, query and fragment ignored) and referrer domains as
-- the analytics do.
GRANT EXECUTE ON FUNCTION userflow_url_path(text), userflow_url_host(text) TO userflow_dashboards;
