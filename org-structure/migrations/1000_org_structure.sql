-- Customers and clients as org-structure knows them, from customer-api's events (the kit's
-- projection contract: version-guarded; a deletion stays as a tombstone, status 'deleted', so a
-- stale event delivered later cannot bring the owner back).
CREATE TABLE known_customers (
    customer_id   uuid PRIMARY KEY,
    status        text NOT NULL CHECK (status IN ('active', 'deactivated', 'deleted')),
    version       bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE known_clients (
    customer_id   uuid NOT NULL,
    client_id     uuid NOT NULL,
    status        text NOT NULL CHECK (status IN ('active', 'disabled', 'deleted')),
    version       bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, client_id)
);

-- Every entity belongs to an owner: the customer itself (client_id NULL) or one of its clients.
-- owner_id is the client's id, or the customer's for the customer's own entities, so that
-- "unique per owner" and "of the same owner" are plain keys and foreign keys.

CREATE TABLE locations (
    customer_id    uuid NOT NULL,
    location_id    uuid NOT NULL,
    client_id      uuid,
    owner_id       uuid NOT NULL,
    name           text NOT NULL,
    secondary_name text,
    kind           text NOT NULL CHECK (kind IN ('hq', 'branch', 'warehouse', 'store', 'other')),
    code           text CHECK (code ~ '^[A-Za-z0-9_-]{1,64}$'),
    address        jsonb,
    phone          text,
    email          text,
    website        text,
    time_zone      text,
    notes          text,
    active         boolean NOT NULL,
    -- 'customer' or 'client': an HQ made from the owner's address, kept in step with it until
    -- the location's address or kind is changed through the API.
    derived_from   text CHECK (derived_from IN ('customer', 'client')),
    version        bigint NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (customer_id, location_id),
    UNIQUE (customer_id, owner_id, location_id),
    CHECK (owner_id = coalesce(client_id, customer_id))
);
CREATE UNIQUE INDEX locations_code_key ON locations (customer_id, owner_id, code);
-- At most one HQ per owner.
CREATE UNIQUE INDEX locations_hq_key ON locations (customer_id, owner_id) WHERE kind = 'hq';
CREATE INDEX locations_owner_idx ON locations (customer_id, owner_id, lower(name), location_id);

CREATE TABLE departments (
    customer_id   uuid NOT NULL,
    department_id uuid NOT NULL,
    client_id     uuid,
    owner_id      uuid NOT NULL,
    name          text NOT NULL,
    code          text CHECK (code ~ '^[A-Za-z0-9_-]{1,64}$'),
    parent_id     uuid,
    location_id   uuid,
    active        boolean NOT NULL,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (customer_id, department_id),
    UNIQUE (customer_id, owner_id, department_id),
    CHECK (owner_id = coalesce(client_id, customer_id)),
    CHECK (parent_id <> department_id),
    FOREIGN KEY (customer_id, owner_id, parent_id)
        REFERENCES departments (customer_id, owner_id, department_id),
    FOREIGN KEY (customer_id, owner_id, location_id)
        REFERENCES locations (customer_id, owner_id, location_id)
);
CREATE UNIQUE INDEX departments_code_key ON departments (customer_id, owner_id, code);
CREATE INDEX departments_owner_idx ON departments (customer_id, owner_id, lower(name), department_id);
CREATE INDEX departments_parent_idx ON departments (customer_id, owner_id, parent_id);
CREATE INDEX departments_location_idx ON departments (customer_id, owner_id, location_id);

CREATE TABLE contacts (
    customer_id   uuid NOT NULL,
    contact_id    uuid NOT NULL,
    client_id     uuid,
    owner_id      uuid NOT NULL,
    type          text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]{0,31}$'),
    is_primary    boolean NOT NULL,
    salutation    text,
    first_name    text,
    last_name     text NOT NULL,
    job_title     text,
    email         text,
    phone         text,
    mobile        text,
    location_id   uuid,
    department_id uuid,
    locale        text,
    active        boolean NOT NULL,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (customer_id, contact_id),
    CHECK (owner_id = coalesce(client_id, customer_id)),
    FOREIGN KEY (customer_id, owner_id, location_id)
        REFERENCES locations (customer_id, owner_id, location_id),
    FOREIGN KEY (customer_id, owner_id, department_id)
        REFERENCES departments (customer_id, owner_id, department_id)
);
-- At most one primary contact per owner and type.
CREATE UNIQUE INDEX contacts_primary_key ON contacts (customer_id, owner_id, type) WHERE is_primary;
CREATE INDEX contacts_owner_idx ON contacts (customer_id, owner_id, lower(last_name), contact_id);
CREATE INDEX contacts_location_idx ON contacts (customer_id, owner_id, location_id);
CREATE INDEX contacts_department_idx ON contacts (customer_id, owner_id, department_id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['known_customers', 'known_clients', 'locations', 'departments',
                             'contacts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I
            USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
            WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))',
            t || '_tenant', t);
    END LOOP;
END $$;
