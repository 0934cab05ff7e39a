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

-- Under the tenant policy of every tenant table; the answering work runs in the system scope.
ALTER TABLE snapshot_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE snapshot_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY snapshot_runs_tenant ON snapshot_runs
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));
