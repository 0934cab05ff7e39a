-- org-structure's settings of each customer (`/v1/customers/{customerId}/org-settings`).
CREATE TABLE org_settings (
    customer_id            uuid PRIMARY KEY,
    client_hq_from_address boolean NOT NULL DEFAULT false,
    version                bigint NOT NULL,
    updated_at             timestamptz NOT NULL
);
ALTER TABLE org_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY org_settings_tenant ON org_settings
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));

-- A client HQ made from one of the client's addresses follows that address (its id and the
-- version of it last applied, so a stale address event changes nothing).
ALTER TABLE locations ADD COLUMN derived_address_id uuid;
ALTER TABLE locations ADD COLUMN derived_address_version bigint;
