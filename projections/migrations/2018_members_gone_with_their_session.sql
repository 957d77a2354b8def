-- A member whose Postgres session has ended is gone at once (docs/adr/0012):
-- a process killed without warning closes its connections, and the others
-- take its partitions at their next round instead of after the lease's
-- time. Each member names the backend of the session it renews from; a
-- member whose backend no longer runs is dropped like one whose lease ran
-- out. A paused process keeps its session, and with it its membership, until
-- its lease runs out; the fencing of batches stays what keeps it from
-- applying anything after its partitions moved.
ALTER TABLE projection_members
    ADD COLUMN backend_pid     int,
    ADD COLUMN backend_started timestamptz;
