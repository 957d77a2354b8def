//! `quickAdd`: a task typed the way people say it ("pay rent every month on
//! the 1st 9am #home !high"), read by the domain's parser in the caller's
//! zone, created like any other, and answered with what was understood.

use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject, ID};
use chrono::Utc;
use domain::quick_add;
use domain::values::TimeZone;
use domain::{NewTask, Version};
use uuid::Uuid;

use crate::mutation::{create, shared_list};
use api_core::error::ApiResult;
use query_api::{task_at, Task};

/// What kind of thing a part of the text was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "domain::quick_add::UnderstoodKind")]
pub enum QuickAddPart {
    Due,
    Time,
    Recurrence,
    Reminder,
    Tag,
    Priority,
}

/// One part of the text and what it was read as.
#[derive(Debug, SimpleObject)]
pub struct Understood {
    pub kind: QuickAddPart,
    /// The words it came from, as typed.
    pub text: String,
    /// What they mean, for a client to show ("monthly on the 1st").
    pub meaning: String,
}

#[derive(Debug, SimpleObject)]
#[graphql(complex)]
pub struct QuickAddResult {
    pub task_id: ID,
    pub version: Version,
    /// The title: every word not understood as something else.
    pub title: String,
    pub understood: Vec<Understood>,
}

#[ComplexObject]
impl QuickAddResult {
    /// The task as the read model holds it, once it has caught up (waits a
    /// bounded time; `null` if it has not).
    async fn task(&self, ctx: &Context<'_>) -> ApiResult<Option<Task>> {
        let id = Uuid::parse_str(self.task_id.as_str()).map_err(api_core::ApiError::internal)?;
        task_at(ctx, id, self.version).await
    }
}

#[derive(Default)]
pub struct QuickAddMutation;

#[Object]
impl QuickAddMutation {
    /// Creates a task from one line of text: dates ("tomorrow", "fri",
    /// "dec 24"), times ("9am"), repeats ("every weekday"), reminders
    /// ("remind me 30 min before"), `#tags` and `!high`. Words it does not
    /// understand stay in the title. `timeZone` is the user's IANA zone
    /// (default UTC).
    async fn quick_add(
        &self,
        ctx: &Context<'_>,
        text: String,
        time_zone: Option<String>,
        idempotency_key: Option<String>,
        #[graphql(
            desc = "The list it starts in: your Inbox (the default) or a shared list you own or edit."
        )]
        list_id: Option<ID>,
    ) -> ApiResult<QuickAddResult> {
        let list = shared_list(ctx, list_id.as_ref())?;
        let zone = time_zone
            .as_deref()
            .map(TimeZone::parse)
            .transpose()?
            .unwrap_or(TimeZone::UTC);
        let parsed = quick_add::quick_add(&text, Utc::now(), zone)?;
        let title = parsed.title.as_str().to_owned();
        let understood = parsed
            .understood
            .into_iter()
            .map(|part| Understood {
                kind: part.kind.into(),
                text: part.source,
                meaning: part.meaning,
            })
            .collect();
        let created = create(
            ctx,
            parsed.title,
            NewTask {
                list,
                ..parsed.details
            },
            idempotency_key.as_deref(),
        )
        .await?;
        Ok(QuickAddResult {
            task_id: created.task_id,
            version: created.version,
            title,
            understood,
        })
    }
}
