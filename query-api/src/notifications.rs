//! The notification inbox over GraphQL: each user's fired reminders and the
//! invitations to lists they were sent, read or unread, and snoozing a
//! reminder so that it fires again later, once. Every statement names the
//! caller: another user's notification ids are answered as if they did not
//! exist.

use std::collections::HashMap;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::envelope::ReminderEventData;
use domain::list::Role;
use domain::values::Priority;
use event_store::command::ListService;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::lists::ListInvitation;
use crate::paging::page_size;
use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};
use api_core::PriorityLevel;

/// The most notifications one `markNotificationsRead` takes.
const MAX_MARK: usize = 100;
/// A snooze is at least a minute and at most a week.
const MAX_SNOOZE_MINUTES: i32 = 7 * 24 * 60;

/// What a notification tells of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum NotificationKind {
    /// A reminder of a task fired.
    Reminder,
    /// Someone invited you to a list.
    Invitation,
}

/// A reminder that fired, or an invitation to a list. A reminder's `id` is
/// the reminder's, the same on every delivery, so a client shows it once
/// however often it arrives; an invitation's is the invitation's, which
/// `acceptInvitation` and `declineInvitation` take.
#[derive(Debug, Clone, SimpleObject)]
pub struct Notification {
    pub id: ID,
    pub kind: NotificationKind,
    /// The task whose reminder fired; null for an invitation.
    pub task_id: Option<ID>,
    /// The task's title; for an invitation, the list's name while you may
    /// see the list (empty once you declined, left or were removed).
    pub title: String,
    pub due_at: Option<DateTime<Utc>>,
    /// The instant the reminder was for; for an invitation, when it was
    /// made.
    pub remind_at: DateTime<Utc>,
    /// When it was sent.
    pub fired_at: DateTime<Utc>,
    /// How long after `remindAt` it was sent: more than a couple of seconds
    /// means it fell due while Taskledger was down and arrives late, once.
    pub late_ms: i64,
    pub priority: PriorityLevel,
    pub tags: Vec<String>,
    pub read: bool,
    /// The invitation, for a notification of kind `INVITATION`
    /// (`invitations` tells whether it still waits for an answer).
    pub invitation: Option<ListInvitation>,
}

impl From<&ReminderEventData> for Notification {
    fn from(data: &ReminderEventData) -> Self {
        Self {
            id: ID(data.reminder_id.clone()),
            kind: NotificationKind::Reminder,
            task_id: Some(ID(data.task_id.clone())),
            title: data.title.clone(),
            due_at: data.due_at,
            remind_at: data.remind_at,
            fired_at: data.fired_at,
            late_ms: data.late_ms,
            priority: Priority::parse(&data.priority).unwrap_or_default().into(),
            tags: data.tags.clone(),
            read: false,
            invitation: None,
        }
    }
}

/// A row of the inbox (projections migrations 2007 and 2015).
#[derive(Debug, FromRow)]
pub(crate) struct NotificationRow {
    id: Uuid,
    seq: i64,
    kind: String,
    task_id: Option<Uuid>,
    title: String,
    due_at: Option<DateTime<Utc>>,
    remind_at: DateTime<Utc>,
    fired_at: DateTime<Utc>,
    late_ms: i64,
    priority: i16,
    tags: Vec<String>,
    read_at: Option<DateTime<Utc>>,
    list_id: Option<Uuid>,
    role: Option<String>,
    from_user: Option<String>,
}

/// The columns of a [`NotificationRow`].
pub(crate) const COLUMNS: &str = "id, seq, kind, task_id, title, due_at, remind_at, fired_at, \
    late_ms, priority, tags, read_at, list_id, role, from_user";

impl From<NotificationRow> for Notification {
    fn from(row: NotificationRow) -> Self {
        let invitation = match (row.kind.as_str(), row.list_id) {
            ("INVITATION", Some(list_id)) => Some(ListInvitation {
                id: ID(row.id.to_string()),
                list_id: ID(list_id.to_string()),
                list_name: String::new(),
                role: row
                    .role
                    .as_deref()
                    .and_then(Role::parse)
                    .unwrap_or(Role::Viewer)
                    .into(),
                from: row.from_user.unwrap_or_default(),
                invited_at: row.fired_at,
            }),
            _ => None,
        };
        Self {
            id: ID(row.id.to_string()),
            kind: if invitation.is_some() {
                NotificationKind::Invitation
            } else {
                NotificationKind::Reminder
            },
            task_id: row.task_id.map(|id| ID(id.to_string())),
            title: row.title,
            due_at: row.due_at,
            remind_at: row.remind_at,
            fired_at: row.fired_at,
            late_ms: row.late_ms,
            priority: Priority::from_rank(row.priority).into(),
            tags: row.tags,
            read: row.read_at.is_some(),
            invitation,
        }
    }
}

