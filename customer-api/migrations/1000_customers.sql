-- Customers (tenant accounts). The tenant column is the customer's own id.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE customers (
    customer_id                uuid PRIMARY KEY,
    name                       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    customer_type              text NOT NULL CHECK (customer_type IN ('business', 'consumer')),
    email                      text,
    phone                      text,
    website                    text,
    address                    jsonb,
    locale                     text,
    business_profile           jsonb,
    external_id                text,
    session_expiration_seconds integer CHECK (session_expiration_seconds BETWEEN 300 AND 2592000),
    bootstrap_tenant_key       text NOT NULL,
    products                   text[] NOT NULL DEFAULT '{}',
    status                     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),
    version                    bigint NOT NULL DEFAULT 1,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    created_by                 text NOT NULL,
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    updated_by                 text NOT NULL,
    CONSTRAINT customers_bootstrap_tenant_key_key UNIQUE (bootstrap_tenant_key),
    CONSTRAINT customers_external_id_key UNIQUE (external_id)
);

-- Default listing order (most recently updated first) and its cursor.
CREATE INDEX customers_updated_idx ON customers (updated_at DESC, customer_id DESC);
CREATE INDEX customers_type_updated_idx ON customers (customer_type, updated_at DESC, customer_id DESC);
-- Text search over name, e-mail and website.
CREATE INDEX customers_search_idx ON customers
    USING gin ((lower(name || ' ' || coalesce(email, '') || ' ' || coalesce(website, ''))) gin_trgm_ops);

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE customers FORCE ROW LEVEL SECURITY;
CREATE POLICY customers_tenant ON customers
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));
