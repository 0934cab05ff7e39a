-- A customer's documents holding a term, by one index lookup. Under row-level security an
-- index can only serve a condition whose operator is leakproof; the array operators the word
-- indexes of 1001 answer are not, so a search within one customer read every document of the
-- customer and tested each. Here each term of a live document (its words and identifiers, as
-- 1001 derives them) is one row keyed by a hash of the term with the document's customer id;
-- integer equality is leakproof, so a search whose scope pins one customer (a tenant's clients
-- and contacts, one client) finds its candidates through the primary key. Two terms sharing a
-- hash only let a document through that the per-term test after it then drops.
CREATE FUNCTION search_scoped_keys(customer uuid, terms text[]) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN coalesce(
        (SELECT array_agg(DISTINCT hashtextextended(customer::text || ' ' || t, 0))
           FROM unnest(terms) AS t),
        '{}');

CREATE TABLE document_keys (
    key         bigint NOT NULL,
    kind        text NOT NULL,
    id          uuid NOT NULL,
    -- The document's owners, for the same policy as the document's.
    customer_id uuid NOT NULL,
    parent_id   uuid,
    PRIMARY KEY (key, kind, id)
);

ALTER TABLE document_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY document_keys_tenant ON document_keys
    USING (customer_id = (SELECT app_current_customer())
           OR parent_id = (SELECT app_current_customer())
           OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer())
                OR (SELECT app_is_platform_admin()));

-- Kept by the document's writes, in their transaction: an insert adds the keys, a change of
-- terms or owners replaces them, a tombstone or a delete removes them.
CREATE FUNCTION documents_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM document_keys
         WHERE key = ANY (search_scoped_keys(OLD.customer_id,
                                             OLD.name_words || OLD.other_words || OLD.exact_terms))
           AND kind = OLD.kind AND id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NOT NEW.deleted THEN
        INSERT INTO document_keys (key, kind, id, customer_id, parent_id)
        SELECT k, NEW.kind, NEW.id, NEW.customer_id, NEW.parent_id
          FROM unnest(search_scoped_keys(NEW.customer_id,
                                         NEW.name_words || NEW.other_words || NEW.exact_terms)) AS k;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER documents_keys_insert AFTER INSERT ON documents
    FOR EACH ROW WHEN (NOT NEW.deleted) EXECUTE FUNCTION documents_keys();
CREATE TRIGGER documents_keys_update AFTER UPDATE ON documents
    FOR EACH ROW WHEN (OLD.deleted IS DISTINCT FROM NEW.deleted
                       OR OLD.customer_id IS DISTINCT FROM NEW.customer_id
                       OR OLD.parent_id IS DISTINCT FROM NEW.parent_id
                       OR OLD.name_words IS DISTINCT FROM NEW.name_words
                       OR OLD.other_words IS DISTINCT FROM NEW.other_words
                       OR OLD.exact_terms IS DISTINCT FROM NEW.exact_terms)
    EXECUTE FUNCTION documents_keys();
CREATE TRIGGER documents_keys_delete AFTER DELETE ON documents
    FOR EACH ROW WHEN (NOT OLD.deleted) EXECUTE FUNCTION documents_keys();

-- The documents already indexed (the policy above lets the migration's own writes through
-- as a platform admin's, for this transaction only).
SELECT set_config('app.platform_admin', 'on', true);
INSERT INTO document_keys (key, kind, id, customer_id, parent_id)
SELECT k, d.kind, d.id, d.customer_id, d.parent_id
  FROM documents d, unnest(search_scoped_keys(d.customer_id,
                                             d.name_words || d.other_words || d.exact_terms)) AS k
 WHERE NOT d.deleted;
