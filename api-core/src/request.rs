//! What a resolver takes from its request's context: the verified caller and
//! the services the schema was built with.

use async_graphql::Context;
use event_store::command::Actor;

use crate::error::ApiError;

/// The verified caller of this request, or `UNAUTHENTICATED`.
pub fn actor<'a>(ctx: &Context<'a>) -> Result<&'a Actor, ApiError> {
    ctx.data_opt::<Actor>().ok_or(ApiError::Unauthenticated)
}

/// A service the schema was built with; missing only through a wiring mistake.
pub fn service<'a, T: std::any::Any + Send + Sync>(ctx: &Context<'a>) -> Result<&'a T, ApiError> {
    ctx.data::<T>().map_err(|_| {
        ApiError::internal(format!(
            "the schema holds no {}",
            std::any::type_name::<T>()
        ))
    })
}
