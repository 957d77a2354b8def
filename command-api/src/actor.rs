//! Who is acting: put into each GraphQL request by the server once the bearer
//! token is verified.

use domain::values::UserId;

use crate::ErrorCode;

#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: UserId,
    /// Ties every event of one request together; stamped into event metadata.
    pub correlation_id: String,
}

impl Actor {
    /// The verified actor of a GraphQL request, or `UNAUTHENTICATED`.
    pub fn from_context<'a>(
        ctx: &async_graphql::Context<'a>,
    ) -> Result<&'a Actor, async_graphql::Error> {
        ctx.data_opt::<Actor>().ok_or_else(|| {
            ErrorCode::Unauthenticated.error("a valid `Authorization: Bearer <token>` is required")
        })
    }
}
