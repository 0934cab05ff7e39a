-- Clients of a customer, their address books, tags, groups and the customer's roles.
-- Every table leads with customer_id (the tenant) and is guarded by the same RLS policy.

CREATE TABLE clients (
    customer_id             uuid NOT NULL REFERENCES customers (customer_id) ON DELETE CASCADE,
    client_id               uuid NOT NULL,
    client_type             text NOT NULL CHECK (client_type IN ('business', 'individual')),
    name                    text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    first_name              text,
    last_name               text,
    email                   text,
    phone                   text,
    locale                  text,
    business_profile        jsonb,
    external_id             text,
    status                  text NOT NULL CHECK (status IN ('lead', 'active', 'inactive', 'churned')),
    source                  text NOT NULL CHECK (source IN ('direct', 'referral', 'partner', 'marketing', 'other')),
    assignee                text,
    revenue_currency        text,
    revenue_total_minor     bigint NOT NULL DEFAULT 0,
    purchase_count          bigint NOT NULL DEFAULT 0,
    first_purchase_at       timestamptz,
    last_purchase_at        timestamptz,
    disabled                boolean NOT NULL DEFAULT false,
    provisioned_customer_id uuid,
    version                 bigint NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL,
    created_by              text NOT NULL,
    updated_at              timestamptz NOT NULL,
    updated_by              text NOT NULL,
    PRIMARY KEY (customer_id, client_id),
    CONSTRAINT clients_external_id_key UNIQUE (customer_id, external_id),
    CONSTRAINT clients_provisioned_customer_key UNIQUE (provisioned_customer_id)
);
CREATE INDEX clients_updated_idx ON clients (customer_id, updated_at DESC, client_id DESC);
CREATE INDEX clients_status_idx ON clients (customer_id, status, updated_at DESC);
CREATE INDEX clients_assignee_idx ON clients (customer_id, assignee) WHERE assignee IS NOT NULL;
CREATE INDEX clients_search_idx ON clients
    USING gin ((lower(name || ' ' || coalesce(email, '') || ' ' || coalesce(external_id, ''))) gin_trgm_ops);

CREATE TABLE client_addresses (
    customer_id      uuid NOT NULL,
    address_id       uuid NOT NULL,
    client_id        uuid NOT NULL,
    label            text,
    lines            text[] NOT NULL,
    city             text,
    region           text,
    postal_code      text,
    country          text,
    default_shipping boolean NOT NULL DEFAULT false,
    default_billing  boolean NOT NULL DEFAULT false,
    version          bigint NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (customer_id, address_id),
    FOREIGN KEY (customer_id, client_id) REFERENCES clients (customer_id, client_id) ON DELETE CASCADE
);
CREATE INDEX client_addresses_client_idx ON client_addresses (customer_id, client_id);
CREATE UNIQUE INDEX client_addresses_default_shipping_key
    ON client_addresses (customer_id, client_id) WHERE default_shipping;
CREATE UNIQUE INDEX client_addresses_default_billing_key
    ON client_addresses (customer_id, client_id) WHERE default_billing;

CREATE TABLE tags (
    customer_id uuid NOT NULL REFERENCES customers (customer_id) ON DELETE CASCADE,
    tag_id      uuid NOT NULL,
    name        text NOT NULL,
    color       text NOT NULL CHECK (color ~ '^#[0-9a-f]{6}$'),
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, tag_id)
);
CREATE UNIQUE INDEX tags_name_key ON tags (customer_id, lower(name));

CREATE TABLE client_tags (
    customer_id uuid NOT NULL,
    client_id   uuid NOT NULL,
    tag_id      uuid NOT NULL,
    applied_at  timestamptz NOT NULL,
    applied_by  text NOT NULL,
    PRIMARY KEY (customer_id, client_id, tag_id),
    FOREIGN KEY (customer_id, client_id) REFERENCES clients (customer_id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (customer_id, tag_id) REFERENCES tags (customer_id, tag_id) ON DELETE CASCADE
);
CREATE INDEX client_tags_tag_idx ON client_tags (customer_id, tag_id);

CREATE TABLE client_groups (
    customer_id   uuid NOT NULL REFERENCES customers (customer_id) ON DELETE CASCADE,
    group_id      uuid NOT NULL,
    name          text NOT NULL,
    description   text,
    price_list_id text,
    priority      integer NOT NULL DEFAULT 0,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (customer_id, group_id)
);
CREATE UNIQUE INDEX client_groups_name_key ON client_groups (customer_id, lower(name));

CREATE TABLE client_group_members (
    customer_id uuid NOT NULL,
    group_id    uuid NOT NULL,
    client_id   uuid NOT NULL,
    assigned_at timestamptz NOT NULL,
    assigned_by text NOT NULL,
    PRIMARY KEY (customer_id, group_id, client_id),
    FOREIGN KEY (customer_id, group_id) REFERENCES client_groups (customer_id, group_id) ON DELETE CASCADE,
    FOREIGN KEY (customer_id, client_id) REFERENCES clients (customer_id, client_id) ON DELETE CASCADE
);
CREATE INDEX client_group_members_client_idx ON client_group_members (customer_id, client_id);

CREATE TABLE roles (
    customer_id uuid NOT NULL REFERENCES customers (customer_id) ON DELETE CASCADE,
    role_id     uuid NOT NULL,
    name        text NOT NULL,
    description text,
    permissions text[] NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, role_id)
);
CREATE UNIQUE INDEX roles_name_key ON roles (customer_id, lower(name));

-- The default roles of customers created before roles existed (new customers get them when
-- they are created; the permission sets match customer-api's roles::DEFAULT_ROLES).
INSERT INTO roles (customer_id, role_id, name, description, permissions, is_default, created_at, updated_at)
SELECT c.customer_id, gen_random_uuid(), d.name, d.description, d.permissions, true, now(), now()
  FROM customers c
 CROSS JOIN (VALUES
    ('TenantAdmin', 'Administers the tenant',
     ARRAY['EditCustomer', 'ViewCustomer', 'EditClient', 'ViewClient', 'ManagePartitions',
           'EditRegistrationSettings', 'SearchTenants', 'ManageOrgStructure', 'ManageGdpr']),
    ('ClientEditor', 'Edits clients', ARRAY['ViewCustomer', 'EditClient', 'ViewClient']),
    ('ClientViewer', 'Reads clients', ARRAY['ViewCustomer', 'ViewClient'])
 ) AS d (name, description, permissions);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['clients', 'client_addresses', 'tags', 'client_tags', 'client_groups',
                             'client_group_members', 'roles'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I
            USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
            WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))',
            t || '_tenant', t);
    END LOOP;
END $$;
