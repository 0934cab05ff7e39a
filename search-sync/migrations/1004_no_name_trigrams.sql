-- Searches match through the word arrays and the vocabulary's trigrams (1001), never the
-- folded name's trigrams: the index only cost every document write its trigram entries.
DROP INDEX documents_name_trgm;
