-- Each user's stored task events are counted by the relay, in bulk, not by
-- every command's insert (docs/adr/0010). The statement trigger of 1004 cost
-- a command about a fifth of its Postgres time (an upsert of a counter row
-- and the rows of a transition table), and one user's commands on tasks whose
-- counts shared a row waited for each other's commit.
--
-- `user_writes` now holds every user's events up to one position of the
-- global log, `user_writes_counted`; the relay moves that position forward
-- with its checkpoint (`user_writes_count_through`), adding up the events in
-- between. A position the relay saves is below the transaction horizon (ADR
-- 0001): no event can appear at or before it later, so each event is counted
-- exactly once, and a republish, which starts a relay's checkpoint again
-- from the beginning, counts nothing twice. What a read compares is the
-- counted events plus the caller's events after the position
-- (`user_events_stored`), a short range of the global log's index while the
-- relay keeps up.
--
-- The events table's unique index on `event_id` goes too: nothing looks an
-- event up by it (a consumer compares the id of the event it reads by task
-- and sequence), and a random UUID's index entry lands on a random page.

DROP TRIGGER events_count_user_writes ON events;
DROP FUNCTION events_count_user_writes();
DROP FUNCTION user_writes_part(text);
DROP INDEX events_event_id;

-- No command can insert an event while this runs: dropping the trigger waits
-- for every transaction that touched `events` and holds the table until the
-- migration commits. A transaction that began before it and has yet to
-- insert has an id at or above the horizon, so it lands after the position.
CREATE TABLE user_writes_counted
(
    one             boolean PRIMARY KEY DEFAULT true CHECK (one),
    transaction_id  xid8   NOT NULL,
    global_position bigint NOT NULL
);

INSERT INTO user_writes_counted (transaction_id, global_position)
SELECT coalesce(max(transaction_id), '0'::xid8), coalesce(max(global_position), 0)
  FROM (SELECT transaction_id, global_position
          FROM events
         WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY transaction_id DESC, global_position DESC
         LIMIT 1) last;

-- What the trigger counted, less each user's events after the position
-- (the relay counts those): only that tail is read, and an erased user's
-- count, which their erasure deleted, stays nothing.
CREATE TEMPORARY TABLE user_writes_summed ON COMMIT DROP AS
SELECT user_id, sum(events)::bigint AS events FROM user_writes GROUP BY 1;
DROP TABLE user_writes;
CREATE TABLE user_writes
(
    user_id text   PRIMARY KEY,
    events  bigint NOT NULL
);

INSERT INTO user_writes (user_id, events) SELECT user_id, events FROM user_writes_summed;

INSERT INTO user_writes AS w (user_id, events)
SELECT e.metadata ->> 'user_id', -count(*)
  FROM events e, user_writes_counted c
 WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)
   AND e.aggregate_type = 'Task' AND e.metadata ->> 'user_id' IS NOT NULL
 GROUP BY 1
ON CONFLICT (user_id) DO UPDATE SET events = w.events + excluded.events;

-- Adds the events after the counted position up to `through` (a relay's
-- checkpoint, below the horizon) and moves the position there; answers how
-- many users' counts moved. A position at or before the counted one (a
-- relay behind another, or republishing) counts nothing.
CREATE FUNCTION user_writes_count_through(through_transaction xid8, through_position bigint)
    RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    counted user_writes_counted;
    moved   bigint;
BEGIN
    SELECT * INTO counted FROM user_writes_counted FOR UPDATE;
    IF (counted.transaction_id, counted.global_position) >= (through_transaction, through_position) THEN
        RETURN 0;
    END IF;
    WITH fresh AS (
        SELECT metadata ->> 'user_id' AS user_id, count(*) AS events
          FROM events
         WHERE (transaction_id, global_position) > (counted.transaction_id, counted.global_position)
           AND (transaction_id, global_position) <= (through_transaction, through_position)
           AND aggregate_type = 'Task' AND metadata ->> 'user_id' IS NOT NULL
         GROUP BY 1
    ), upserted AS (
        INSERT INTO user_writes AS w (user_id, events)
        SELECT user_id, events FROM fresh ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET events = w.events + excluded.events
        RETURNING 1
    )
    SELECT count(*) INTO moved FROM upserted;
    UPDATE user_writes_counted
       SET transaction_id = through_transaction, global_position = through_position;
    RETURN moved;
END $$;

-- A user's stored task events: those counted, and theirs among the first
-- `tail_limit` events after the counted position. NULL when more than
-- `tail_limit` events wait to be counted (the relay is far behind, so the
-- read side is too, and looking further would cost the read that much).
CREATE FUNCTION user_events_stored(who text, tail_limit integer)
    RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    counted user_writes_counted;
    scanned bigint;
    theirs  bigint;
BEGIN
    SELECT * INTO counted FROM user_writes_counted;
    SELECT count(*), count(*) FILTER (WHERE t.aggregate_type = 'Task' AND t.metadata ->> 'user_id' = who)
      INTO scanned, theirs
      FROM (SELECT aggregate_type, metadata
              FROM events
             WHERE (transaction_id, global_position) > (counted.transaction_id, counted.global_position)
             ORDER BY transaction_id, global_position
             LIMIT tail_limit + 1) t;
    IF scanned > tail_limit THEN
        RETURN NULL;
    END IF;
    RETURN theirs + coalesce((SELECT events FROM user_writes WHERE user_id = who), 0);
END $$;

-- An erased user's count starts again at nothing: what is counted, less
-- their events after the counted position, which the relay will add when it
-- passes them. Taken under the count's lock, so the relay cannot move the
-- position in between.
CREATE FUNCTION user_writes_forget(who text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    counted user_writes_counted;
BEGIN
    SELECT * INTO counted FROM user_writes_counted FOR UPDATE;
    INSERT INTO user_writes AS w (user_id, events)
    SELECT who, -count(*)
      FROM events
     WHERE (transaction_id, global_position) > (counted.transaction_id, counted.global_position)
       AND aggregate_type = 'Task' AND metadata ->> 'user_id' = who
    ON CONFLICT (user_id) DO UPDATE SET events = excluded.events;
END $$;
