-- Exactly once across any distance: one ledger of every stored event id.
--
-- Each day's partition had a unique index on (company_id, event_id), and the
-- consumer looked for the id a day either side before it inserted; a retry
-- whose timestamp lay further away (a client without a clock that retries the
-- next week, a skew correction gone wrong) was stored twice. The ledger holds
-- every tenant's ids whatever their time: the consumer inserts a batch's ids
-- here first, and only the rows whose id was new go into user_events, in the
-- same transaction. It replaces the per-partition unique indexes (one random
-- btree insert an event either way) and the probe of three partitions.
--
-- An id is kept as its digest: the first 128 bits of SHA-256 over the company's
-- and the event's id: one 16-byte key, tenant-scoped (another tenant's same id is
-- another key), where the pair took 32. In `make bench` runs a ledger of pairs
-- took about 133 bytes an event (its size over the rows, heap and index), this
-- one 93.7. Finding a second id with a given digest is finding a SHA-256 second
-- preimage.
--
-- Its own retention: an id is kept as long as its event (userflow_apply_retention
-- below), so the ledger grows with the data and no further. event_timestamp is
-- the stored row's, so the id leaves with it; BRIN, as ids arrive in time order.
CREATE FUNCTION userflow_event_digest(company uuid, event uuid) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT encode(substring(sha256(uuid_send(company) || uuid_send(event)) FROM 1 FOR 16),
                  'hex')::uuid
$$;

CREATE TABLE event_ledger (
    id_digest       uuid PRIMARY KEY,
    event_timestamp timestamptz NOT NULL
);
CREATE INDEX event_ledger_time ON event_ledger USING brin (event_timestamp);

INSERT INTO event_ledger (id_digest, event_timestamp)
SELECT userflow_event_digest(company_id, event_id), min(event_timestamp) FROM user_events
GROUP BY 1
ON CONFLICT DO NOTHING;

-- The partitions' unique indexes are the ledger's job now.
DO $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'user_events'::regclass
    LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I', part.relname || '_event');
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION userflow_ensure_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('user_events_p%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN;
    END IF;
    -- Two consumers may ask for the same day at once.
    PERFORM pg_advisory_xact_lock(hashtext('userflow_ensure_partition'));
    IF to_regclass(part) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF user_events FOR VALUES FROM (%L) TO (%L)',
            part, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    END IF;
END;
$$;

-- Retention, as before, and the ledger's ids leave with their events.
CREATE OR REPLACE FUNCTION userflow_apply_retention() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    longest integer;
    part record;
    tenant record;
BEGIN
    SELECT coalesce(max(retention_days), 0) INTO longest FROM company;
    FOR part IN
        SELECT c.relname, to_date(substring(c.relname FROM 14), 'YYYYMMDD') AS day
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'user_events'::regclass AND c.relname ~ '^user_events_p[0-9]{8}$'
    LOOP
        IF part.day < current_date - longest THEN
            EXECUTE format('DROP TABLE %I', part.relname);
        END IF;
    END LOOP;
    DELETE FROM event_ledger WHERE event_timestamp < current_date - longest;
    FOR tenant IN SELECT company_id, retention_days FROM company WHERE retention_days < longest LOOP
        WITH gone AS (
            DELETE FROM user_events
            WHERE company_id = tenant.company_id
              AND event_timestamp < current_date - tenant.retention_days
              AND event_timestamp >= current_date - longest - 1
            RETURNING userflow_event_digest(company_id, event_id) AS id_digest)
        DELETE FROM event_ledger l USING gone WHERE l.id_digest = gone.id_digest;
    END LOOP;
END;
$$;
