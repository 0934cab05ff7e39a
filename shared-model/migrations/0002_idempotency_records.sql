-- Idempotency-Key records, written in the transaction of the change they answer (see
-- shared-model idempotency.rs). They replace idempotency_keys, which were written beside it and
-- could stay "in progress" after a failure.
DROP TABLE idempotency_keys;

CREATE TABLE idempotency_records (
    -- SHA-256 of (customer, sub, method, path, key).
    id               bytea PRIMARY KEY,
    -- The caller's customer (NULL for a token bound to none).
    customer_id      uuid,
    request_hash     bytea NOT NULL,
    access_hash      bytea NOT NULL,
    status_code      integer NOT NULL,
    response_headers jsonb NOT NULL,
    response_body    bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_records_created_idx ON idempotency_records (created_at);

ALTER TABLE idempotency_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_records FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_records_tenant ON idempotency_records
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));
