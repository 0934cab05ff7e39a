-- Customers as partition-keys knows them, from customer-api's events.
CREATE TABLE known_customers (
    customer_id uuid PRIMARY KEY,
    status      text NOT NULL CHECK (status IN ('active', 'deactivated')),
    version     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE partitions (
    customer_id uuid NOT NULL REFERENCES known_customers (customer_id) ON DELETE CASCADE,
    partition_id uuid NOT NULL,
    name        text NOT NULL,
    environment text NOT NULL CHECK (environment ~ '^[a-z0-9]{1,16}$'),
    description text,
    status      text NOT NULL CHECK (status IN ('active', 'disabled')),
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, partition_id)
);
CREATE UNIQUE INDEX partitions_name_key ON partitions (customer_id, lower(name));

-- API keys. Only a keyed hash (HMAC-SHA256 with a server-side pepper) of the secret is stored.
-- Keys outlive their partition (expired, for the audit trail): no foreign key to partitions.
CREATE TABLE api_keys (
    customer_id  uuid NOT NULL,
    key_id       uuid NOT NULL,
    partition_id uuid NOT NULL,
    environment  text NOT NULL,
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('admin', 'custom')),
    scopes       text[] NOT NULL,
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL,
    foreign_key  text,
    expires_at   timestamptz,
    expired_event_at timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    rotated_from uuid,
    version      bigint NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    PRIMARY KEY (customer_id, key_id),
    CONSTRAINT api_keys_hash_key UNIQUE (key_hash)
);
CREATE INDEX api_keys_partition_idx ON api_keys (customer_id, partition_id, created_at DESC);
CREATE INDEX api_keys_expiry_idx ON api_keys (expires_at)
    WHERE expired_event_at IS NULL AND revoked_at IS NULL AND expires_at IS NOT NULL;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['known_customers', 'partitions', 'api_keys'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I
            USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
            WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))',
            t || '_tenant', t);
    END LOOP;
END $$;
