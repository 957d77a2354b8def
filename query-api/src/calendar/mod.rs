//! Each user's calendar feed: a secret URL that calendar apps subscribe to
//! (`GET /calendar/<secret>.ics`), the GraphQL fields that hand it out and
//! replace it, and the lookup that turns a secret back into its owner. A
//! secret that is unknown, rotated away or malformed gets one plain 404.

mod ics;

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};
use chrono::Utc;
use hmac::{Hmac, Mac};
use projections::TaskRow;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

pub use ics::Components;

use api_core::auth::JwtSecret;
use api_core::error::ApiResult;
use api_core::request::{actor, service};

/// The most tasks one feed lists: the soonest due first.
pub const MAX_FEED_TASKS: i64 = 2_000;
/// Bytes of the MAC in a feed's secret: 128 bits.
const MAC_BYTES: usize = 16;

/// Signs and checks feed secrets, and knows where the server is reached.
#[derive(Clone)]
pub struct CalendarFeeds {
    key: Arc<[u8; 32]>,
    /// The server's public address, such as `https://tasks.example.com`.
    public_url: Arc<str>,
}

impl std::fmt::Debug for CalendarFeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalendarFeeds")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl CalendarFeeds {
    /// Feeds whose secrets are keyed from `server_secret` (the JWT secret: a
    /// key derived for this use alone, so neither can stand in for the other).
    pub fn new(server_secret: &JwtSecret, public_url: &str) -> Self {
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"taskledger calendar feed key v1\0")
            .chain_update(server_secret.expose())
            .finalize()
            .into();
        Self {
            key: Arc::new(key),
            public_url: public_url.trim_end_matches('/').into(),
        }
    }

    fn mac(&self, feed_id: Uuid) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_slice()).expect("any key length");
        mac.update(feed_id.as_bytes());
        mac
    }

    /// The URL's secret: the feed id, then its MAC, in hex.
    fn secret(&self, feed_id: Uuid) -> String {
        let tag = self.mac(feed_id).finalize().into_bytes();
        format!("{}{}", feed_id.simple(), hex(&tag[..MAC_BYTES]))
    }

    /// The feed id a well-formed, correctly signed secret names.
    pub fn verify(&self, secret: &str) -> Option<Uuid> {
        if secret.len() != 32 + 2 * MAC_BYTES || !secret.is_ascii() {
            return None;
        }
        let (id, tag) = secret.split_at(32);
        let feed_id = Uuid::try_parse(id).ok()?;
        let tag = unhex(tag)?;
        // verify_truncated_left compares in constant time.
        self.mac(feed_id).verify_truncated_left(&tag).ok()?;
        Some(feed_id)
    }

    fn url(&self, feed_id: Uuid) -> String {
        format!("{}/calendar/{}.ics", self.public_url, self.secret(feed_id))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A calendar app subscribes to `url`; `eventsUrl` is the same feed as events,
/// for apps that show no to-dos.
#[derive(Debug, SimpleObject)]
pub struct CalendarFeed {
    /// Your open tasks with due dates as to-dos (VTODO). Anyone with this URL
    /// can read them: share it like a password, and rotate it if it leaks.
    pub url: String,
    /// The same tasks as events (VEVENT).
    pub events_url: String,
}

impl CalendarFeed {
    fn new(feeds: &CalendarFeeds, feed_id: Uuid) -> Self {
        let url = feeds.url(feed_id);
        Self {
            events_url: format!("{url}?components=events"),
            url,
        }
    }
}

#[derive(Default)]
pub struct CalendarQuery;

#[Object]
impl CalendarQuery {
    /// Your calendar feed's secret URL (made on first ask).
    async fn calendar_feed(&self, ctx: &Context<'_>) -> ApiResult<CalendarFeed> {
        let user = &actor(ctx)?.user_id;
        let pool = service::<PgPool>(ctx)?;
        let feed_id = feed_of(pool, user.as_str()).await?;
        Ok(CalendarFeed::new(service(ctx)?, feed_id))
    }
}

#[derive(Default)]
pub struct CalendarMutation;

#[Object]
impl CalendarMutation {
    /// Replaces your calendar feed's URL; the old one stops working at once.
    async fn rotate_calendar_feed(&self, ctx: &Context<'_>) -> ApiResult<CalendarFeed> {
        let user = &actor(ctx)?.user_id;
        let pool = service::<PgPool>(ctx)?;
        let feed_id = rotate(pool, user.as_str()).await?;
        Ok(CalendarFeed::new(service(ctx)?, feed_id))
    }
}

/// The user's feed id, made if there is none yet.
#[tracing::instrument(skip(pool))]
async fn feed_of(pool: &PgPool, user_id: &str) -> Result<Uuid, sqlx::Error> {
    sqlx::query(
        "INSERT INTO calendar_feeds (user_id, feed_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(Uuid::new_v4())
    .execute(pool)
    .await?;
    sqlx::query_scalar("SELECT feed_id FROM calendar_feeds WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
}

#[tracing::instrument(skip(pool))]
async fn rotate(pool: &PgPool, user_id: &str) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO calendar_feeds (user_id, feed_id) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET feed_id = EXCLUDED.feed_id, rotated_at = now() \
         RETURNING feed_id",
    )
    .bind(user_id)
    .bind(Uuid::new_v4())
    .fetch_one(pool)
    .await
}

#[tracing::instrument(skip(pool))]
pub async fn owner_of(pool: &PgPool, feed_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM calendar_feeds WHERE feed_id = $1")
        .bind(feed_id)
        .fetch_optional(pool)
        .await
}

/// The open tasks with a due date of the feed's owner, in their Inbox and
/// in every shared list they belong to now, soonest first.
#[tracing::instrument(skip(pool))]
pub async fn due_tasks(pool: &PgPool, user_id: &str) -> Result<Vec<TaskRow>, sqlx::Error> {
    let readers = projections::task_query::Readers::of(pool, user_id).await?;
    sqlx::query_as(&format!(
        "SELECT {} FROM task_list \
         WHERE user_id = ANY($1) AND status = 'open' AND deleted_at IS NULL \
           AND (due_at IS NOT NULL OR due_date IS NOT NULL) \
         ORDER BY sort_due, id LIMIT $2",
        projections::task_list::COLUMNS
    ))
    .bind(readers.keys())
    .bind(MAX_FEED_TASKS)
    .fetch_all(pool)
    .await
}

/// The entity tag of a feed of `tasks`: DTSTAMP changes on every read, so the
/// tag covers what the tasks are, and a client that has them is answered
/// before anything is written.
pub fn etag(tasks: &[TaskRow], components: Components) -> String {
    let mut digest = Sha256::new();
    for task in tasks {
        digest.update(task.id.as_bytes());
        digest.update(task.version.to_be_bytes());
    }
    digest.update([components as u8]);
    format!("\"{}\"", hex(&digest.finalize()[..16]))
}

/// The feed of `tasks` as iCalendar text: up to [`MAX_FEED_TASKS`] tasks and
/// their zones' rules, so the caller runs it off the async workers.
pub fn render(tasks: &[TaskRow], components: Components) -> String {
    ics::calendar("Taskledger", tasks, components, Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_verifies_under_its_key_only() {
        let key = |s: &str| JwtSecret::new(s.to_owned()).unwrap();
        let feeds = CalendarFeeds::new(&key("a server secret of at least 32 bytes"), "http://x/");
        let id = Uuid::new_v4();
        let secret = feeds.secret(id);
        assert_eq!(feeds.verify(&secret), Some(id));
        let other = CalendarFeeds::new(&key("another server secret, 32 bytes+"), "http://x/");
        assert_eq!(other.verify(&secret), None);
        let mut forged = secret.clone().into_bytes();
        forged[40] = if forged[40] == b'0' { b'1' } else { b'0' };
        assert_eq!(feeds.verify(std::str::from_utf8(&forged).unwrap()), None);
        assert_eq!(feeds.verify(&secret[..40]), None);
        assert_eq!(feeds.verify("ü".repeat(32).as_str()), None);
        assert!(feeds.url(id).starts_with("http://x/calendar/"));
    }
}
