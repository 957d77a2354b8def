-- Tasks the task list keeps no row of because events of theirs read as
-- erased (docs/adr/0014: an erasure drops every task its user typed into),
-- with the version applied when their rows went. A later batch then reads
-- only the events after it, and counts only those as applied per writer
-- (docs/adr/0010), instead of reading and counting the whole task again.
CREATE TABLE task_list_gone
(
    id      uuid PRIMARY KEY,
    version bigint NOT NULL
);
