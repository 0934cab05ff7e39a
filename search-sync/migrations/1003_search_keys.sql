-- Scoped search keys: a secret a browser presents in X-Search-Key instead of a user token. Only
-- HMAC-SHA256(pepper, secret) is kept, with the public prefix; a key is looked up by that hash
-- on every use, so a revocation (revoked_at) holds on every replica at its commit.
CREATE TABLE search_keys (
    id              uuid PRIMARY KEY,
    -- The tenant a tenantCustomers or clients key belongs to; none for the platform-wide kinds.
    customer_id     uuid,
    kind            text NOT NULL CHECK (kind IN ('allCustomers', 'businessCustomers',
                        'consumerCustomers', 'tenantCustomers', 'clients')),
    name            text NOT NULL,
    prefix          text NOT NULL,
    secret_hash     bytea NOT NULL UNIQUE,
    -- The narrowing filter, as the creating request gave it (validated then).
    filter          jsonb,
    allowed_origins text[] NOT NULL DEFAULT '{}',
    rate_per_minute integer NOT NULL CHECK (rate_per_minute > 0),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL,
    created_by      text NOT NULL,
    CHECK ((customer_id IS NULL) = (kind IN ('allCustomers', 'businessCustomers', 'consumerCustomers')))
);
CREATE INDEX search_keys_customer ON search_keys (customer_id, created_at DESC, id DESC);
CREATE INDEX search_keys_created ON search_keys (created_at DESC, id DESC);

ALTER TABLE search_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE search_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY search_keys_tenant ON search_keys
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));
