-- Snapshot answers in progress (shared-model snapshot): one row per requested entity this
-- service owns, with the position its next page starts after. The answering job takes a row
-- FOR UPDATE SKIP LOCKED, so replicas share the work and a page is sent once.
CREATE TABLE snapshot_runs (
    snapshot_id    uuid NOT NULL,
    entity         text NOT NULL,
    -- The one tenant asked for; NULL for the whole platform.
    customer_id    uuid,
    -- The entity's place in the answer (pages go out entity by entity, in this order).
    position       integer NOT NULL,
    expected       bigint NOT NULL,
    sent           bigint NOT NULL DEFAULT 0,
    pages          bigint NOT NULL DEFAULT 0,
    after_customer uuid,
    after_id       uuid,
    done           boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (snapshot_id, entity)
);
CREATE INDEX snapshot_runs_pending ON snapshot_runs (created_at, position) WHERE NOT done;
