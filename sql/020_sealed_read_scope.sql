-- The read scope cannot be switched by the SQL it scopes (the MCP server's run_sql).
--
-- Until now the tenant views trusted the setting userflow.read_key, which any
-- statement may change (`set_config` is every role's), so SQL a tenant writes
-- could switch its own scope to the company of another read key it knew,
-- inside one statement. Now the key is bound by userflow_bind_read_key(),
-- which also sets userflow.read_seal: the statement's time of binding and a
-- MAC of the key, the backend and that time under a secret only the schema's
-- owner reads. userflow_read_company() refuses a key whose seal does not
-- match (a key set by hand, or switched after binding), and a binding made
-- by the very statement that reads: a statement that binds another key and
-- reads with it in one go is refused. run_sql runs exactly one statement,
-- after the server's own binding, so nothing it does can change its scope.
--
-- A psql session binds once: SELECT userflow_bind_read_key('<read key>', true).

-- 32 random bytes (gen_random_uuid draws from the server's strong random source).
CREATE TABLE read_scope_secret (secret bytea NOT NULL);
INSERT INTO read_scope_secret
SELECT substring(uuid_send(gen_random_uuid()) FROM 1 FOR 16) || uuid_send(gen_random_uuid());
REVOKE ALL ON read_scope_secret FROM PUBLIC;

-- A MAC (nested hashes, so no length extension) of a key bound by this backend at bound_at.
CREATE FUNCTION userflow_read_seal(key text, bound_at text) RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT encode(sha256(s.secret || sha256(s.secret || convert_to(
        key || E'\x1f' || pg_backend_pid()::text || E'\x1f' || bound_at, 'UTF8'))), 'hex')
    FROM read_scope_secret s
$$;
REVOKE EXECUTE ON FUNCTION userflow_read_seal(text, text) FROM PUBLIC;

-- The statement's start in microseconds since the epoch: what a seal is stamped with.
CREATE FUNCTION userflow_statement_micros() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT (extract(epoch FROM statement_timestamp()) * 1000000)::bigint::text
$$;
REVOKE EXECUTE ON FUNCTION userflow_statement_micros() FROM PUBLIC;

-- Bind a read key for the rest of the transaction (for_session: of the session).
CREATE FUNCTION userflow_bind_read_key(key text, for_session boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    bound_at text := userflow_statement_micros();
BEGIN
    PERFORM set_config('userflow.read_key', coalesce(key, ''), NOT for_session);
    PERFORM set_config('userflow.read_seal',
                       bound_at || ':' || userflow_read_seal(coalesce(key, ''), bound_at),
                       NOT for_session);
END;
$$;

-- The company of the bound read key, or NULL: a live key of kind 'read' (a
-- write key reads nothing). No key: NULL (the views are empty).
CREATE OR REPLACE FUNCTION userflow_read_company() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    key text := current_setting('userflow.read_key', true);
    seal text := coalesce(current_setting('userflow.read_seal', true), '');
    bound_at text := split_part(seal, ':', 1);
BEGIN
    IF coalesce(key, '') = '' THEN
        RETURN NULL;
    END IF;
    IF seal <> bound_at || ':' || userflow_read_seal(key, bound_at) THEN
        RAISE EXCEPTION 'userflow.read_key was set without userflow_bind_read_key(), or changed after it'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'the read scope is bound once, before the statement: SELECT userflow_bind_read_key(''<read key>'')';
    END IF;
    -- Not "earlier than": a clock stepped back must not lock a tenant out, and
    -- within one statement statement_timestamp() does not move.
    IF bound_at = userflow_statement_micros() THEN
        RAISE EXCEPTION 'the read key was bound by the statement that reads; a statement cannot change its own scope'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN (SELECT k.company_id FROM api_key k
            WHERE k.key_hash = sha256(convert_to(key, 'UTF8'))
              AND k.kind = 'read' AND k.revoked_at IS NULL
              AND (k.revoke_after IS NULL OR k.revoke_after > now()));
END;
$$;

GRANT EXECUTE ON FUNCTION userflow_bind_read_key(text, boolean) TO userflow_reader;

-- run_sql: one statement of the caller's, run as the caller (SECURITY INVOKER:
-- the reader, in its read-only transaction), opened as a cursor, so it must be
-- a single statement that returns rows (SELECT, WITH … SELECT, VALUES, TABLE,
-- EXPLAIN, SHOW); the server refuses anything else before it runs. The text
-- arrives as a bound parameter, so pg_stat_activity, which every reader
-- session can read for the others (one role), shows this call and never the
-- text of another tenant's SQL. Answers {"columns", "rows" (arrays, in column
-- order), "cut" (rows left out past max_rows or max_bytes of JSON)}.
CREATE FUNCTION userflow_tenant_sql(statement text, max_rows integer, max_bytes integer) RETURNS json
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cur refcursor;
    rec record;
    fields json;
    names json := '[]';
    kept json[] := '{}';
    used bigint := 0;
    cut bigint := 0;
BEGIN
    OPEN cur NO SCROLL FOR EXECUTE statement;
    LOOP
        FETCH cur INTO rec;
        EXIT WHEN NOT FOUND;
        SELECT json_agg(e.value ORDER BY e.n), json_agg(e.key ORDER BY e.n) INTO fields, names
        FROM json_each(to_json(rec)) WITH ORDINALITY AS e(key, value, n);
        IF coalesce(array_length(kept, 1), 0) >= max_rows
           OR used + octet_length(coalesce(fields::text, '')) > max_bytes THEN
            MOVE FORWARD ALL FROM cur;
            GET DIAGNOSTICS cut = ROW_COUNT;
            cut := cut + 1;
            EXIT;
        END IF;
        used := used + octet_length(coalesce(fields::text, ''));
        kept := kept || coalesce(fields, '[]'::json);
    END LOOP;
    CLOSE cur;
    RETURN json_build_object('columns', coalesce(names, '[]'), 'rows', to_json(kept), 'cut', cut);
END;
$$;
REVOKE EXECUTE ON FUNCTION userflow_tenant_sql(text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION userflow_tenant_sql(text, integer, integer) TO userflow_reader;
