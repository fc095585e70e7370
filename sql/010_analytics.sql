-- The read side: tenant-scoped views for the reader, and the rollups that keep
-- the analytics fast.
--
-- Tenant scope. The reader (the query API, the MCP server, a person with psql)
-- sees only the `tenant` schema, whose views show the rows of one company: the
-- company of the read key the session presents in the setting userflow.read_key
-- (`SELECT set_config('userflow.read_key', '<key>', true)`). Without a live read
-- key the views are empty. The key is the tenant's credential on every path, so
-- raw SQL as userflow_reader reads no more than the API with the same key; the
-- shared dictionaries (text_value, user_agent) are reachable only through the
-- tenant's own events.

-- A URL's path: scheme and authority gone, query and fragment ignored; '/' for none.
CREATE FUNCTION userflow_url_path(url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT coalesce(nullif(substring(regexp_replace(url, '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*', '')
                                     FROM '^[^?#]*'), ''), '/')
$$;

-- A URL's host, lower case, without a leading "www."; NULL when it has none.
CREATE FUNCTION userflow_url_host(url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT nullif(regexp_replace(lower(substring(
        url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^]]*\]|[^/?#:]*)')), '^www\.', ''), '')
$$;

-- The company of the session's read key, or NULL: a live key of kind 'read'
-- (a write key reads nothing). Runs as its owner, so the reader needs no access
-- to api_key.
CREATE FUNCTION userflow_read_company() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k.company_id FROM api_key k
    WHERE k.key_hash = sha256(convert_to(current_setting('userflow.read_key', true), 'UTF8'))
      AND k.kind = 'read' AND k.revoked_at IS NULL
      AND (k.revoke_after IS NULL OR k.revoke_after > now())
$$;

-- Rollups ---------------------------------------------------------------------
--
-- The consumer appends what each batch stored to rollup_pending, in the
-- transaction that stores the rows, so a pending row is visible exactly when its
-- events are. userflow_refresh_rollups() (pg_cron, every minute) takes the
-- pending rows its snapshot sees and folds them in; rows committed meanwhile wait
-- for the next cycle. A late event (its session's rollup row built long ago) is
-- one more pending row, and the refresh rebuilds that session.
--
-- A user (actor) is user_id, else anonymous_id; identities are not merged.
-- Events without a session_id belong to no session but count in actor_hour_rollup.

CREATE TABLE rollup_pending (
    company_id  uuid NOT NULL,
    session_id  text,
    actor       text,
    hour        timestamptz NOT NULL,
    is_bot      boolean NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    events      integer NOT NULL,
    page_views  integer NOT NULL,
    clicks      integer NOT NULL,
    scrolls     integer NOT NULL,
    form_submits integer NOT NULL,
    hovers      integer NOT NULL,
    keydowns    integer NOT NULL,
    customs     integer NOT NULL,
    identifies  integer NOT NULL
);

-- Events per company, UTC hour, actor and bot flag, by type: additive (each
-- event is stored once), so the refresh adds the pending counts. Serves the
-- overview's events and users, new users, retention and stickiness.
CREATE TABLE actor_hour_rollup (
    company_id   uuid NOT NULL,
    hour         timestamptz NOT NULL,
    actor        text,
    is_bot       boolean NOT NULL,
    events       integer NOT NULL,
    page_views   integer NOT NULL,
    clicks       integer NOT NULL,
    scrolls      integer NOT NULL,
    form_submits integer NOT NULL,
    hovers       integer NOT NULL,
    keydowns     integer NOT NULL,
    customs      integer NOT NULL,
    identifies   integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (company_id, hour, actor, is_bot)
);
CREATE INDEX actor_hour_rollup_actor ON actor_hour_rollup (company_id, actor, hour);

-- One row per session, rebuilt from its events whenever one arrives. What
-- describes the session (device, place, referrer, campaign) is its first event's.
CREATE TABLE session_rollup (
    company_id      uuid NOT NULL,
    session_id      text NOT NULL,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz NOT NULL,
    actor           text,
    is_bot          boolean NOT NULL,
    events          integer NOT NULL,
    page_views      integer NOT NULL,
    engaged         integer NOT NULL,   -- clicks, form submits and custom events
    entry_page      text,
    exit_page       text,
    referrer_domain text,
    device_type     text,
    browser         text,
    os              text,
    country         text,
    region          text,
    city            text,
    utm_source      text,
    utm_medium      text,
    utm_campaign    text,
    pages           text[] NOT NULL,    -- paths viewed
    event_types     event_type[] NOT NULL,
    event_names     text[] NOT NULL,
    exposures       text[] NOT NULL,    -- experiment_id || E'\x1f' || variant
    PRIMARY KEY (company_id, session_id)
);
CREATE INDEX session_rollup_start ON session_rollup (company_id, started_at);

-- One row per session and path viewed in it.
CREATE TABLE session_page_rollup (
    company_id     uuid NOT NULL,
    session_id     text NOT NULL,
    page           text NOT NULL,
    started_at     timestamptz NOT NULL,  -- the session's
    actor          text,
    is_bot         boolean NOT NULL,
    views          integer NOT NULL,
    timed_views    integer NOT NULL,      -- views followed by another event of the session
    seconds_on_page double precision NOT NULL,  -- summed over the timed views
    clicks         integer NOT NULL,
    max_scroll     smallint,
    exits          integer NOT NULL,      -- 1 when the session's last page view is here
    PRIMARY KEY (company_id, session_id, page)
);
CREATE INDEX session_page_rollup_start ON session_page_rollup (company_id, started_at);

-- The events of the sessions a refresh rebuilds, gathered a day partition at a time.
CREATE FUNCTION userflow_refresh_rollups() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    day date;
    rebuilt integer;
BEGIN
    -- One refresh at a time; a second waits for the first and finds little to do.
    PERFORM pg_advisory_xact_lock(hashtext('userflow_refresh_rollups'));

    CREATE TEMP TABLE taken ON COMMIT DROP AS
    WITH t AS (DELETE FROM rollup_pending RETURNING *) SELECT * FROM t;

    INSERT INTO actor_hour_rollup AS r
    SELECT company_id, hour, actor, is_bot, sum(events), sum(page_views), sum(clicks), sum(scrolls),
           sum(form_submits), sum(hovers), sum(keydowns), sum(customs), sum(identifies)
    FROM taken GROUP BY company_id, hour, actor, is_bot
    ON CONFLICT (company_id, hour, actor, is_bot) DO UPDATE SET
        events = r.events + excluded.events, page_views = r.page_views + excluded.page_views,
        clicks = r.clicks + excluded.clicks, scrolls = r.scrolls + excluded.scrolls,
        form_submits = r.form_submits + excluded.form_submits, hovers = r.hovers + excluded.hovers,
        keydowns = r.keydowns + excluded.keydowns, customs = r.customs + excluded.customs,
        identifies = r.identifies + excluded.identifies;

    -- A session's events lie between its known first and last and the new ones.
    CREATE TEMP TABLE dirty ON COMMIT DROP AS
    SELECT t.company_id, t.session_id,
           least(min(t.first_at), min(s.started_at)) AS lo,
           greatest(max(t.last_at), max(s.ended_at)) AS hi
    FROM taken t
    LEFT JOIN session_rollup s ON s.company_id = t.company_id AND s.session_id = t.session_id
    WHERE t.session_id IS NOT NULL
    GROUP BY t.company_id, t.session_id;
    GET DIAGNOSTICS rebuilt = ROW_COUNT;
    IF rebuilt = 0 THEN
        RETURN 0;
    END IF;
    ANALYZE dirty;

    CREATE TEMP TABLE dirty_events (
        company_id uuid, session_id text, event_timestamp timestamptz, event_type event_type,
        actor text, is_bot boolean, page text, referrer_domain text, event_name text,
        experiment_id text, variant text, scroll_depth smallint, device_type text, browser text,
        os text, country text, region text, city text, utm_source text, utm_medium text,
        utm_campaign text, event_id uuid) ON COMMIT DROP;
    FOR day IN
        SELECT DISTINCT d::date FROM dirty,
            generate_series((lo AT TIME ZONE 'UTC')::date, (hi AT TIME ZONE 'UTC')::date,
                            interval '1 day') AS d
    LOOP
        INSERT INTO dirty_events
        SELECT e.company_id, e.session_id, e.event_timestamp, e.event_type,
               coalesce(e.user_id, e.anonymous_id), e.is_bot, userflow_url_path(e.page_url),
               userflow_url_host(e.referrer), e.event_name, e.experiment_id, e.variant,
               e.scroll_depth, e.device_type, e.browser, e.os, e.country, e.region, e.city,
               e.utm_source, e.utm_medium, e.utm_campaign, e.event_id
        FROM events e
        JOIN dirty d ON d.company_id = e.company_id AND d.session_id = e.session_id
        WHERE e.event_timestamp >= day::timestamp AT TIME ZONE 'UTC'
          AND e.event_timestamp < (day + 1)::timestamp AT TIME ZONE 'UTC'
          AND e.event_timestamp BETWEEN d.lo AND d.hi;
    END LOOP;

    -- Order within a session: time, then the id, so ties break the same way everywhere.
    INSERT INTO session_rollup AS r
    SELECT company_id, session_id, min(event_timestamp), max(event_timestamp),
           (array_agg(actor ORDER BY event_timestamp, event_id) FILTER (WHERE actor IS NOT NULL))[1],
           bool_or(is_bot), count(*)::integer,
           count(*) FILTER (WHERE event_type = 'page_view')::integer,
           count(*) FILTER (WHERE event_type IN ('click', 'form_submit', 'custom'))::integer,
           (array_agg(page ORDER BY event_timestamp, event_id) FILTER (WHERE event_type = 'page_view'))[1],
           (array_agg(page ORDER BY event_timestamp DESC, event_id DESC)
                FILTER (WHERE event_type = 'page_view'))[1],
           (array_agg(referrer_domain ORDER BY event_timestamp, event_id))[1],
           (array_agg(device_type ORDER BY event_timestamp, event_id))[1],
           (array_agg(browser ORDER BY event_timestamp, event_id))[1],
           (array_agg(os ORDER BY event_timestamp, event_id))[1],
           (array_agg(country ORDER BY event_timestamp, event_id))[1],
           (array_agg(region ORDER BY event_timestamp, event_id))[1],
           (array_agg(city ORDER BY event_timestamp, event_id))[1],
           (array_agg(utm_source ORDER BY event_timestamp, event_id))[1],
           (array_agg(utm_medium ORDER BY event_timestamp, event_id))[1],
           (array_agg(utm_campaign ORDER BY event_timestamp, event_id))[1],
           coalesce(array_agg(DISTINCT page) FILTER (WHERE event_type = 'page_view' AND page IS NOT NULL),
                    '{}'),
           array_agg(DISTINCT event_type),
           coalesce(array_agg(DISTINCT event_name) FILTER (WHERE event_name IS NOT NULL), '{}'),
           coalesce(array_agg(DISTINCT experiment_id || E'\x1f' || variant)
                        FILTER (WHERE experiment_id IS NOT NULL AND variant IS NOT NULL), '{}')
    FROM dirty_events
    GROUP BY company_id, session_id
    ON CONFLICT (company_id, session_id) DO UPDATE SET
        started_at = excluded.started_at, ended_at = excluded.ended_at, actor = excluded.actor,
        is_bot = excluded.is_bot, events = excluded.events, page_views = excluded.page_views,
        engaged = excluded.engaged, entry_page = excluded.entry_page, exit_page = excluded.exit_page,
        referrer_domain = excluded.referrer_domain, device_type = excluded.device_type,
        browser = excluded.browser, os = excluded.os, country = excluded.country,
        region = excluded.region, city = excluded.city, utm_source = excluded.utm_source,
        utm_medium = excluded.utm_medium, utm_campaign = excluded.utm_campaign,
        pages = excluded.pages, event_types = excluded.event_types,
        event_names = excluded.event_names, exposures = excluded.exposures;

    DELETE FROM session_page_rollup p USING dirty d
    WHERE p.company_id = d.company_id AND p.session_id = d.session_id;
    -- A view's time on page is the time to the session's next event; a click or
    -- a scroll belongs to the page its event names.
    INSERT INTO session_page_rollup
    WITH ordered AS (
        SELECT *,
               lead(event_timestamp) OVER w AS next_at,
               row_number() OVER (PARTITION BY company_id, session_id, event_type = 'page_view'
                                  ORDER BY event_timestamp DESC, event_id DESC) AS from_last,
               min(event_timestamp) OVER (PARTITION BY company_id, session_id) AS session_start,
               bool_or(is_bot) OVER (PARTITION BY company_id, session_id) AS session_bot,
               first_value(actor) OVER (PARTITION BY company_id, session_id
                                        ORDER BY actor IS NULL, event_timestamp, event_id) AS session_actor
        FROM dirty_events
        WINDOW w AS (PARTITION BY company_id, session_id ORDER BY event_timestamp, event_id)
    )
    SELECT company_id, session_id, page, min(session_start), min(session_actor), bool_or(session_bot),
           count(*) FILTER (WHERE event_type = 'page_view')::integer,
           count(*) FILTER (WHERE event_type = 'page_view' AND next_at IS NOT NULL)::integer,
           coalesce(extract(epoch FROM sum(next_at - event_timestamp)
                    FILTER (WHERE event_type = 'page_view')), 0)::double precision,
           count(*) FILTER (WHERE event_type = 'click')::integer,
           max(scroll_depth),
           count(*) FILTER (WHERE event_type = 'page_view' AND from_last = 1)::integer
    FROM ordered
    WHERE page IS NOT NULL
    GROUP BY company_id, session_id, page
    HAVING count(*) FILTER (WHERE event_type = 'page_view') > 0;

    RETURN rebuilt;
END;
$$;

-- What is already stored counts from the start.
INSERT INTO rollup_pending
SELECT company_id, session_id, coalesce(user_id, anonymous_id),
       date_trunc('hour', event_timestamp, 'UTC'), is_bot, min(event_timestamp), max(event_timestamp),
       count(*), count(*) FILTER (WHERE event_type = 'page_view'),
       count(*) FILTER (WHERE event_type = 'click'), count(*) FILTER (WHERE event_type = 'scroll'),
       count(*) FILTER (WHERE event_type = 'form_submit'), count(*) FILTER (WHERE event_type = 'hover'),
       count(*) FILTER (WHERE event_type = 'keydown'), count(*) FILTER (WHERE event_type = 'custom'),
       count(*) FILTER (WHERE event_type = 'identify')
FROM user_events
GROUP BY company_id, session_id, coalesce(user_id, anonymous_id),
         date_trunc('hour', event_timestamp, 'UTC'), is_bot;

-- Retention and purge reach the rollups too.
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
    -- A rollup row goes with the day its events (or its session's start) fell on.
    DELETE FROM actor_hour_rollup r USING company c
    WHERE c.company_id = r.company_id AND r.hour < current_date - c.retention_days;
    DELETE FROM session_page_rollup r USING company c
    WHERE c.company_id = r.company_id AND r.started_at < current_date - c.retention_days;
    DELETE FROM session_rollup r USING company c
    WHERE c.company_id = r.company_id AND r.started_at < current_date - c.retention_days;
    DELETE FROM rollup_pending r USING company c
    WHERE c.company_id = r.company_id AND r.last_at < current_date - c.retention_days;
END;
$$;

CREATE OR REPLACE FUNCTION userflow_purge_company(target uuid) RETURNS bigint
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
    DELETE FROM rollup_pending WHERE company_id = target;
    DELETE FROM actor_hour_rollup WHERE company_id = target;
    DELETE FROM session_page_rollup WHERE company_id = target;
    DELETE FROM session_rollup WHERE company_id = target;
    DELETE FROM company WHERE company_id = target;  -- its keys cascade
    RETURN events;
END;
$$;

-- The tenant's views ---------------------------------------------------------
-- security_barrier: a reader's own conditions run after the company's, so no
-- function of theirs sees another tenant's row. The scope is an InitPlan
-- (evaluated once a query), which partitions and indexes can use.
CREATE SCHEMA tenant;

CREATE VIEW tenant.events WITH (security_barrier) AS
SELECT e.*, userflow_url_path(e.page_url) AS page_path,
       coalesce(e.user_id, e.anonymous_id) AS actor
FROM events e WHERE e.company_id = (SELECT userflow_read_company());

CREATE VIEW tenant.session_rollup WITH (security_barrier) AS
SELECT * FROM session_rollup WHERE company_id = (SELECT userflow_read_company());

CREATE VIEW tenant.session_page_rollup WITH (security_barrier) AS
SELECT * FROM session_page_rollup WHERE company_id = (SELECT userflow_read_company());

CREATE VIEW tenant.actor_hour_rollup WITH (security_barrier) AS
SELECT * FROM actor_hour_rollup WHERE company_id = (SELECT userflow_read_company());

CREATE VIEW tenant.company WITH (security_barrier) AS
SELECT company_id, slug, name, subscription_tier, retention_days, created_at
FROM company WHERE company_id = (SELECT userflow_read_company());

-- The reader reads the tenant schema and nothing of public's tables.
REVOKE ALL ON user_events, events, user_agent, text_value, mv_user_activity,
              mv_daily_event_summary, company FROM userflow_reader;
GRANT USAGE ON SCHEMA tenant TO userflow_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA tenant TO userflow_reader;
GRANT EXECUTE ON FUNCTION userflow_read_company(), userflow_url_path(text), userflow_url_host(text)
    TO userflow_reader;

-- The consumer reports what it stored; the refresh is pg_cron's (run as the owner).
GRANT INSERT ON rollup_pending TO userflow_consumer;
REVOKE EXECUTE ON FUNCTION userflow_refresh_rollups() FROM PUBLIC;

DO $$
BEGIN
    IF current_setting('cron.database_name', true) IS DISTINCT FROM current_database() THEN
        RAISE NOTICE 'pg_cron is not available in database %; rollups not scheduled', current_database();
        RETURN;
    END IF;
    PERFORM cron.schedule('userflow-refresh-rollups', '* * * * *',
        'SELECT userflow_refresh_rollups()');
END;
$$;
