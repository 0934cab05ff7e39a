-- Domain-based self-registration settings. A domain (and a custom host) belongs to at most one
-- customer platform-wide: registration_domains is keyed by the domain alone, so a second
-- customer claiming it violates the primary key even though RLS hides the first one's row.
CREATE TABLE registration_settings (
    customer_id  uuid PRIMARY KEY REFERENCES customers (customer_id) ON DELETE CASCADE,
    enabled      boolean NOT NULL,
    auto_roles   text[] NOT NULL DEFAULT '{}',
    custom_host  text,
    version      bigint NOT NULL DEFAULT 1,
    updated_at   timestamptz NOT NULL,
    updated_by   text NOT NULL,
    CONSTRAINT registration_settings_custom_host_key UNIQUE (custom_host)
);

CREATE TABLE registration_domains (
    domain      text PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES registration_settings (customer_id) ON DELETE CASCADE
);
CREATE INDEX registration_domains_customer_idx ON registration_domains (customer_id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['registration_settings', 'registration_domains'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I
            USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
            WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))',
            t || '_tenant', t);
    END LOOP;
END $$;
