-- Partition groups: a tree per customer (parent optional, no cycles), partitions in at most one.
CREATE TABLE partition_groups (
    customer_id     uuid NOT NULL REFERENCES known_customers (customer_id) ON DELETE CASCADE,
    group_id        uuid NOT NULL,
    name            text NOT NULL,
    description     text,
    parent_group_id uuid,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (customer_id, group_id),
    FOREIGN KEY (customer_id, parent_group_id)
        REFERENCES partition_groups (customer_id, group_id) ON DELETE SET NULL (parent_group_id)
);
CREATE UNIQUE INDEX partition_groups_name_key ON partition_groups (customer_id, lower(name));

ALTER TABLE partitions ADD COLUMN group_id uuid,
    ADD FOREIGN KEY (customer_id, group_id)
        REFERENCES partition_groups (customer_id, group_id) ON DELETE SET NULL (group_id);
CREATE INDEX partitions_group_idx ON partitions (customer_id, group_id) WHERE group_id IS NOT NULL;

ALTER TABLE partition_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE partition_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY partition_groups_tenant ON partition_groups
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()))
    WITH CHECK (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));
