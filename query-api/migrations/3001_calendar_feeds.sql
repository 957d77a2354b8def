-- Each user's calendar feed. The URL's secret is the feed id with a MAC of it
-- under a server key, so this table alone (a backup, a read replica) opens no
-- feed. Rotating replaces the feed id; the old URL then finds nothing.
CREATE TABLE calendar_feeds
(
    user_id    text PRIMARY KEY,
    feed_id    uuid        NOT NULL UNIQUE,
    rotated_at timestamptz NOT NULL DEFAULT now()
);
