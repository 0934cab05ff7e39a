-- Claims synchronization: the current claims document of each customer and the deliveries of
-- its versions to the auth service's webhook.
CREATE TABLE claims_documents (
    customer_id uuid PRIMARY KEY REFERENCES customers (customer_id) ON DELETE CASCADE,
    version     bigint NOT NULL,
    document    jsonb NOT NULL,
    -- SHA-256 of the document without its version: an unchanged document is never re-sent.
    digest      bytea NOT NULL,
    changed_at  timestamptz NOT NULL
);

CREATE TABLE claims_deliveries (
    customer_id     uuid NOT NULL,
    version         bigint NOT NULL,
    webhook_id      text NOT NULL,
    document        jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    delivered_at    timestamptz,
    -- A newer version was delivered instead: versions are never delivered out of order.
    superseded      boolean NOT NULL DEFAULT false,
    last_error      text,
    PRIMARY KEY (customer_id, version)
);
CREATE INDEX claims_deliveries_pending_idx ON claims_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND NOT superseded;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['claims_documents', 'claims_deliveries'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I
            USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
            WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))',
            t || '_tenant', t);
    END LOOP;
END $$;
