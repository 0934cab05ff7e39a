-- Lifecycle: deactivation with a grace window, reactivation, purge; provisioning links.
ALTER TABLE customers
    ADD COLUMN parent_customer_id uuid,
    ADD COLUMN parent_client_id   uuid,
    ADD COLUMN deactivated_at     timestamptz,
    ADD COLUMN window_ends_at     timestamptz,
    -- Why a deactivated customer is deactivated: 'request', 'customer:<id>' (its parent
    -- customer was deactivated) or 'client:<id>' (its client was disabled or deleted).
    -- Reactivating the parent reactivates only the customers it deactivated.
    ADD COLUMN deactivation_cause text;
CREATE INDEX customers_purge_idx ON customers (window_ends_at) WHERE status = 'deactivated';
CREATE INDEX customers_parent_idx ON customers (parent_customer_id) WHERE parent_customer_id IS NOT NULL;

-- The audit trail of deactivations. No foreign key: it outlives the customer's purge.
CREATE TABLE deactivations (
    customer_id          uuid NOT NULL,
    deactivation_id      uuid NOT NULL,
    customer_name        text NOT NULL,
    requested_by         text NOT NULL,
    cause                text NOT NULL,
    deactivated_at       timestamptz NOT NULL,
    window_ends_at       timestamptz NOT NULL,
    reason_code          text NOT NULL,
    feedback_text        text,
    recommendation_score smallint CHECK (recommendation_score BETWEEN 0 AND 10),
    context              jsonb,
    reactivated_at       timestamptz,
    reactivated_by       text,
    purged_at            timestamptz,
    PRIMARY KEY (customer_id, deactivation_id)
);
CREATE INDEX deactivations_time_idx ON deactivations (deactivated_at, deactivation_id);

ALTER TABLE deactivations ENABLE ROW LEVEL SECURITY;
ALTER TABLE deactivations FORCE ROW LEVEL SECURITY;
CREATE POLICY deactivations_tenant ON deactivations
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));
