-- The relay polls instead of being notified. A NOTIFY in a transaction takes
-- a cluster-wide lock at commit, held until the commit is flushed, so every
-- command's commit waited for every other's: measured with pgbench on the
-- raw-insert baseline's table, a statement trigger calling pg_notify cut
-- inserts from 9,600 to 4,200 per second at 8 clients and from 13,200 to
-- 3,900 at 32. The relay now reads every few milliseconds when it has nothing
-- to do (docs/adr/0001, docs/adr/0011).
DROP TRIGGER events_wake_relay ON events;
DROP FUNCTION events_notify_relay();
