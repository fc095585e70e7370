-- Tell the ingest's tenant caches when keys or companies change, so a revoked
-- key stops working at once rather than at the next periodic reload.
CREATE FUNCTION userflow_notify_tenants() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('userflow_tenants', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER company_changed AFTER INSERT OR UPDATE OR DELETE ON company
    FOR EACH STATEMENT EXECUTE FUNCTION userflow_notify_tenants();
CREATE TRIGGER api_key_changed AFTER INSERT OR UPDATE OR DELETE ON api_key
    FOR EACH STATEMENT EXECUTE FUNCTION userflow_notify_tenants();
