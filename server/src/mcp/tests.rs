//! The MCP tools take GraphQL's own enums under GraphQL's names, and a
//! refusal reaches an agent with the fields `ApiError` gives it.

use api_core::{ApiError, PriorityLevel};
use async_graphql::{EnumType, Pos};
use query_api::{TaskOrder, TaskSearchMode, TaskStatus};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use super::operation::ToolError;

/// Every value an agent sends or reads is the name GraphQL gives it.
fn named_as_in_graphql<T: EnumType + Serialize + DeserializeOwned + std::fmt::Debug>() {
    for item in T::items() {
        assert_eq!(serde_json::to_value(item.value).unwrap(), json!(item.name));
        assert_eq!(
            serde_json::from_value::<T>(json!(item.name)).unwrap(),
            item.value
        );
    }
}

#[test]
fn tool_arguments_use_graphqls_enums_and_names() {
    named_as_in_graphql::<TaskSearchMode>();
    named_as_in_graphql::<TaskOrder>();
    named_as_in_graphql::<TaskStatus>();
    named_as_in_graphql::<PriorityLevel>();
}

#[test]
fn a_graphql_refusal_reads_as_api_errors_flat_fields() {
    let error = ApiError::invalid("title", "must not be empty");
    let refused = async_graphql::Error::from(error.clone()).into_server_error(Pos::default());
    let tool_error = ToolError::refused_by_graphql("add_tasks", &refused);
    assert_eq!(
        tool_error.into_result().structured_content,
        Some(error.to_flat_json())
    );

    let without_code = async_graphql::ServerError::new("Unknown field \"x\"", None);
    let tool_error = ToolError::refused_by_graphql("find_tasks", &without_code);
    assert_eq!(tool_error.code(), "INTERNAL");
    assert_eq!(
        tool_error.into_result().structured_content,
        Some(ApiError::internal("hidden").to_flat_json()),
        "the cause is logged, not sent"
    );
}
