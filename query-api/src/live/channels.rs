//! What Postgres announces as it commits, heard by every API process:
//! erasures (their users' WebSockets close) and list changes (to the list's
//! members and the user a change is about; an invitation also to the
//! invitee's notifications).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::LiveHub;
use crate::notifications::{Notification, NotificationRow, COLUMNS as NOTIFICATION_COLUMNS};

/// The Postgres channel each list change is announced on as it commits
/// (event-store migration 1013).
pub const LISTS_CHANNEL: &str = "taskledger_lists";

/// The event that invites a user to a list.
const INVITED: &str = "ListMemberInvited";

/// A change to a list, as announced on [`LISTS_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListChanged {
    pub list_id: uuid::Uuid,
    /// The event's type (`ListRenamed`, `ListMemberRemoved`, …).
    pub event: String,
    pub version: i64,
    /// The user the change is about, if any (invited, joined, left,
    /// removed, declined, given a role).
    pub user: Option<String>,
}

impl LiveHub {
    /// Hears of every erasure (`projections::erasure` notifies
    /// `ERASURES_CHANNEL` as it commits) until `shutdown`, and tells this
    /// process's WebSockets through [`LiveHub::erased`].
    pub async fn hear_erasures(
        self,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        // When the listener's connection was found lost, until the erasures
        // committed since are told.
        let deaf_since = std::sync::Mutex::new(None);
        infra::listen::again_and_again(
            projections::erasure::ERASURES_CHANNEL,
            shutdown,
            || self.listen_for_erasures(&pool, &deaf_since),
            || {},
        )
        .await
    }

    async fn listen_for_erasures(
        &self,
        pool: &PgPool,
        deaf_since: &std::sync::Mutex<Option<DateTime<Utc>>>,
    ) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener
            .listen(projections::erasure::ERASURES_CHANNEL)
            .await?;
        // What was announced while the connection was down went unheard:
        // the erasures applied since. One is announced as it is applied and
        // completed seconds later (its second sweep); both times are when a
        // transaction began, so a minute's margin; a user erased within it
        // who came back meanwhile connects again.
        let since = *deaf_since.lock().expect("never poisoned");
        if let Some(since) = since {
            let missed: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT user_id FROM erasures
                  WHERE completed_at >= $1 OR (completed_at IS NULL AND requested_at >= $1)",
            )
            .bind(since - chrono::Duration::seconds(60))
            .fetch_all(pool)
            .await?;
            for user in missed {
                let _ = self.erased.send(user);
            }
            *deaf_since.lock().expect("never poisoned") = None;
        }
        loop {
            let notification = heard(&mut listener).await.inspect_err(|_| {
                *deaf_since.lock().expect("never poisoned") = Some(Utc::now());
            })?;
            // No socket listening is no error.
            let _ = self.erased.send(notification.payload().to_owned());
        }
    }

    /// Hears of every list change until `shutdown` and hands it to the
    /// list's members (read once per change, as they are after it) and to
    /// the user it is about: a removed member hears of their removal, then
    /// nothing more of the list.
    pub async fn hear_lists(self, pool: PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Whether invitations may have passed unheard since notification
        // feeds last ended.
        let lost = AtomicBool::new(false);
        infra::listen::again_and_again(
            LISTS_CHANNEL,
            shutdown,
            || self.listen_for_lists(&pool, &lost),
            // Changes may have passed meanwhile: subscribers ask again, and
            // no one is known to be in no list.
            || {
                self.listless.deaf();
                self.lists.resync_all();
                // Invitations made meanwhile are in the invitees' inboxes.
                self.notifications.resync_all();
                lost.store(true, Ordering::Relaxed);
            },
        )
        .await
    }

    async fn listen_for_lists(&self, pool: &PgPool, lost: &AtomicBool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(LISTS_CHANNEL).await?;
        // Whoever subscribed to notifications while no one listened may have
        // missed an invitation too.
        if lost.swap(false, Ordering::Relaxed) {
            self.notifications.resync_all();
        }
        // Whoever subscribed before this listened may have missed a change:
        // they ask again.
        self.listless.hearing();
        self.lists.resync_all();
        loop {
            let notification = heard(&mut listener).await?;
            self.listless.list_changed();
            let Ok(change) = serde_json::from_str::<ListChanged>(notification.payload()) else {
                tracing::warn!(
                    payload = notification.payload(),
                    "an unreadable list change"
                );
                continue;
            };
            let mut users: Vec<String> =
                sqlx::query_scalar("SELECT user_id FROM list_members WHERE list_id = $1")
                    .bind(change.list_id)
                    .fetch_all(pool)
                    .await?;
            if let Some(user) = &change.user {
                if !users.contains(user) {
                    users.push(user.clone());
                }
            }
            if let (INVITED, Some(invitee)) = (change.event.as_str(), &change.user) {
                self.hand_out_invitation(pool, change.list_id, invitee)
                    .await?;
            }
            let change = Arc::new(change);
            for user in &users {
                self.lists.publish(user, &change);
            }
        }
    }
}

/// The next notification, or an error when the connection was lost: `recv`
/// would connect again by itself and pass over what was announced
/// meanwhile, where the listen-again loop tells whoever relies on hearing
/// everything (`again_and_again`'s `lost`).
async fn heard(listener: &mut PgListener) -> Result<sqlx::postgres::PgNotification, sqlx::Error> {
    listener.try_recv().await?.ok_or_else(|| {
        sqlx::Error::Protocol(
            "the connection was lost; what was announced meanwhile went unheard".into(),
        )
    })
}

impl LiveHub {
    /// Hands `invitee` the notification of their invitation to `list`,
    /// written with it (projections migration 2015); the subscription names
    /// the list.
    async fn hand_out_invitation(
        &self,
        pool: &PgPool,
        list: uuid::Uuid,
        invitee: &str,
    ) -> Result<(), sqlx::Error> {
        let row: Option<NotificationRow> = sqlx::query_as(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications
              WHERE user_id = $1 AND list_id = $2 AND kind = 'INVITATION'
              ORDER BY seq DESC LIMIT 1"
        ))
        .bind(invitee)
        .bind(list)
        .fetch_optional(pool)
        .await?;
        if let Some(row) = row {
            self.notifications
                .publish(invitee, &Arc::new(Notification::from(row)));
        }
        Ok(())
    }
}
