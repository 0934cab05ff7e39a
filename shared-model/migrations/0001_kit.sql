-- The service kit's tables, present in every service database.

-- Row-level security context of the current transaction (see shared-model db::set_scope).
-- A missing or empty setting means "nobody": policies then match no row.
CREATE FUNCTION app_current_customer() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.customer_id', true), '')::uuid $$;

CREATE FUNCTION app_is_platform_admin() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(nullif(current_setting('app.platform_admin', true), ''), 'off') = 'on' $$;

-- Transactional outbox. Rows are published in (txid, id) order, only once every transaction
-- with a smaller id has ended (txid < snapshot xmin), so a late-committing row is never skipped,
-- and deleted once the broker has confirmed them.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id    uuid NOT NULL,
    customer_id uuid,
    routing_key text NOT NULL,
    payload     bytea NOT NULL,
    traceparent text,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX outbox_order_idx ON outbox (txid, id);

ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY outbox_tenant ON outbox
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));

-- Consumer inbox: one row per (consumer, event) applied, written in the handler's transaction.
CREATE TABLE inbox (
    consumer    text NOT NULL,
    event_id    uuid NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Idempotency-Key records: the first response to a (caller, key) is replayed for 24 hours.
CREATE TABLE idempotency_keys (
    scope            text NOT NULL,
    key              text NOT NULL,
    request_hash     bytea NOT NULL,
    status_code      integer,
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
