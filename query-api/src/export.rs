//! `exportMyData`: the caller's data as one JSON document
//! (`projections::export`, docs/schemas/export.v1.schema.json), for accounts
//! of up to [`INLINE_TASKS`] tasks; any account downloads it whole, streamed,
//! from `GET /export`.

use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};
use async_graphql::{Context, Json, Object};
use projections::export;
use sqlx::PgPool;

pub use export::{export_user, Exported, EXPORT_FORMAT};

/// The most tasks `exportMyData` answers in one GraphQL response.
pub const INLINE_TASKS: i64 = 1_000;

#[derive(Default)]
pub struct ExportQuery;

#[Object]
impl ExportQuery {
    /// Everything Taskledger holds about you, as one JSON document in the
    /// shape of `docs/schemas/export.v1.schema.json`: every task you created
    /// with its full history, your reminders, notifications and calendar
    /// feed. Up to 1,000 tasks; `GET /export` streams any number.
    #[graphql(complexity = 100)]
    async fn export_my_data(&self, ctx: &Context<'_>) -> ApiResult<Json<serde_json::Value>> {
        let actor = actor(ctx)?;
        let pool = service::<PgPool>(ctx)?;
        let user = actor.user_id.as_str();
        let tasks = export::task_count(pool, user)
            .await
            .map_err(ApiError::internal)?;
        if tasks > INLINE_TASKS {
            return Err(ApiError::invalid(
                "exportMyData",
                format!(
                    "{tasks} tasks are more than {INLINE_TASKS} in one response: download the \
                     whole export from GET /export"
                ),
            ));
        }
        let mut document = Vec::new();
        export::export_user(pool, user, &mut document, |_| {})
            .await
            .map_err(ApiError::internal)?;
        serde_json::from_slice(&document)
            .map(Json)
            .map_err(ApiError::internal)
    }
}
