-- Each process's role gets what it needs and no more (the roles: sql/bootstrap.sql).
--
-- Run as the schema's owner (userflow_migrator, or the owner a managed
-- PostgreSQL such as CloudNativePG made); every later migration that adds a
-- table grants it to whoever needs it. Column lists keep personal data
-- (contact email, phone) away from the processes that need none of it.
DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles WHERE rolname IN (
            'userflow_consumer', 'userflow_ingest', 'userflow_operator', 'userflow_reader')) < 4 THEN
        RAISE EXCEPTION 'the roles userflow_consumer, userflow_ingest, userflow_operator and '
            'userflow_reader do not exist: run `userflow db bootstrap` (sql/bootstrap.sql) as a '
            'superuser first';
    END IF;
END;
$$;

-- Functions are PUBLIC's to execute by default; ours are granted one by one.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Making a day's partition needs the owner of user_events; the consumer asks
-- for it through this function, which can do nothing else.
ALTER FUNCTION userflow_ensure_partition(date) SECURITY DEFINER SET search_path = public, pg_temp;

-- Deleting a tenant's data (the operator's Purge), without DELETE on every event.
CREATE FUNCTION userflow_purge_company(target uuid) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    events bigint;
BEGIN
    -- The ids leave the ledger with their events (a data-modifying CTE always runs).
    WITH gone AS (
        DELETE FROM user_events WHERE company_id = target
        RETURNING userflow_event_digest(company_id, event_id) AS id_digest
    ), forgotten AS (
        DELETE FROM event_ledger l USING gone WHERE l.id_digest = gone.id_digest
    )
    SELECT count(*) INTO events FROM gone;
    DELETE FROM company WHERE company_id = target;  -- its keys cascade
    RETURN events;
END;
$$;
REVOKE EXECUTE ON FUNCTION userflow_purge_company(uuid) FROM PUBLIC;

-- ingest: the tenant settings it enforces and the hashes of live keys.
GRANT SELECT (company_id, slug, retention_days, topic_mode, legacy_keyless_ingest,
              allowed_origins, rate_limit_per_second) ON company TO userflow_ingest;
GRANT SELECT (company_id, kind, key_hash, revoked_at, revoke_after) ON api_key TO userflow_ingest;

-- consumer: events in, and the user agents and texts they point at.
GRANT INSERT ON user_events TO userflow_consumer;
GRANT SELECT, INSERT ON event_ledger, user_agent, text_value TO userflow_consumer;
GRANT EXECUTE ON FUNCTION userflow_ensure_partition(date), userflow_event_digest(uuid, uuid)
    TO userflow_consumer;

-- operator (and `userflow tenant`): companies and keys.
GRANT SELECT, INSERT, UPDATE, DELETE ON company, api_key TO userflow_operator;
GRANT EXECUTE ON FUNCTION userflow_purge_company(uuid) TO userflow_operator;

-- reader: the events and what they point at, the views and rollups; of the
-- companies only what names them. Tenants are kept apart by the read side.
GRANT SELECT ON user_events, events, user_agent, text_value, mv_user_activity,
                mv_daily_event_summary TO userflow_reader;
GRANT SELECT (company_id, slug, name, subscription_tier, retention_days, created_at)
    ON company TO userflow_reader;
