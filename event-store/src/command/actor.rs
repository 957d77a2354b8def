//! Who is acting: the verified user and the request they act in. The API puts
//! one into each request once the bearer token is verified; the recurrence
//! processor acts as the task's owner.

use domain::values::UserId;

#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: UserId,
    /// Ties every event of one request together; stamped into event metadata.
    pub correlation_id: String,
}
