-- Crypto-shredding (docs/adr/0014): each user's data key, wrapped by the
-- master key that the database never sees. Erasing a user deletes the row;
-- what the key sealed (their titles, descriptions and tags in every event
-- and on every topic) can then be read by no one.
CREATE TABLE user_keys
(
    user_id       text PRIMARY KEY,
    -- Named in each sealed box: a user who comes back after an erasure gets
    -- a new key, and the old boxes stay shut.
    key_id        text        NOT NULL,
    -- nonce || ChaCha20-Poly1305(master key, data key), bound to user and key id
    wrapped       bytea       NOT NULL,
    -- Which master key wrapped it, for rotation.
    master_key_id text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Every erasure asked for, and when it completed.
CREATE TABLE erasures
(
    id           uuid PRIMARY KEY,
    user_id      text        NOT NULL,
    requested_at timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX erasures_by_user ON erasures (user_id);

-- Events stored before sealing began hold what a user typed in the clear;
-- an erasure blanks them where they lie (the only rewrite of a stored
-- event), to the values an erased sealed field reads as.
CREATE FUNCTION has_personal_fields(fields jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN fields ?| ARRAY['title', 'description', 'tags']
        OR (jsonb_typeof(fields -> 'next_occurrence') = 'object'
            AND (fields -> 'next_occurrence') ?| ARRAY['title', 'description', 'tags']);

CREATE FUNCTION erased_fields(fields jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN fields
        || CASE WHEN fields ? 'title' THEN '{"title": ""}'::jsonb ELSE '{}'::jsonb END
        || CASE WHEN fields ? 'description' THEN '{"description": null}'::jsonb ELSE '{}'::jsonb END
        || CASE WHEN fields ? 'tags' THEN '{"tags": []}'::jsonb ELSE '{}'::jsonb END;

CREATE FUNCTION erased_personal_fields(fields jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN erased_fields(fields)
        || CASE WHEN jsonb_typeof(fields -> 'next_occurrence') = 'object'
                THEN jsonb_build_object('next_occurrence', erased_fields(fields -> 'next_occurrence'))
                ELSE '{}'::jsonb END;

-- Events stay facts, never changed nor removed, except that the blanking
-- above may update them inside an erasure's transaction, which says so with
-- `SET LOCAL taskledger.erasure = 'on'`.
CREATE OR REPLACE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('taskledger.erasure', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'events are append-only (% refused)', TG_OP;
END $$;
