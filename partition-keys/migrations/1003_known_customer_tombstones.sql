-- A deleted customer stays in known_customers as a tombstone (status 'deleted', the version of
-- its deletion), so a stale event delivered after the deletion cannot bring it back (the kit's
-- projection contract, shared-model projection.rs).
ALTER TABLE known_customers DROP CONSTRAINT known_customers_status_check;
ALTER TABLE known_customers ADD CONSTRAINT known_customers_status_check
    CHECK (status IN ('active', 'deactivated', 'deleted'));
