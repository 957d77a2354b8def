//! What every door of the API shares, whichever side it serves: who is
//! calling (bearer tokens, the request's actor), what they may spend (rate
//! and concurrency per user), and how a refusal reads (one error type with
//! stable codes). The command and query sides' GraphQL roots, the MCP tools
//! and the HTTP server all build on it.

pub mod auth;
pub mod consistency;
pub mod error;
pub mod fairness;
pub mod priority;
pub mod request;
pub mod role;
pub mod status;

pub use error::{ApiError, ApiResult, ErrorCode};
pub use priority::PriorityLevel;
pub use role::ListRole;
pub use status::TaskStatus;
