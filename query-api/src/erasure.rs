//! `erasure(id)`: where one of the caller's erasures stands.

use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use projections::erasure::Eraser;

#[derive(Default)]
pub struct ErasureQuery;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ErasureState {
    /// The key is deleted and the read models dropped; the second sweep
    /// (a few seconds later) has not run yet.
    Pending,
    Completed,
}

#[derive(SimpleObject)]
pub struct Erasure {
    pub id: ID,
    pub status: ErasureState,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[Object]
impl ErasureQuery {
    /// One of your erasures (`eraseMyData` answered its id); another's or
    /// an unknown id is `NOT_FOUND`.
    async fn erasure(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Erasure> {
        let actor = actor(ctx)?;
        let erasure_id = uuid::Uuid::parse_str(id.as_str())
            .map_err(|_| ApiError::invalid("id", "is not an erasure id"))?;
        let status = service::<Eraser>(ctx)?
            .status(actor.user_id.as_str(), erasure_id)
            .await
            .map_err(ApiError::internal)?
            .ok_or(ApiError::NotFound)?;
        Ok(Erasure {
            id,
            status: if status.completed_at.is_some() {
                ErasureState::Completed
            } else {
                ErasureState::Pending
            },
            requested_at: status.requested_at,
            completed_at: status.completed_at,
        })
    }
}
