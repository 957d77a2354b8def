//! Commands on lists (docs/adr/0015): load the list, let it decide, append
//! with the loaded sequence as the expected version. A list's members are its
//! state, so every decision, a membership change included, is made on the
//! list as it stands when the command commits: a lost race is decided again
//! on fresh state. The membership tables follow the events in the same
//! transaction (event-store migration 1012).

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventStore};
use domain::list::{List, ListCommand, ListError, Role};
use domain::{TaskServices, Version};
use sqlx::PgPool;
use uuid::Uuid;

use super::Actor;
use crate::keys::KeyCache;
use crate::repository::{EventRepository, SNAPSHOT_EVERY};

/// Lists one user may belong to at most (owned or joined).
pub const MAX_LISTS_PER_USER: i64 = 100;

/// What a successful list command leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOutcome {
    pub list_id: Uuid,
    pub version: Version,
}

#[derive(Debug, thiserror::Error)]
pub enum ListCommandError {
    #[error(transparent)]
    Rejected(#[from] ListError),
    #[error("you belong to {MAX_LISTS_PER_USER} lists already")]
    TooManyLists,
    #[error("the list changed concurrently too often; try again")]
    Conflict,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A list and the caller's place in it, as `lists` shows it.
#[derive(Debug, Clone)]
pub struct ListView {
    pub list_id: Uuid,
    /// Empty when whoever named it was erased.
    pub name: String,
    pub archived: bool,
    pub version: Version,
    /// Each member and their role, the owner first, then by user id.
    pub members: Vec<(String, Role)>,
}

impl ListView {
    pub fn role_of(&self, user_id: &str) -> Option<Role> {
        self.members
            .iter()
            .find(|(member, _)| member == user_id)
            .map(|(_, role)| *role)
    }
}

/// An invitation waiting for its invitee, as `invitations` shows it.
#[derive(Debug, Clone)]
pub struct PendingInvitation {
    pub invitation_id: Uuid,
    pub list_id: Uuid,
    pub list_name: String,
    pub role: Role,
    pub invited_by: String,
    pub invited_at: chrono::DateTime<chrono::Utc>,
}

/// Cheap to clone: the clones share one store.
#[derive(Clone)]
pub struct ListService {
    /// Commits (and takes a snapshot every `SNAPSHOT_EVERY` events).
    store: Arc<PersistedEventStore<EventRepository, List>>,
    /// Loads, in one statement.
    repository: EventRepository,
    pool: PgPool,
    services: TaskServices,
    max_attempts: u32,
}

impl ListService {
    pub fn new(pool: PgPool, services: TaskServices) -> Self {
        let repository = EventRepository::new(pool.clone());
        Self {
            // A list's folded state every `SNAPSHOT_EVERY` events, sealed
            // like its events: a list renamed and shared for years loads one
            // snapshot and the events after it.
            store: Arc::new(PersistedEventStore::new_snapshot_store(
                repository.clone(),
                SNAPSHOT_EVERY,
            )),
            repository,
            pool,
            services,
            max_attempts: 5,
        }
    }

    /// Runs `command` on list `list_id` for `actor`.
    #[tracing::instrument(skip(self, command, actor), fields(list_id = %list_id, user_id = %actor.user_id))]
    pub async fn execute(
        &self,
        actor: &Actor,
        list_id: Uuid,
        command: ListCommand,
    ) -> Result<ListOutcome, ListCommandError> {
        debug_assert_eq!(command.actor(), &actor.user_id);
        let joins = matches!(
            command,
            ListCommand::Create { .. } | ListCommand::Accept { .. }
        );
        if joins && self.lists_of(actor.user_id.as_str()).await? >= MAX_LISTS_PER_USER {
            return Err(ListCommandError::TooManyLists);
        }
        let aggregate_id = list_id.to_string();
        for attempt in 1..=self.max_attempts {
            // The snapshot and the events after it, in one statement.
            let (list, current_sequence) = self
                .repository
                .load::<List>(&aggregate_id)
                .await
                .map_err(|e| internal(e.into()))?;
            let sink = EventSink::default();
            // The sink applies each event to the list it decides on; the
            // commit takes the list as loaded.
            list.clone()
                .handle(command.clone(), &self.services, &sink)
                .await?;
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(ListOutcome {
                    list_id,
                    version: version_of(current_sequence),
                });
            }
            let appended = events.len();
            let context = EventStoreAggregateContext {
                aggregate_id: aggregate_id.clone(),
                aggregate: list,
                current_sequence,
                current_snapshot: None,
            };
            let sequence = context.current_sequence + appended;
            match self.store.commit(events, context, metadata(actor)).await {
                Ok(_) => {
                    return Ok(ListOutcome {
                        list_id,
                        version: version_of(sequence),
                    })
                }
                Err(AggregateError::AggregateConflict) => {
                    tracing::debug!(attempt, "lost a race for the list; deciding again");
                }
                Err(other) => return Err(internal(other)),
            }
        }
        Err(ListCommandError::Conflict)
    }

    /// Takes `user_id` out of every list they joined, and declines every
    /// invitation they had, up to `before` (their erasure): a list they own
    /// passes to its longest-standing editor (else member) first; one they
    /// are alone in is archived. Answers how many lists and invitations it
    /// let go; a list it cannot change is logged and passed over.
    pub async fn leave_all(
        &self,
        user_id: &domain::values::UserId,
        before: chrono::DateTime<chrono::Utc>,
        correlation_id: &str,
    ) -> Result<usize, ListCommandError> {
        let actor = Actor {
            user_id: user_id.clone(),
            correlation_id: correlation_id.to_owned(),
        };
        let invitations: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT invitation_id, list_id FROM list_invitations
              WHERE user_id = $1 AND invited_at <= $2",
        )
        .bind(user_id.as_str())
        .bind(before)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| ListCommandError::Internal(e.into()))?;
        let memberships: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT list_id, role FROM list_members WHERE user_id = $1 AND since <= $2",
        )
        .bind(user_id.as_str())
        .bind(before)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| ListCommandError::Internal(e.into()))?;
        let mut let_go = 0;
        for (invitation_id, list_id) in invitations {
            let declined = self
                .execute(
                    &actor,
                    list_id,
                    ListCommand::Decline {
                        actor: user_id.clone(),
                        invitation_id,
                    },
                )
                .await;
            let_go += counted(declined, list_id);
        }
        for (list_id, role) in memberships {
            let mut steps = Vec::new();
            if role == Role::Owner.as_str() {
                let successor: Option<String> = sqlx::query_scalar(
                    "SELECT user_id FROM list_members WHERE list_id = $1 AND user_id <> $2
                      ORDER BY role = 'EDITOR' DESC, since, user_id LIMIT 1",
                )
                .bind(list_id)
                .bind(user_id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| ListCommandError::Internal(e.into()))?;
                match successor.and_then(|s| domain::values::UserId::parse(&s).ok()) {
                    Some(successor) => steps.push(ListCommand::TransferOwnership {
                        actor: user_id.clone(),
                        user_id: successor,
                    }),
                    None => steps.push(ListCommand::Archive {
                        actor: user_id.clone(),
                    }),
                }
            }
            if !steps
                .iter()
                .any(|step| matches!(step, ListCommand::Archive { .. }))
            {
                steps.push(ListCommand::Leave {
                    actor: user_id.clone(),
                });
            }
            let mut done = true;
            for step in steps {
                let outcome = self.execute(&actor, list_id, step).await;
                done &= counted(outcome, list_id) == 1;
            }
            let_go += usize::from(done);
        }
        Ok(let_go)
    }

    /// The list an invitation is for, if it is still waiting for `user_id`.
    pub async fn list_of_invitation(
        &self,
        invitation_id: Uuid,
        user_id: &str,
    ) -> Result<Option<Uuid>, ListCommandError> {
        sqlx::query_scalar(
            "SELECT list_id FROM list_invitations WHERE invitation_id = $1 AND user_id = $2",
        )
        .bind(invitation_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| ListCommandError::Internal(e.into()))
    }

    /// How many lists `user_id` belongs to.
    async fn lists_of(&self, user_id: &str) -> Result<i64, ListCommandError> {
        sqlx::query_scalar("SELECT count(*) FROM list_members WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| ListCommandError::Internal(e.into()))
    }

    /// The lists `user_id` belongs to, folded from their events, oldest
    /// membership first.
    pub async fn lists(&self, user_id: &str) -> Result<Vec<ListView>, ListCommandError> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT list_id FROM list_members WHERE user_id = $1 ORDER BY since, list_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(internal_sql)?;
        let mut views = self.views(&ids).await?;
        Ok(ids.iter().filter_map(|id| views.remove(id)).collect())
    }

    /// The invitations waiting for `user_id`, newest first.
    pub async fn invitations(
        &self,
        user_id: &str,
    ) -> Result<Vec<PendingInvitation>, ListCommandError> {
        let rows: Vec<(Uuid, Uuid, String, String, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as(
                "SELECT invitation_id, list_id, role, invited_by, invited_at FROM list_invitations
                  WHERE user_id = $1 ORDER BY invited_at DESC, invitation_id
                  LIMIT $2",
            )
            .bind(user_id)
            .bind(MAX_LISTS_PER_USER)
            .fetch_all(&self.pool)
            .await
            .map_err(internal_sql)?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.1).collect();
        let views = self.named(&ids).await?;
        Ok(rows
            .into_iter()
            .map(
                |(invitation_id, list_id, role, invited_by, invited_at)| PendingInvitation {
                    invitation_id,
                    list_id,
                    list_name: views
                        .get(&list_id)
                        .map(|view| view.name.clone())
                        .unwrap_or_default(),
                    role: Role::parse(&role).unwrap_or(Role::Viewer),
                    invited_by,
                    invited_at,
                },
            )
            .collect())
    }

    /// The names of those of lists `ids` that `user_id` may see now: the
    /// lists they belong to or have an invitation waiting from. Any other
    /// (an invitation they declined, a list they left) is not named.
    pub async fn names_seen_by(
        &self,
        user_id: &str,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, String>, ListCommandError> {
        let seen: Vec<Uuid> = sqlx::query_scalar(
            "SELECT list_id FROM list_members WHERE user_id = $1 AND list_id = ANY($2)
             UNION
             SELECT list_id FROM list_invitations WHERE user_id = $1 AND list_id = ANY($2)",
        )
        .bind(user_id)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(internal_sql)?;
        Ok(self
            .named(&seen)
            .await?
            .into_iter()
            .map(|(id, view)| (id, view.name))
            .collect())
    }

    /// Lists `ids` as the membership tables keep them (a row per list and
    /// per member, never the lists' histories), their names opened.
    async fn views(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, ListView>, ListCommandError> {
        let mut views = self.named(ids).await?;
        let members: Vec<(Uuid, String, String)> = sqlx::query_as(
            "SELECT list_id, user_id, role FROM list_members WHERE list_id = ANY($1)
              ORDER BY list_id, role <> 'OWNER', user_id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(internal_sql)?;
        for (list_id, user_id, role) in members {
            if let (Some(view), Some(role)) = (views.get_mut(&list_id), Role::parse(&role)) {
                view.members.push((user_id, role));
            }
        }
        Ok(views)
    }

    /// Lists `ids` from their row alone, their names opened; no members.
    async fn named(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, ListView>, ListCommandError> {
        let rows: Vec<ListRow> = sqlx::query_as(
            "SELECT l.list_id, l.archived, l.version, l.name_fields,
                    k.key_id AS name_key_id, k.wrapped AS name_key
               FROM lists l LEFT JOIN user_keys k ON k.user_id = l.named_by
              WHERE l.list_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(internal_sql)?;
        let mut keys = KeyCache::default();
        let mut views = HashMap::with_capacity(rows.len());
        for row in rows {
            let ListRow {
                list_id,
                archived,
                version,
                name_fields,
                name_key_id,
                name_key,
            } = row;
            let name = match name_fields {
                Some(mut fields) => {
                    let key = name_key_id.as_deref().zip(name_key.as_deref());
                    keys.open_fields(&mut fields, &list_id.to_string(), key)
                        .map_err(|e| ListCommandError::Internal(Box::new(e)))?;
                    fields["name"].as_str().unwrap_or_default().to_owned()
                }
                None => String::new(),
            };
            views.insert(
                list_id,
                ListView {
                    list_id,
                    name,
                    archived,
                    version,
                    members: Vec::new(),
                },
            );
        }
        Ok(views)
    }
}

/// A list as `lists` keeps it, with the key that sealed its name.
#[derive(sqlx::FromRow)]
struct ListRow {
    list_id: Uuid,
    archived: bool,
    version: i64,
    name_fields: Option<serde_json::Value>,
    name_key_id: Option<String>,
    name_key: Option<Vec<u8>>,
}

/// 1 for a command applied; a refusal is logged and counts 0.
fn counted(outcome: Result<ListOutcome, ListCommandError>, list_id: Uuid) -> usize {
    match outcome {
        Ok(_) => 1,
        Err(error) => {
            tracing::warn!(%list_id, %error, "could not take an erased user out of a list");
            0
        }
    }
}

fn internal_sql(error: sqlx::Error) -> ListCommandError {
    ListCommandError::Internal(error.into())
}

fn version_of(count: usize) -> Version {
    Version::try_from(count).unwrap_or(Version::MAX)
}

fn metadata(actor: &Actor) -> HashMap<String, String> {
    HashMap::from([
        ("user_id".to_owned(), actor.user_id.to_string()),
        ("correlation_id".to_owned(), actor.correlation_id.clone()),
    ])
}

fn internal(error: AggregateError<ListError>) -> ListCommandError {
    match error {
        AggregateError::UserError(rejection) => ListCommandError::Rejected(rejection),
        AggregateError::AggregateConflict => ListCommandError::Conflict,
        AggregateError::DatabaseConnectionError(cause)
        | AggregateError::DeserializationError(cause)
        | AggregateError::UnexpectedError(cause) => ListCommandError::Internal(cause),
    }
}

impl From<AggregateError<ListError>> for ListCommandError {
    fn from(error: AggregateError<ListError>) -> Self {
        internal(error)
    }
}
