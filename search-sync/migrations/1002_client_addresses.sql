-- Clients' addresses as customer-api's client_address.* events describe them (the kit's
-- projection contract: version-guarded, deletions kept as tombstones), for the city and
-- country of the clients' documents: the default billing address, else the default shipping
-- one, else the oldest.
CREATE TABLE client_addresses (
    customer_id      uuid NOT NULL,
    address_id       uuid NOT NULL,
    client_id        uuid NOT NULL,
    city             text,
    country          text,
    default_billing  boolean NOT NULL,
    default_shipping boolean NOT NULL,
    version          bigint NOT NULL,
    deleted          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (customer_id, address_id)
);
CREATE INDEX client_addresses_client ON client_addresses (customer_id, client_id)
    WHERE NOT deleted;

ALTER TABLE client_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE client_addresses FORCE ROW LEVEL SECURITY;
CREATE POLICY client_addresses_tenant ON client_addresses
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));
