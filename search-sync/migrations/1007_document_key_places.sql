-- Where in its document each key's term is: 1 the name's words, 2 the other words (the city),
-- 4 the identifiers (a bit each, or-ed when a term is in more than one). A search within one
-- customer then ranks its candidates from the keys alone, and reads only the documents that
-- hold a term for every word of the query, where it read every candidate and tested its word
-- arrays per term. A document matches a term whose key is its own term's: two terms of one
-- customer sharing a 64-bit key would be taken for each other.

-- The key of a customer's term (1006's keys, one at a time).
CREATE FUNCTION search_scoped_key(customer uuid, term text) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN hashtextextended(customer::text || ' ' || term, 0);

CREATE OR REPLACE FUNCTION search_scoped_keys(customer uuid, terms text[]) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN coalesce(
        (SELECT array_agg(DISTINCT search_scoped_key(customer, t)) FROM unnest(terms) AS t),
        '{}');

-- A document's keys with the places of their terms.
CREATE FUNCTION search_term_keys(customer uuid, name_words text[], other_words text[],
                                 exact_terms text[])
    RETURNS TABLE (key bigint, places smallint)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT search_scoped_key(customer, t.term), bit_or(t.place)::smallint
      FROM (SELECT w, 1 FROM unnest(name_words) AS w
            UNION ALL
            SELECT w, 2 FROM unnest(other_words) AS w
            UNION ALL
            SELECT w, 4 FROM unnest(exact_terms) AS w) AS t(term, place)
     GROUP BY 1;
END;

ALTER TABLE document_keys ADD COLUMN places smallint NOT NULL DEFAULT 7;

CREATE OR REPLACE FUNCTION documents_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM document_keys
         WHERE key = ANY (search_scoped_keys(OLD.customer_id,
                                             OLD.name_words || OLD.other_words || OLD.exact_terms))
           AND kind = OLD.kind AND id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NOT NEW.deleted THEN
        INSERT INTO document_keys (key, kind, id, places, customer_id, parent_id)
        SELECT k.key, NEW.kind, NEW.id, k.places, NEW.customer_id, NEW.parent_id
          FROM search_term_keys(NEW.customer_id, NEW.name_words, NEW.other_words,
                                NEW.exact_terms) AS k;
    END IF;
    RETURN NULL;
END
$$;

-- The keys already written, again with their places (as 1006, under this transaction's
-- platform admin setting).
SELECT set_config('app.platform_admin', 'on', true);
TRUNCATE document_keys;
INSERT INTO document_keys (key, kind, id, places, customer_id, parent_id)
SELECT k.key, d.kind, d.id, k.places, d.customer_id, d.parent_id
  FROM documents d,
       search_term_keys(d.customer_id, d.name_words, d.other_words, d.exact_terms) AS k
 WHERE NOT d.deleted;
ALTER TABLE document_keys ALTER COLUMN places DROP DEFAULT;
