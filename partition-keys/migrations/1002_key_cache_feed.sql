-- Change feed of the verification cache. Every replica LISTENs on `key_cache` and drops what a
-- notification names: `k:<hex key hash>` (a key was created, changed in a way verification
-- sees, or deleted), `p:<partition id>` (a partition's status changed or it was deleted) and
-- `c:<customer id>` (a customer's status changed or it was removed). Triggers rather than
-- application code send them, so no write path can forget to. PostgreSQL delivers them at
-- commit, in commit order; replicas also send heartbeats (`h:...`) on the channel to prove the
-- feed is alive (see keys/verify.rs).

CREATE FUNCTION key_cache_notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('key_cache', 'k:' || encode(OLD.key_hash, 'hex'));
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.key_hash <> OLD.key_hash) THEN
        PERFORM pg_notify('key_cache', 'k:' || encode(NEW.key_hash, 'hex'));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_key_cache AFTER INSERT OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION key_cache_notify_key();
-- lastUsedAt and the expiry event marker change often and decide nothing.
CREATE TRIGGER api_keys_key_cache_update AFTER UPDATE ON api_keys
    FOR EACH ROW WHEN (
        OLD.key_hash IS DISTINCT FROM NEW.key_hash
        OR OLD.customer_id IS DISTINCT FROM NEW.customer_id
        OR OLD.partition_id IS DISTINCT FROM NEW.partition_id
        OR OLD.environment IS DISTINCT FROM NEW.environment
        OR OLD.scopes IS DISTINCT FROM NEW.scopes
        OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at)
    EXECUTE FUNCTION key_cache_notify_key();

CREATE FUNCTION key_cache_notify_partition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('key_cache', 'p:' || OLD.partition_id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER partitions_key_cache AFTER DELETE ON partitions
    FOR EACH ROW EXECUTE FUNCTION key_cache_notify_partition();
CREATE TRIGGER partitions_key_cache_update AFTER UPDATE ON partitions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION key_cache_notify_partition();

CREATE FUNCTION key_cache_notify_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('key_cache', 'c:' || OLD.customer_id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER known_customers_key_cache AFTER DELETE ON known_customers
    FOR EACH ROW EXECUTE FUNCTION key_cache_notify_customer();
CREATE TRIGGER known_customers_key_cache_update AFTER UPDATE ON known_customers
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION key_cache_notify_customer();
