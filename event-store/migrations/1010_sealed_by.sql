-- The user whose key sealed an event's personal fields (docs/adr/0014),
-- computed once as the event is stored: every read joins `user_keys` on it
-- instead of Postgres parsing each row's `json` payload to find the box's
-- owner (about 2 µs an event read, a fifth of a rebuild). NULL for events
-- without a box. Adding it rewrites the table once.
ALTER TABLE events
    ADD COLUMN sealed_by text GENERATED ALWAYS AS (payload -> event_type -> 'sealed' ->> 'by') STORED;
