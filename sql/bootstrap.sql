-- The PostgreSQL roles UserFlow's processes (and Grafana) log in as, one each (DESIGN: least
-- privilege).
--
-- Run by a superuser, in the UserFlow database, before `userflow migrate`:
-- `userflow db bootstrap` does (and sets the passwords from UF_ROLE_PASSWORD_*),
-- so do `make services` locally and the chart's migrate Job. Idempotent: run it
-- on every install and upgrade. Not a numbered migration: migrations run as
-- userflow_migrator, which may not create roles (CREATEROLE could grant itself
-- any non-superuser role, pg_execute_server_program among them).
--
--   userflow_migrator  owns the database and the schema; runs the migrations;
--                      pg_cron's jobs run as it
--   userflow_consumer  inserts events, user agents and dictionary texts
--   userflow_ingest    reads companies and key hashes
--   userflow_operator  manages companies and keys (`userflow tenant`, the operator)
--   userflow_reader    reads events (the query API, the MCP server)
--   userflow_dashboards reads every tenant's events and rollups: Grafana's data
--                      source (the platform team's dashboards, a tenant variable);
--                      no process logs in as it
--
-- The migrations grant each its privileges (sql/009_roles.sql, sql/014_dashboards.sql).
-- None of them is a superuser, may create roles or databases, or bypass row-level
-- security.

DO $$
DECLARE
    role text;
BEGIN
    FOREACH role IN ARRAY ARRAY['userflow_migrator', 'userflow_consumer', 'userflow_ingest',
                                'userflow_operator', 'userflow_reader', 'userflow_dashboards'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', role);
        END IF;
        EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION'
                       ' NOBYPASSRLS', role);
    END LOOP;
END;
$$;

-- Grafana's queries (the dashboards' panels, any range a person picks) are bounded and
-- read-only whatever a panel's SQL says.
ALTER ROLE userflow_dashboards SET statement_timeout = '60s';
ALTER ROLE userflow_dashboards SET default_transaction_read_only = on;

-- The migrator owns the database, and so (PostgreSQL 15) its public schema.
-- An install whose migrations ran as a superuser hands its objects over, so
-- an upgrade keeps working as the migrator.
DO $$
DECLARE
    migrator oid := 'userflow_migrator'::regrole;
    obj record;
BEGIN
    EXECUTE format('ALTER DATABASE %I OWNER TO userflow_migrator', current_database());
    FOR obj IN
        SELECT c.oid::regclass AS name,
               CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                              ELSE 'TABLE' END AS kind
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND c.relowner <> migrator
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO userflow_migrator', obj.kind, obj.name);
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure AS name FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> migrator
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO userflow_migrator', obj.name);
    END LOOP;
    FOR obj IN
        SELECT t.oid::regtype AS name FROM pg_type t
        WHERE t.typnamespace = 'public'::regnamespace AND t.typtype = 'e' AND t.typowner <> migrator
    LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO userflow_migrator', obj.name);
    END LOOP;
END;
$$;

-- Only UserFlow's roles (and superusers) may connect; the consumer's staging
-- table is a temporary one.
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO userflow_consumer, userflow_ingest,'
                   ' userflow_operator, userflow_reader, userflow_dashboards', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO userflow_consumer', current_database());
END;
$$;

-- The migrations read cron.database_name (sql/003, sql/005) to know whether
-- pg_cron can be theirs, and pg_cron lets only this predefined role read it.
GRANT pg_read_all_settings TO userflow_migrator;

-- pg_cron can only live in cron.database_name; there the migrator schedules
-- the jobs, and jobs a superuser scheduled before move to it.
DO $$
BEGIN
    IF current_setting('cron.database_name', true) IS DISTINCT FROM current_database() THEN
        RETURN;
    END IF;
    CREATE EXTENSION IF NOT EXISTS pg_cron;
    GRANT USAGE ON SCHEMA cron TO userflow_migrator;
    UPDATE cron.job SET username = 'userflow_migrator'
    WHERE jobname LIKE 'userflow-%' AND username <> 'userflow_migrator';
END;
$$;

-- Every tenant's questions run as userflow_reader, and PostgreSQL lets a role
-- cancel or end its own backends: the SQL one tenant writes for the AI analyst
-- (run_sql) could stop another tenant's questions. Only superusers and
-- members of pg_signal_backend may signal backends in this database.
REVOKE EXECUTE ON FUNCTION pg_cancel_backend(integer), pg_terminate_backend(integer, bigint)
    FROM PUBLIC;
