//! `eraseMyData`: the caller's data made unreadable for good, by deleting
//! the key that seals what they typed (`projections::erasure`, docs/adr/0014).

use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};
use async_graphql::{Context, Object, SimpleObject, ID};
use event_store::command::CommandService;
use projections::erasure::{Eraser, CONFIRMATION};

#[derive(Default)]
pub struct ErasureMutation;

/// An erasure asked for: `erasure(id)` says when it completed.
#[derive(SimpleObject)]
pub struct ErasureReceipt {
    pub erasure_id: ID,
}

#[Object]
impl ErasureMutation {
    /// Erases your data for good: the key that seals every title,
    /// description and tag you wrote is deleted, so no copy of them (in the
    /// event store, on a topic, in a backup) can be read again, and every
    /// task, count, reminder, notification and your calendar feed are
    /// dropped. `confirm` must be exactly "ERASE MY DATA". Cannot be undone;
    /// `exportMyData` first if you want a copy.
    async fn erase_my_data(&self, ctx: &Context<'_>, confirm: String) -> ApiResult<ErasureReceipt> {
        let actor = actor(ctx)?;
        if confirm != CONFIRMATION {
            return Err(ApiError::invalid(
                "confirm",
                format!("must be exactly {CONFIRMATION:?}"),
            ));
        }
        let erasure = service::<Eraser>(ctx)?
            .erase(actor.user_id.as_str())
            .await
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        // Before the answer: this process's next command on a task of theirs
        // decides on what the store now holds (other processes forget theirs
        // as they hear of the erasure).
        service::<CommandService>(ctx)?.forget_warm_tasks();
        Ok(ErasureReceipt {
            erasure_id: ID(erasure.erasure_id.to_string()),
        })
    }
}
