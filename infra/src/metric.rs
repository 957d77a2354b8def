//! Every metric Taskledger exposes at `/metrics`, in one place: its name, what
//! it measures, and its labels. Each role records through these names;
//! [`describe`] gives Prometheus their help text once the recorder is set up.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Long work of a command (`rebuild`, `verify`), by `work`: how far it is,
/// how far it goes, and its rate per second.
pub const PROGRESS_DONE: &str = "taskledger_progress_done";
pub const PROGRESS_TOTAL: &str = "taskledger_progress_total";
pub const PROGRESS_RATE: &str = "taskledger_progress_rate";
/// Commands that appended events (`outcome="applied"`).
pub const COMMANDS: &str = "taskledger_commands_total";
/// Commands by whether their task was warm in this process: `hit`, `miss`,
/// and `eviction` when one was let go to make room.
pub const WARM_TASKS: &str = "taskledger_warm_tasks_total";
/// Appends that lost an optimistic-concurrency race.
pub const COMMAND_CONFLICTS: &str = "taskledger_command_conflicts_total";
/// GraphQL requests by `outcome`: `ok`, `error`, or `refused` before execution.
pub const GRAPHQL_REQUESTS: &str = "taskledger_graphql_requests_total";
pub const GRAPHQL_REQUEST_SECONDS: &str = "taskledger_graphql_request_seconds";
/// GraphQL documents by `outcome`: `kept` (parsed before and kept) or
/// `parsed` (read now).
pub const GRAPHQL_DOCUMENTS: &str = "taskledger_graphql_documents_total";
/// Look-ups of a caller's shared lists by `outcome`: `read` from Postgres,
/// or `kept` (the caller is known to be in none).
pub const READERS_LOOKUPS: &str = "taskledger_readers_lookups_total";
/// Task listings by the `plan` that reached their rows.
pub const LISTING_QUERIES: &str = "taskledger_listing_queries_total";
/// Messages a projection handled, by `projection` and `outcome`.
pub const PROJECTION_MESSAGES: &str = "taskledger_projection_messages_total";
/// Events a projection applied on the way to a later one (a healed gap).
pub const PROJECTION_GAPS_HEALED: &str = "taskledger_projection_gaps_healed_total";
/// Events a projection read back from the store, by `projection`: beside
/// the messages it applied, what each costs it in reading.
pub const PROJECTION_EVENTS_READ: &str = "taskledger_projection_events_read_total";
/// Messages per transaction of a projection, by `projection`.
pub const PROJECTION_BATCH_SIZE: &str = "taskledger_projection_batch_messages";
pub const PROJECTION_BATCH_SECONDS: &str = "taskledger_projection_batch_seconds";
/// Messages on each `partition` not yet applied by `projection`.
pub const PROJECTION_LAG_MESSAGES: &str = "taskledger_projection_lag_messages";
/// Age of the newest event a projection applied when it applied it (0 when
/// caught up), by `projection`.
pub const PROJECTION_LAG_SECONDS: &str = "taskledger_projection_lag_seconds";
/// Times a projection started again from its offsets in Postgres.
pub const PROJECTION_RESTARTS: &str = "taskledger_projection_restarts_total";
/// Times a projection applied nothing while its partitions held messages.
pub const PROJECTION_STALLS: &str = "taskledger_projection_stalls_total";
/// Partitions whose leases this process holds, per projection (docs/adr/0012).
pub const PROJECTION_PARTITIONS_OWNED: &str = "taskledger_projection_partitions_owned";
/// Times this process's share of a projection's partitions changed.
pub const PROJECTION_ASSIGNMENT_CHANGES: &str = "taskledger_projection_assignment_changes_total";
/// Batches not committed because a partition they touched had moved on.
pub const PROJECTION_FENCED_BATCHES: &str = "taskledger_projection_fenced_batches_total";
/// Whether the broker answered the role's last question (1) or not (0), by `role`.
pub const BROKER_REACHABLE: &str = "taskledger_broker_reachable";
pub const RELAY_PUBLISHED: &str = "taskledger_relay_published_total";
pub const RELAY_FAILURES: &str = "taskledger_relay_failures_total";
pub const RELAY_GLOBAL_POSITION: &str = "taskledger_relay_global_position";
pub const RELAY_DELAY_SECONDS: &str = "taskledger_relay_delay_seconds";
pub const RELAY_BATCH_SECONDS: &str = "taskledger_relay_batch_seconds";
/// Committed events the relay has not published yet.
pub const RELAY_LAG_EVENTS: &str = "taskledger_relay_lag_events";
/// Age of the oldest committed event not published yet (0 when none waits).
pub const RELAY_OLDEST_UNPUBLISHED_SECONDS: &str = "taskledger_relay_oldest_unpublished_seconds";
/// Messages the relay published that the topic no longer holds.
pub const RELAY_TOPIC_MISSING: &str = "taskledger_relay_topic_missing_messages";
/// Reminders published, by `timing`: `on_time` or `late` (fell due while
/// nothing ran).
pub const REMINDERS_FIRED: &str = "taskledger_reminders_fired_total";
/// Reminders found past the missed window and recorded as missed.
pub const REMINDERS_MISSED: &str = "taskledger_reminders_missed_total";
/// How long after its instant each reminder was published.
pub const REMINDER_LATENESS_SECONDS: &str = "taskledger_reminder_lateness_seconds";
pub const SCHEDULER_RESTARTS: &str = "taskledger_scheduler_restarts_total";
/// Read-model changes published to `task-updates`.
pub const TASK_UPDATES_PUBLISHED: &str = "taskledger_task_updates_published_total";
pub const TASK_UPDATES_RESTARTS: &str = "taskledger_task_updates_restarts_total";
/// MCP tool calls, by `tool` and `outcome` (`ok` or the error's code).
pub const MCP_TOOL_CALLS: &str = "taskledger_mcp_tool_calls_total";
/// Open GraphQL subscriptions in this API process.
pub const SUBSCRIPTIONS: &str = "taskledger_subscriptions";
/// Subscribers that fell behind and were told to resync.
pub const SUBSCRIBER_RESYNCS: &str = "taskledger_subscriber_resyncs_total";
/// Changes a live feed gave up waiting for, moving its resume cursors past
/// them (query-api's `live::watermark`).
pub const LIVE_WATERMARK_SKIPS: &str = "taskledger_live_watermark_skips_total";
/// WebSocket connections closed by the server, by `code`.
pub const WEBSOCKET_CLOSES: &str = "taskledger_websocket_closes_total";
/// Reads that checked their caller's own writes were applied, by `outcome`:
/// `applied` (already), `waited` (then applied), `behind` (the wait ran out).
pub const CONSISTENCY_CHECKS: &str = "taskledger_consistency_checks_total";
/// Users erased (their data keys deleted).
pub const ERASURES: &str = "taskledger_erasures_total";
/// How long those reads waited for the caller's writes.
pub const CONSISTENCY_WAIT_SECONDS: &str = "taskledger_consistency_wait_seconds";

