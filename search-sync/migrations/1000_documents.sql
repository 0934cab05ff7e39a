-- The search index: one document per customer, client and contact, kept from customer-api's and
-- org-structure's events. pg_trgm and unaccent are trusted extensions: the database's owner
-- (the role `migrate` runs as) creates them without being a superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Lower case without accents, for matching. unaccent() itself is only STABLE (its dictionary
-- could change), so it cannot be indexed; naming the dictionary makes this wrapper IMMUTABLE.
CREATE FUNCTION search_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1));

-- The kit's projection contract: a row changes only for a newer version; a deletion stays as a
-- tombstone (deleted, its fields cleared) so a stale event cannot bring a document back.
CREATE TABLE documents (
    kind            text NOT NULL CHECK (kind IN ('customer', 'client', 'contact')),
    id              uuid NOT NULL,
    -- The customer the document is (kind customer) or belongs to.
    customer_id     uuid NOT NULL,
    -- The client the document is (kind client) or belongs to (a client's contact).
    client_id       uuid,
    -- The tenant whose search reaches it besides the customer's own: a customer's parent.
    parent_id       uuid,
    version         bigint NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    name            text NOT NULL DEFAULT '',
    email           text,
    phone           text,
    domain          text,
    external_id     text,
    codes           text[] NOT NULL DEFAULT '{}',
    -- business | consumer (customers), person | company (clients), the contact's type.
    type            text,
    status          text,
    -- False for a deactivated customer, a disabled client, an inactive contact.
    enabled         boolean NOT NULL DEFAULT true,
    tags            text[] NOT NULL DEFAULT '{}',
    assignee        text,
    country         text,
    city            text,
    industry_sector text,
    industry_group  text,
    size_range      text,
    groups          uuid[] NOT NULL DEFAULT '{}',
    created_at      timestamptz,
    updated_at      timestamptz,
    indexed_at      timestamptz NOT NULL DEFAULT now(),
    folded_name     text GENERATED ALWAYS AS (search_fold(name)) STORED,
    PRIMARY KEY (kind, id)
);
CREATE INDEX documents_customer_idx ON documents (customer_id, kind);
CREATE INDEX documents_client_idx ON documents (customer_id, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX documents_parent_idx ON documents (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX documents_name_trgm ON documents USING gin (folded_name gin_trgm_ops);

-- A tenant sees its own documents (its customer document, its clients and contacts) and those
-- of the customers it is the parent of; platform admins see all.
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY documents_tenant ON documents
    USING (customer_id = (SELECT app_current_customer())
           OR parent_id = (SELECT app_current_customer())
           OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer())
                OR (SELECT app_is_platform_admin()));
