-- Projections share their topic's partitions across processes (docs/adr/0012).
-- A process running a projection is a member while it renews `seen_at`; a
-- partition is applied by the member that holds its lease, and every claim
-- moves the lease's epoch on. A batch commits only if its process still holds
-- the lease of every partition it touched, at the epoch it claimed: checked
-- (FOR SHARE) in the batch's own transaction, so a process that was paused
-- past its lease cannot apply a batch after its partition moved.
CREATE TABLE projection_members (
    projection text        NOT NULL,
    member     uuid        NOT NULL,
    -- host and process id, for operators
    process    text        NOT NULL DEFAULT '',
    seen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, member)
);

CREATE TABLE projection_leases (
    projection text   NOT NULL,
    partition  int    NOT NULL CHECK (partition >= 0),
    owner      uuid,
    epoch      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (projection, partition)
);

-- The member whose batch stored each offset last.
ALTER TABLE projection_offsets ADD COLUMN written_by uuid;