/// Registers the help text of every metric with the installed recorder.
pub fn describe() {
    describe_gauge!(
        PROGRESS_DONE,
        "Units of long work done so far (rebuild, verify), by work."
    );
    describe_gauge!(PROGRESS_TOTAL, "Units of long work in all, by work.");
    describe_gauge!(
        PROGRESS_RATE,
        "Units of long work done per second since it started, by work."
    );
    describe_counter!(ERASURES, "Users erased: their data keys deleted.");
    describe_counter!(
        REMINDERS_FIRED,
        "Reminders published, by timing: on_time, or late (fell due while nothing ran)."
    );
    describe_counter!(
        REMINDERS_MISSED,
        "Reminders found past the missed window and recorded as missed, not fired."
    );
    describe_histogram!(
        REMINDER_LATENESS_SECONDS,
        Unit::Seconds,
        "How long after its instant each reminder was published."
    );
    describe_counter!(
        SCHEDULER_RESTARTS,
        "Times the scheduler started again after a failure."
    );
    describe_counter!(
        TASK_UPDATES_PUBLISHED,
        "Read-model changes published to task-updates."
    );
    describe_counter!(
        TASK_UPDATES_RESTARTS,
        "Times the task-updates publisher started again from its checkpoint."
    );
    describe_gauge!(
        SUBSCRIPTIONS,
        "Open GraphQL subscriptions in this API process."
    );
    describe_counter!(
        SUBSCRIBER_RESYNCS,
        "Subscribers that fell behind their bounded buffer and were told to resync."
    );
    describe_counter!(
        LIVE_WATERMARK_SKIPS,
        "Changes a live feed gave up waiting for: taskChanges resume cursors moved past them."
    );
    describe_counter!(
        WEBSOCKET_CLOSES,
        "WebSocket connections closed by the server, by code."
    );
    describe_counter!(
        CONSISTENCY_CHECKS,
        "Reads that checked the caller's own writes were applied, by outcome (applied, waited, behind)."
    );
    describe_histogram!(
        CONSISTENCY_WAIT_SECONDS,
        Unit::Seconds,
        "How long reads waited for the caller's own writes to be applied."
    );
    describe_counter!(
        MCP_TOOL_CALLS,
        "MCP tool calls, by tool and outcome (ok, or the error's code)."
    );
    describe_counter!(COMMANDS, "Commands that appended events, by outcome.");
    describe_counter!(
        WARM_TASKS,
        "Commands whose task was warm in this process (hit), was loaded (miss), and tasks let go to make room (eviction)."
    );
    describe_counter!(
        COMMAND_CONFLICTS,
        "Appends that lost an optimistic-concurrency race (retried or reported as CONFLICT)."
    );
    describe_counter!(
        GRAPHQL_REQUESTS,
        "GraphQL requests by outcome: ok, error, or refused before execution."
    );
    describe_counter!(
        GRAPHQL_DOCUMENTS,
        "GraphQL documents by outcome: kept (parsed before and kept) or parsed now."
    );
    describe_histogram!(
        GRAPHQL_REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer one GraphQL request."
    );
    describe_counter!(
        READERS_LOOKUPS,
        "Look-ups of a caller's shared lists: read from Postgres, or kept (known to be in none)."
    );
    describe_counter!(
        LISTING_QUERIES,
        "Task listings by the plan that reached their rows (tasks, window, matches)."
    );
    describe_counter!(
        PROJECTION_MESSAGES,
        "Messages each projection handled, by outcome (applied, duplicate, ignored, dead-lettered)."
    );
    describe_counter!(
        PROJECTION_GAPS_HEALED,
        "Events a projection applied from the store on the way to a later one."
    );
    describe_counter!(
        PROJECTION_EVENTS_READ,
        "Events a projection read back from the event store, by projection (a fold from a snapshot reads fewer)."
    );
    describe_histogram!(
        PROJECTION_BATCH_SIZE,
        "Messages a projection applied in one transaction."
    );
    describe_histogram!(
        PROJECTION_BATCH_SECONDS,
        Unit::Seconds,
        "Time to apply one batch and commit it with its offsets."
    );
    describe_gauge!(
        PROJECTION_LAG_MESSAGES,
        "Messages on each partition that the projection has not applied yet."
    );
    describe_gauge!(
        PROJECTION_LAG_SECONDS,
        Unit::Seconds,
        "Time from an event's commit to its projection, for the newest event applied (0 when caught up)."
    );
    describe_counter!(
        PROJECTION_RESTARTS,
        "Times a projection failed and started again from its offsets in Postgres."
    );
    describe_counter!(
        PROJECTION_STALLS,
        "Times a projection applied nothing for the stall timeout while its partitions held messages."
    );
    describe_gauge!(
        PROJECTION_PARTITIONS_OWNED,
        "Partitions of its topic whose leases this process holds, per projection."
    );
    describe_counter!(
        PROJECTION_ASSIGNMENT_CHANGES,
        "Times this process's share of a projection's partitions changed (joins, leaves, crashes)."
    );
    describe_counter!(
        PROJECTION_FENCED_BATCHES,
        "Batches not committed because a partition they touched had moved to another process."
    );
    describe_gauge!(
        BROKER_REACHABLE,
        "1 when the broker answered the role's last question, 0 when it did not."
    );
    describe_counter!(
        RELAY_PUBLISHED,
        "Events the relay published and the broker acknowledged."
    );
    describe_counter!(
        RELAY_FAILURES,
        "Times the relay failed and restarted (broker or database errors)."
    );
    describe_gauge!(
        RELAY_GLOBAL_POSITION,
        "Global position of the last event the relay checkpointed."
    );
    describe_histogram!(
        RELAY_DELAY_SECONDS,
        Unit::Seconds,
        "Time from an event's commit to the broker's acknowledgement of it."
    );
    describe_histogram!(
        RELAY_BATCH_SECONDS,
        Unit::Seconds,
        "Time to publish one batch and receive every acknowledgement."
    );
    describe_gauge!(
        RELAY_LAG_EVENTS,
        "Committed events the relay has not published yet (measured every 2 s, counted up to 100,000)."
    );
    describe_gauge!(
        RELAY_OLDEST_UNPUBLISHED_SECONDS,
        Unit::Seconds,
        "Age of the oldest committed event the relay has not published yet; 0 when none waits."
    );
    describe_gauge!(
        RELAY_TOPIC_MISSING,
        "Messages the relay published that the topic no longer holds (a wiped broker); republish when above 0."
    );
}
