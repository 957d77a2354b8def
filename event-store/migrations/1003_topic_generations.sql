-- Which life of each topic the relay is publishing: raised when the relay
-- starts publishing the log again from the beginning (a broker that lost the
-- topic, or `taskledger republish`). Consumers keep the generation beside
-- their offsets: offsets of an older generation point into a topic that no
-- longer exists, so a consumer that sees a new generation reads the topic
-- again from the beginning (docs/adr/0002).
CREATE TABLE topic_generations
(
    topic      text PRIMARY KEY,
    generation bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