/// Names the lists of `notifications`' invitations that `user_id` may see
/// now, in one read; the others stay unnamed.
pub(crate) async fn name_lists(
    lists: &ListService,
    user_id: &str,
    notifications: &mut [Notification],
) -> ApiResult<()> {
    let ids: Vec<Uuid> = notifications
        .iter()
        .filter_map(|n| n.invitation.as_ref())
        .filter_map(|invitation| Uuid::parse_str(&invitation.list_id).ok())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let names: HashMap<Uuid, String> = lists.names_seen_by(user_id, &ids).await?;
    for notification in notifications {
        let Some(invitation) = notification.invitation.as_mut() else {
            continue;
        };
        let name = Uuid::parse_str(&invitation.list_id)
            .ok()
            .and_then(|id| names.get(&id))
            .cloned()
            .unwrap_or_default();
        invitation.list_name.clone_from(&name);
        notification.title = name;
    }
    Ok(())
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// Your notifications, newest first, 20 a page unless `first` says
    /// otherwise (at most 100).
    #[graphql(complexity = "(first.unwrap_or(20).clamp(1, 100) as usize) * child_complexity + 1")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        unread_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Notification>> {
        let actor = actor(ctx)?;
        let first = page_size(first)?;
        let before_seq = match after.as_deref() {
            None => i64::MAX,
            Some(cursor) => cursor
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq > 0)
                .ok_or_else(|| {
                    ApiError::invalid("after", "is not a cursor from this connection")
                })?,
        };
        let rows: Vec<NotificationRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications
              WHERE user_id = $1 AND seq < $2 AND (NOT $3 OR read_at IS NULL)
              ORDER BY seq DESC
              LIMIT $4"
        ))
        .bind(actor.user_id.as_str())
        .bind(before_seq)
        .bind(unread_only.unwrap_or(false))
        .bind(first + 1)
        .fetch_all(pool(ctx)?)
        .await?;
        let has_next = rows.len() as i64 > first;
        let (cursors, mut notifications): (Vec<String>, Vec<Notification>) = rows
            .into_iter()
            .take(first as usize)
            .map(|row| (row.seq.to_string(), Notification::from(row)))
            .unzip();
        name_lists(
            service::<ListService>(ctx)?,
            actor.user_id.as_str(),
            &mut notifications,
        )
        .await?;
        let mut connection = Connection::new(after.is_some(), has_next);
        connection.edges.extend(
            cursors
                .into_iter()
                .zip(notifications)
                .map(|(c, n)| Edge::new(c, n)),
        );
        Ok(connection)
    }

    /// How many of your notifications are unread (counted up to 1,000, the
    /// most an inbox keeps).
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let actor = actor(ctx)?;
        let count = sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
        )
        .bind(actor.user_id.as_str())
        .fetch_one(pool(ctx)?)
        .await?;
        Ok(count)
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks your notifications `ids` read (at most 100 at once); answers how
    /// many were unread. Ids that are not yours are ignored.
    async fn mark_notifications_read(&self, ctx: &Context<'_>, ids: Vec<ID>) -> ApiResult<i64> {
        let actor = actor(ctx)?;
        if ids.len() > MAX_MARK {
            return Err(ApiError::invalid(
                "ids",
                format!("at most {MAX_MARK} at once"),
            ));
        }
        let ids = ids
            .iter()
            .map(|id| parse_id("ids", id))
            .collect::<ApiResult<Vec<_>>>()?;
        let marked = sqlx::query(
            "UPDATE notifications SET read_at = now()
              WHERE user_id = $1 AND id = ANY($2) AND read_at IS NULL",
        )
        .bind(actor.user_id.as_str())
        .bind(&ids)
        .execute(pool(ctx)?)
        .await?
        .rows_affected();
        Ok(marked as i64)
    }

    /// Fires the reminder of your notification `notificationId` again in
    /// `minutes` (1 to 10,080), once, and marks the notification read;
    /// answers when it will fire. Snoozing it again before then moves that
    /// time; after it fired, snooze the new notification instead.
    async fn snooze_reminder(
        &self,
        ctx: &Context<'_>,
        notification_id: ID,
        minutes: i32,
    ) -> ApiResult<DateTime<Utc>> {
        let actor = actor(ctx)?;
        let id = parse_id("notificationId", &notification_id)?;
        if !(1..=MAX_SNOOZE_MINUTES).contains(&minutes) {
            return Err(ApiError::invalid(
                "minutes",
                format!("must be between 1 and {MAX_SNOOZE_MINUTES}"),
            ));
        }
        let remind_at = Utc::now() + chrono::Duration::minutes(i64::from(minutes));
        let mut tx = pool(ctx)?.begin().await?;
        let kind: Option<String> = sqlx::query_scalar(
            "UPDATE notifications SET read_at = coalesce(read_at, now())
              WHERE id = $1 AND user_id = $2
             RETURNING kind",
        )
        .bind(id)
        .bind(actor.user_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        match kind.as_deref() {
            None => return Err(ApiError::NotFound),
            Some("REMINDER") => {}
            Some(_) => {
                return Err(ApiError::invalid(
                    "notificationId",
                    "is an invitation: accept or decline it",
                ))
            }
        }
        let snoozed: Option<DateTime<Utc>> = sqlx::query_scalar(
            "INSERT INTO reminders (reminder_id, task_id, user_id, title, due_at, remind_at,
                                    priority, tags, snoozed_from)
             SELECT $1, n.task_id, n.user_id, n.title, n.due_at, $2, n.priority, n.tags, n.id
               FROM notifications n
               JOIN task_list t ON t.id = n.task_id
              WHERE n.id = $3 AND t.status = 'open' AND t.deleted_at IS NULL
             ON CONFLICT (reminder_id) DO UPDATE SET remind_at = EXCLUDED.remind_at
              WHERE reminders.status = 'pending'
             RETURNING remind_at",
        )
        .bind(domain::snoozed_reminder_id(id))
        .bind(remind_at)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(snoozed) = snoozed else {
            return Err(ApiError::invalid(
                "notificationId",
                "its task is done or deleted, or this notification was snoozed and fired \
                 again (snooze the new one)",
            ));
        };
        tx.commit().await?;
        Ok(snoozed)
    }
}

fn parse_id(field: &'static str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::invalid(field, "is not a notification id"))
}

fn pool<'a>(ctx: &Context<'a>) -> ApiResult<&'a PgPool> {
    service::<PgPool>(ctx)
}
