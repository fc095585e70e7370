-- What the Kubernetes operator needs to keep a Company resource and its row in step.
--
-- k8s_owner is the Company resource ("namespace/name") that manages the row,
-- NULL for a tenant made with `userflow tenant create`. The operator updates
-- only the row it owns, so a Company of the same name in another namespace
-- cannot take over a tenant's row, topic or keys. k8s_uid is that resource's
-- uid (a Company deleted with Retain and made again gets a new one).
ALTER TABLE company
    ADD COLUMN k8s_owner text UNIQUE,
    ADD COLUMN k8s_uid   uuid;

-- Key rotation with a grace period: the replaced key keeps working until
-- revoke_after, then revoked_at is set (by the operator, or by the pg_cron job
-- below where pg_cron runs). The ingest reads revoked_at only.
ALTER TABLE api_key ADD COLUMN revoke_after timestamptz;
CREATE INDEX api_key_revoke_due ON api_key (revoke_after)
    WHERE revoked_at IS NULL AND revoke_after IS NOT NULL;

CREATE FUNCTION userflow_revoke_due_keys() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    -- Only when something is due: the statement trigger on api_key tells every
    -- ingest to reload, and an UPDATE of no rows would still fire it.
    IF NOT EXISTS (SELECT 1 FROM api_key WHERE revoked_at IS NULL AND revoke_after <= now()) THEN
        RETURN 0;
    END IF;
    UPDATE api_key SET revoked_at = now() WHERE revoked_at IS NULL AND revoke_after <= now();
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- A backstop for when the operator is down: due keys are revoked within a minute.
DO $$
BEGIN
    IF current_setting('cron.database_name', true) IS DISTINCT FROM current_database() THEN
        RAISE NOTICE 'pg_cron is not available in database %; key revocation job not scheduled',
            current_database();
        RETURN;
    END IF;
    CREATE EXTENSION IF NOT EXISTS pg_cron;
    PERFORM cron.schedule('userflow-revoke-keys', '* * * * *', 'SELECT userflow_revoke_due_keys()');
END;
$$;
