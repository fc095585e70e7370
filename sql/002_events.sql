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

-- URLs, page titles and element texts repeat across events (every event on
-- a page carries its URL, title and referrer); each distinct text is stored
-- once and rows hold a 4-byte id. This halves a typical row. The digest
-- index keeps texts of any length unique (a btree entry is capped at ~2.7 KB).
CREATE TABLE text_value (
    text_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    value   text NOT NULL
);
CREATE UNIQUE INDEX text_value_digest ON text_value ((md5(value)::uuid));

-- Columns are ordered widest-aligned first so rows carry no padding.
-- device_type, browser and os hold only what a client sent explicitly; what
-- the user agent says lives in user_agent (see the events view).
CREATE TABLE user_events (
    event_timestamp          timestamptz NOT NULL,
    received_at              timestamptz NOT NULL,
    sent_at                  timestamptz,
    company_id               uuid NOT NULL,
    event_id                 uuid NOT NULL,
    event_type               event_type NOT NULL,
    user_agent_id            integer,
    page_url_id              integer,
    page_title_id            integer,
    referrer_id              integer,
    last_page_url_id         integer,
    target_url_id            integer,
    element_selector_id      integer,
    element_text_id          integer,
    x_coordinate             integer,
    y_coordinate             integer,
    session_duration_seconds integer,
    scroll_depth             smallint CHECK (scroll_depth BETWEEN 0 AND 100),
    is_bot                   boolean NOT NULL DEFAULT false,
    ip_address               inet,
    user_id                  text,
    anonymous_id             text,
    session_id               text,
    event_name               text,
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

-- The event as it was sent, plus what enrichment made of it: the read model
-- for the analytics layer, the dashboards and people with psql. Joins a query
-- does not use are removed by the planner (each is on a unique key).
CREATE VIEW events AS
SELECT
    e.event_id, e.event_timestamp, e.received_at, e.sent_at, e.company_id, e.event_type,
    e.user_id, e.anonymous_id, e.session_id, e.event_name,
    page_url.value AS page_url, page_title.value AS page_title, referrer.value AS referrer,
    last_page_url.value AS last_page_url, target_url.value AS target_url,
    element_selector.value AS element_selector, element_text.value AS element_text,
    e.element_type, e.x_coordinate, e.y_coordinate, e.scroll_depth, e.session_duration_seconds,
    e.utm_source, e.utm_medium, e.utm_campaign, e.utm_term, e.utm_content,
    e.experiment_id, e.variant,
    ua.user_agent, e.ip_address,
    coalesce(e.device_type, ua.device_type) AS device_type,
    coalesce(e.browser, ua.browser) AS browser,
    coalesce(e.os, ua.os) AS os,
    e.country, e.city, e.region, e.is_bot, e.traits, e.metadata
FROM user_events e
LEFT JOIN user_agent ua ON ua.user_agent_id = e.user_agent_id
LEFT JOIN text_value page_url ON page_url.text_id = e.page_url_id
LEFT JOIN text_value page_title ON page_title.text_id = e.page_title_id
LEFT JOIN text_value referrer ON referrer.text_id = e.referrer_id
LEFT JOIN text_value last_page_url ON last_page_url.text_id = e.last_page_url_id
LEFT JOIN text_value target_url ON target_url.text_id = e.target_url_id
LEFT JOIN text_value element_selector ON element_selector.text_id = e.element_selector_id
LEFT JOIN text_value element_text ON element_text.text_id = e.element_text_id;

-- The seed's five single-column indexes, as they pay on daily partitions.
-- Every read is one tenant over whole days, which partition pruning already
-- narrows to a few partitions; inside one, the tenant is found through the
-- per-partition unique (company_id, event_id) index below and time through a
-- BRIN index (rows arrive in time order, so it is a few kilobytes). user_id
-- keeps a btree for one user's history; event_type (a handful of values) and
-- session_id (read through the sessions of a tenant's days) are left to scans.
CREATE INDEX user_events_time ON user_events USING brin (event_timestamp);
CREATE INDEX user_events_company_user ON user_events (company_id, user_id);

-- Exactly-once storage. Each partition has a unique index on (company_id,
-- event_id): a retry with the same timestamp, as Kafka redelivers after a
-- consumer crash, is one row. A client's retry may carry another timestamp
-- (no client time, or a Segment correction that moved across midnight) and
-- so belong to a neighbouring partition; the consumer's insert looks for the
-- id within a day either side of the event's time before it inserts. A global
-- table of ids would catch any distance, but costs ~95 bytes per event and a
-- random-key index insert on the hot path (measured).

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
        -- Unique per partition only: a unique index on the parent would have
        -- to include event_timestamp, and then one id could repeat in a day.
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I (company_id, event_id)',
                       part || '_event', part);
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
END;
$$;

SELECT userflow_ensure_partitions(7, 7);
