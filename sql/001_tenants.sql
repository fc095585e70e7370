-- Tenants and their API keys.
-- The seed's company columns, plus what the ingest needs to decide on its own:
-- a slug for topic names, retention, topic mode and the legacy keyless switch.

CREATE TABLE company (
    company_id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug                    text NOT NULL UNIQUE
                            CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name                    varchar(255) NOT NULL,
    address                 text,
    phone                   varchar(20),
    email                   varchar(255) UNIQUE,
    region                  varchar(100),
    subscription_tier       varchar(50) NOT NULL DEFAULT 'free'
                            CHECK (subscription_tier IN ('free', 'basic', 'pro', 'enterprise')),
    subscription_start_date timestamptz NOT NULL DEFAULT now(),
    subscription_end_date   timestamptz,
    retention_days          integer NOT NULL DEFAULT 90 CHECK (retention_days BETWEEN 1 AND 3650),
    topic_mode              text NOT NULL DEFAULT 'shared' CHECK (topic_mode IN ('shared', 'dedicated')),
    -- The seed's clients send company_id without a key; off unless a tenant opts in.
    legacy_keyless_ingest   boolean NOT NULL DEFAULT false,
    allowed_origins         text[] NOT NULL DEFAULT '{}',
    rate_limit_per_second   integer CHECK (rate_limit_per_second > 0),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Keys are 256-bit random tokens, so a plain SHA-256 is the right hash: there
-- is nothing to brute-force, and the ingest can look a key up by its hash.
CREATE TABLE api_key (
    key_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id  uuid NOT NULL REFERENCES company (company_id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('write', 'read')),
    key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    -- The first characters, so a person can tell keys apart in a listing.
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_key_company ON api_key (company_id);
