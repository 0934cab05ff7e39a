-- Logos: content-addressed image blobs (shared: the same image uploaded twice is stored once),
-- and the receipt each customer or client keeps of its logo.
CREATE TABLE logos (
    sha256       text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    size         integer NOT NULL,
    data         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE customers ADD COLUMN logo jsonb;
ALTER TABLE clients ADD COLUMN logo jsonb;
CREATE INDEX customers_logo_idx ON customers ((logo ->> 'sha256')) WHERE logo IS NOT NULL;
CREATE INDEX clients_logo_idx ON clients ((logo ->> 'sha256')) WHERE logo IS NOT NULL;
