-- A topic being replaced by one with more partitions (infra/src/kafka/
-- partitions.rs). While its row exists every consumer of the topic lets go of
-- it and waits: a consumer fetching from a topic that is deleted under it
-- gets nothing useful, and librdkafka against the local broker crashes on
-- what that broker answers for it. The process replacing the topic writes the
-- row, waits for the consumers to let go, deletes and creates the topic, has
-- its content published again, then removes the row.
CREATE TABLE topic_replacements
(
    topic      text PRIMARY KEY,
    partitions integer     NOT NULL CHECK (partitions > 0),
    since      timestamptz NOT NULL DEFAULT now()
);
