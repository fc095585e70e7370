-- Two consumers making the same day's partition at once: the second waited on
-- the advisory lock, then still saw no table (the function's catalog snapshot
-- predates the first's commit; an advisory lock does not refresh it) and failed
-- with duplicate_table, failing its whole batch. Seen loading with two writer
-- processes (bench/queries.py). The table made meanwhile is what was wanted.
CREATE OR REPLACE FUNCTION userflow_ensure_partition(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part text := format('user_events_p%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('userflow_ensure_partition'));
    BEGIN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF user_events FOR VALUES FROM (%L) TO (%L)',
            part, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    EXCEPTION WHEN duplicate_table THEN
        NULL;
    END;
END;
$$;
