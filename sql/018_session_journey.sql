-- Paths from session_rollup: each session's journey (its page views' paths in
-- time order, ties by event id, a page viewed again at once one step) is kept
-- with the session, so the paths question reads a row a session instead of
-- sorting a month of page views (3.6 s at 10M events, bench/queries.py). The
-- refresh below is 016's with the journey added; existing sessions get theirs
-- from their events here, once.

CREATE FUNCTION userflow_collapse_repeats(pages text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(x.page ORDER BY x.i), '{}')
    FROM unnest(pages) WITH ORDINALITY AS x(page, i)
    WHERE x.i = 1 OR x.page IS DISTINCT FROM pages[x.i - 1]
$$;

ALTER TABLE session_rollup ADD COLUMN journey text[] NOT NULL DEFAULT '{}';
-- A view's * was expanded when it was made; the tenant's sees the new column too.
CREATE OR REPLACE VIEW tenant.session_rollup WITH (security_barrier) AS
SELECT * FROM session_rollup WHERE company_id = (SELECT userflow_read_company());

WITH views AS MATERIALIZED (
    SELECT e.company_id, e.session_id, e.event_timestamp, e.event_id, e.page_url_id
    FROM user_events e
    JOIN session_rollup s ON s.company_id = e.company_id AND s.session_id = e.session_id
    WHERE e.event_type = 'page_view' AND e.page_url_id IS NOT NULL
), urls AS (
    SELECT t.text_id, userflow_url_path(t.value) AS path
    FROM text_value t WHERE t.text_id IN (SELECT DISTINCT page_url_id FROM views)
), journeys AS (
    SELECT v.company_id, v.session_id,
           userflow_collapse_repeats(array_agg(u.path ORDER BY v.event_timestamp, v.event_id)
                                     FILTER (WHERE u.path IS NOT NULL)) AS journey
    FROM views v JOIN urls u ON u.text_id = v.page_url_id
    GROUP BY v.company_id, v.session_id
)
UPDATE session_rollup s SET journey = j.journey
FROM journeys j
WHERE s.company_id = j.company_id AND s.session_id = j.session_id AND j.journey IS NOT NULL;

CREATE OR REPLACE FUNCTION userflow_refresh_rollups() RETURNS integer
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
        -- From user_events itself: a URL's path and host are worked out once per
        -- distinct text of the day, not once per event (a regex costs ~20 µs).
        INSERT INTO dirty_events
        WITH day_events AS MATERIALIZED (
            SELECT e.* FROM user_events e
            JOIN dirty d ON d.company_id = e.company_id AND d.session_id = e.session_id
            WHERE e.event_timestamp >= day::timestamp AT TIME ZONE 'UTC'
              AND e.event_timestamp < (day + 1)::timestamp AT TIME ZONE 'UTC'
              AND e.event_timestamp BETWEEN d.lo AND d.hi
        ), urls AS (
            SELECT t.text_id, userflow_url_path(t.value) AS path, userflow_url_host(t.value) AS host
            FROM text_value t
            WHERE t.text_id IN (SELECT page_url_id FROM day_events UNION SELECT referrer_id FROM day_events)
        )
        SELECT e.company_id, e.session_id, e.event_timestamp, e.event_type,
               coalesce(e.user_id, e.anonymous_id), e.is_bot, page.path, referrer.host,
               e.event_name, e.experiment_id, e.variant, e.scroll_depth,
               coalesce(e.device_type, ua.device_type), coalesce(e.browser, ua.browser),
               coalesce(e.os, ua.os), e.country, e.region, e.city,
               e.utm_source, e.utm_medium, e.utm_campaign, e.event_id
        FROM day_events e
        LEFT JOIN user_agent ua ON ua.user_agent_id = e.user_agent_id
        LEFT JOIN urls page ON page.text_id = e.page_url_id
        LEFT JOIN urls referrer ON referrer.text_id = e.referrer_id;
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
                        FILTER (WHERE experiment_id IS NOT NULL AND variant IS NOT NULL), '{}'),
           userflow_collapse_repeats(coalesce(
               array_agg(page ORDER BY event_timestamp, event_id)
                   FILTER (WHERE event_type = 'page_view' AND page IS NOT NULL), '{}'))
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
        event_names = excluded.event_names, exposures = excluded.exposures,
        journey = excluded.journey;

    DELETE FROM session_page_rollup p USING dirty d
    WHERE p.company_id = d.company_id AND p.session_id = d.session_id;
    -- A view's time on page is the time to the session's next event; a click or
    -- a scroll belongs to the page its event names. What describes the session
    -- (start, user, bot, exit page) is its session_rollup row, just built: one
    -- window (the next event) instead of five.
    INSERT INTO session_page_rollup
    WITH ordered AS (
        SELECT company_id, session_id, page, event_type, event_timestamp, scroll_depth,
               lead(event_timestamp) OVER (PARTITION BY company_id, session_id
                                           ORDER BY event_timestamp, event_id) AS next_at
        FROM dirty_events
    )
    SELECT o.company_id, o.session_id, o.page, min(s.started_at), min(s.actor), bool_or(s.is_bot),
           count(*) FILTER (WHERE o.event_type = 'page_view')::integer,
           count(*) FILTER (WHERE o.event_type = 'page_view' AND o.next_at IS NOT NULL)::integer,
           coalesce(extract(epoch FROM sum(o.next_at - o.event_timestamp)
                    FILTER (WHERE o.event_type = 'page_view')), 0)::double precision,
           count(*) FILTER (WHERE o.event_type = 'click')::integer,
           max(o.scroll_depth),
           coalesce(min(s.exit_page) = o.page, false)::integer
    FROM ordered o
    JOIN session_rollup s ON s.company_id = o.company_id AND s.session_id = o.session_id
    WHERE o.page IS NOT NULL
    GROUP BY o.company_id, o.session_id, o.page
    HAVING count(*) FILTER (WHERE o.event_type = 'page_view') > 0;

    RETURN rebuilt;
END;
$$;

