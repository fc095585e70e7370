-- Slugs and company ids are separate namespaces (src/userflow/identity.py).
--
-- A slug names the tenant's topic, so the platform's own topic names are not
-- slugs; and a slug never reads as a UUID (32 hex digits once hyphens are
-- removed: what PostgreSQL's uuid input and Python's uuid.UUID both accept),
-- so no lookup can take one tenant's slug for another's id. The CLI and the
-- operator refuse such slugs with a clear message before they get here; this
-- is the store's own word on it.
ALTER TABLE company
    ADD CONSTRAINT company_slug_not_reserved CHECK (slug NOT IN ('shared', 'dlq')),
    ADD CONSTRAINT company_slug_not_a_uuid CHECK (replace(slug, '-', '') !~ '^[0-9a-f]{32}$');
