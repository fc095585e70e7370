-- Events: one row per accepted event, partitioned by day of event time.
--
-- Not the seed's UNLOGGED buffer table: an unlogged table is emptied by a
-- crash, and an event the ingest acknowledged must survive one. The consumer
-- writes straight into user_events, a batch at a time, and commits the Kafka
-- offsets only after this database has committed the rows.

CREATE TYPE event_type AS ENUM
    ('page_view', 'click', 'scroll', 'form_submit', 'hover', 'keydown', 'custom', 'identify');

-- A user agent is parsed once, not once per event: the consumer keeps the
-- text and what it means here and stores a 4-byte id in each event row.
CREATE TABLE user_agent (
    user_agent_id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_agent      text NOT NULL UNIQUE,
    browser         text,
    browser_version text,
    os              text,
    os_version      text,
    device_type     text NOT NULL,
    is_bot          boolean NOT NULL
);

-- Columns are ordered widest-aligned first so rows carry no padding.
CREATE TABLE user_events (
    event_timestamp          timestamptz NOT NULL,
    received_at              timestamptz NOT NULL,
    sent_at                  timestamptz,
    company_id               uuid NOT NULL,
    event_id                 uuid NOT NULL,
    event_type               event_type NOT NULL,
    user_agent_id            integer,
    x_coordinate             integer,
    y_coordinate             integer,
    session_duration_seconds integer,
    scroll_depth             smallint,
    is_bot                   boolean NOT NULL DEFAULT false,
    ip_address               inet,
    user_id                  text,
    anonymous_id             text,
    session_id               text,
    event_name               text,
    page_url                 text,
    page_title               text,
    referrer                 text,
    last_page_url            text,
    target_url               text,
    element_selector         text,
    element_text             text,
    element_type             text,
    utm_source               text,
    utm_medium               text,
    utm_campaign             text,
    utm_term                 text,
    utm_content              text,
    experiment_id            text,
    variant                  text,
    device_type              text,
    browser                  text,
    os                       text,
    country                  text,
    city                     text,
    region                   text,
    traits                   jsonb,
    metadata                 jsonb
) PARTITION BY RANGE (event_timestamp);

-- The seed's five single-column indexes, as they pay on daily partitions:
-- every read is one tenant over a time range, so company_id leads; the
-- timestamp and company_id indexes become one; event_type alone has a
-- handful of values and is left to the scan of the tenant's range.
CREATE INDEX user_events_company_time ON user_events (company_id, event_timestamp);
CREATE INDEX user_events_company_user ON user_events (company_id, user_id);
CREATE INDEX user_events_session ON user_events (session_id);

-- Exactly-once storage. A retried event may carry another timestamp (no
-- client time, or a Segment correction that moved by a few milliseconds
-- across midnight) and so land in another day's partition, where a
-- partition-local unique index would not see it. This table is global:
-- one row per (company, event id), keyed by a 16-byte digest of the pair.
-- Rows older than the longest retention are deleted: an event that old is
-- refused at ingest, so its retry can no longer arrive.
CREATE TABLE event_ids (
    event_key uuid PRIMARY KEY,
    seen_on   date NOT NULL DEFAULT current_date
);

-- Daily partitions: name user_events_pYYYYMMDD, range [day, day + 1).
CREATE FUNCTION userflow_ensure_partition(day date) RETURNS void
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

CREATE FUNCTION userflow_ensure_partitions(days_back integer, days_ahead integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM userflow_ensure_partition(d::date)
    FROM generate_series(current_date - days_back, current_date + days_ahead, interval '1 day') AS d;
END;
$$;

-- Retention: drop whole partitions older than every tenant's retention, and
-- delete the rows of tenants with a shorter retention from the ones kept.
CREATE FUNCTION userflow_apply_retention() RETURNS void
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
    FOR tenant IN SELECT company_id, retention_days FROM company WHERE retention_days < longest LOOP
        DELETE FROM user_events
        WHERE company_id = tenant.company_id
          AND event_timestamp < current_date - tenant.retention_days
          AND event_timestamp >= current_date - longest - 1;
    END LOOP;
    DELETE FROM event_ids WHERE seen_on < current_date - longest - 1;
END;
$$;

SELECT userflow_ensure_partitions(7, 7);
