//! The MCP endpoint at `/mcp` for AI agents: a dozen tools at the level of a
//! person's intent, each run as a fixed GraphQL operation against the same
//! schema as the API, for the caller the bearer token names. So an agent gets
//! exactly GraphQL's isolation, validation, limits and error codes; the user
//! is never a tool argument.

mod adding;
mod changing;
mod endpoint;
mod finding;
mod operation;
mod overview;
#[cfg(test)]
mod tests;

pub use endpoint::{admit, service};
