-- What a search matches: each document's words, and the vocabulary a query word is expanded
-- over (exact, prefix, typos) before the documents are looked up by the terms it found.

-- The folded words of a text: split on everything but letters and digits.
CREATE FUNCTION search_words(text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce(
        (SELECT array_agg(DISTINCT w) FROM regexp_split_to_table(search_fold($1), '[^[:alnum:]]+') AS w
          WHERE w <> ''),
        '{}');

-- Identifiers matched exactly or as a prefix, never with typos: the e-mail address, the phone
-- number (with and without its +), the domain, the external id and the codes, folded.
CREATE FUNCTION search_exact(email text, phone text, domain text, external_id text, codes text[])
    RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN array_remove(
        ARRAY[search_fold(email), phone, ltrim(phone, '+'), search_fold(domain),
              search_fold(external_id)]
        || coalesce((SELECT array_agg(search_fold(c)) FROM unnest(codes) AS c), '{}'),
        NULL);

ALTER TABLE documents
    ADD COLUMN name_words text[] GENERATED ALWAYS AS (search_words(name)) STORED,
    ADD COLUMN other_words text[] GENERATED ALWAYS AS (search_words(city)) STORED,
    ADD COLUMN exact_terms text[]
        GENERATED ALWAYS AS (search_exact(email, phone, domain, external_id, codes)) STORED;
CREATE INDEX documents_name_words ON documents USING gin (name_words);
CREATE INDEX documents_other_words ON documents USING gin (other_words);
CREATE INDEX documents_exact_terms ON documents USING gin (exact_terms);

-- Every term any document has had (a term no document has any more finds nothing). Words may
-- match with typos; identifiers (exact) only exactly or as a prefix. It holds no tenant's rows,
-- only terms: a search reaches documents through their own row-level security.
CREATE TABLE vocabulary (
    term  text NOT NULL,
    exact boolean NOT NULL,
    PRIMARY KEY (term, exact)
);
CREATE INDEX vocabulary_prefix ON vocabulary (term text_pattern_ops, exact);
CREATE INDEX vocabulary_trgm ON vocabulary USING gin (term gin_trgm_ops) WHERE NOT exact;

CREATE FUNCTION documents_vocabulary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vocabulary (term, exact)
    SELECT t, false FROM unnest(NEW.name_words || NEW.other_words) AS t
    UNION
    SELECT t, true FROM unnest(NEW.exact_terms) AS t
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER documents_vocabulary AFTER INSERT OR UPDATE ON documents
    FOR EACH ROW WHEN (NOT NEW.deleted) EXECUTE FUNCTION documents_vocabulary();
