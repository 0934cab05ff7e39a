-- Reindexes: the index rebuilt from the owning services' snapshots (shared-model snapshot)
-- beside the live documents, then merged into them in one transaction (search-sync README,
-- "Reindexing"). Platform admins only.
CREATE TABLE reindexes (
    reindex_id   uuid PRIMARY KEY,
    -- The one tenant rebuilt; NULL for the whole platform.
    customer_id  uuid,
    state        text NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL,
    -- The last page received (a reindex with none for reindex_stall_seconds fails).
    progress_at  timestamptz NOT NULL,
    completed_at timestamptz,
    error        text,
    -- At the switch: documents written from the rebuild, and documents removed because no
    -- owning service has them any more.
    written      bigint NOT NULL DEFAULT 0,
    removed      bigint NOT NULL DEFAULT 0
);
-- One reindex at a time.
CREATE UNIQUE INDEX reindexes_one_running ON reindexes ((true)) WHERE state = 'running';
CREATE INDEX reindexes_requested ON reindexes (requested_at DESC, reindex_id DESC);

-- What each reindex waits for: one row per entity (`customer`, `client`, `client_address`,
-- `contact`), filled in by the owning service's snapshot.started and snapshot.page events.
CREATE TABLE reindex_parts (
    reindex_id uuid NOT NULL REFERENCES reindexes ON DELETE CASCADE,
    entity     text NOT NULL,
    position   integer NOT NULL,
    source     text,
    expected   bigint,
    received   bigint NOT NULL DEFAULT 0,
    -- Pages applied, and the number of the last one once it has arrived: the part is done
    -- when both are equal (replicas may apply one answer's pages out of order).
    pages      bigint NOT NULL DEFAULT 0,
    last_page  bigint,
    done       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (reindex_id, entity)
);

-- The next generation of the index, while it is built: the documents the snapshots describe.
CREATE TABLE rebuild_documents (
    reindex_id      uuid NOT NULL,
    kind            text NOT NULL,
    id              uuid NOT NULL,
    customer_id     uuid NOT NULL,
    client_id       uuid,
    parent_id       uuid,
    version         bigint NOT NULL,
    name            text NOT NULL,
    email           text,
    phone           text,
    domain          text,
    external_id     text,
    codes           text[] NOT NULL,
    type            text,
    status          text,
    enabled         boolean NOT NULL,
    tags            text[] NOT NULL,
    assignee        text,
    country         text,
    city            text,
    industry_sector text,
    industry_group  text,
    size_range      text,
    groups          uuid[] NOT NULL,
    created_at      timestamptz,
    updated_at      timestamptz,
    PRIMARY KEY (reindex_id, kind, id)
);

ALTER TABLE reindexes ENABLE ROW LEVEL SECURITY;
ALTER TABLE reindexes FORCE ROW LEVEL SECURITY;
CREATE POLICY reindexes_admin ON reindexes
    USING ((SELECT app_is_platform_admin())) WITH CHECK ((SELECT app_is_platform_admin()));
ALTER TABLE reindex_parts ENABLE ROW LEVEL SECURITY;
ALTER TABLE reindex_parts FORCE ROW LEVEL SECURITY;
CREATE POLICY reindex_parts_admin ON reindex_parts
    USING ((SELECT app_is_platform_admin())) WITH CHECK ((SELECT app_is_platform_admin()));
ALTER TABLE rebuild_documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE rebuild_documents FORCE ROW LEVEL SECURITY;
CREATE POLICY rebuild_documents_admin ON rebuild_documents
    USING ((SELECT app_is_platform_admin())) WITH CHECK ((SELECT app_is_platform_admin()));
