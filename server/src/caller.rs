//! Who a request comes from: its bearer token, verified, and its correlation
//! id (the client's `x-correlation-id`, or a new one).

use api_core::consistency::{self, ConsistencyToken};
use api_core::ApiError;
use axum::http::{header, HeaderMap};
use event_store::command::Actor;

use crate::ApiState;

pub(crate) const CORRELATION_ID: &str = "x-correlation-id";

/// The bearer token of the request: `None` without an `Authorization`
/// header. The scheme is case-insensitive (RFC 7235); a header that is not a
/// single bearer credential is refused, so two headers never race.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("send one Authorization header, not several");
    }
    let text = value
        .to_str()
        .map_err(|_| "the Authorization header is not text")?;
    match text.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err("the Authorization header must be `Bearer <token>`"),
    }
}

/// The verified caller of a request that must carry a token (MCP), or why
/// there is none (answer it with `ApiError::TokenRefused`).
pub(crate) fn authenticate(state: &ApiState, headers: &HeaderMap) -> Result<Actor, &'static str> {
    let token =
        bearer_token(headers)?.ok_or("a valid `Authorization: Bearer <token>` is required")?;
    let user_id = state
        .verifier
        .verify(token)
        .map_err(|refusal| refusal.message())?;
    Ok(Actor {
        user_id,
        correlation_id: correlation_id(headers),
    })
}

/// The client's `x-correlation-id` if it is sensible, or a new one.
pub(crate) fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The consistency token the request carries (`Taskledger-Consistency`), if
/// any: the token a write of this caller's answered, which makes this read
/// wait for that write wherever it lands.
pub(crate) fn carried_token(headers: &HeaderMap) -> Result<Option<ConsistencyToken>, ApiError> {
    let mut values = headers.get_all(consistency::HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let refused = |reason| ApiError::invalid("Taskledger-Consistency", reason);
    if values.next().is_some() {
        return Err(refused(
            "send one Taskledger-Consistency header, not several",
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| refused("the Taskledger-Consistency header is not text"))?;
    ConsistencyToken::parse("Taskledger-Consistency", text).map(Some)
}

/// The response header that answers a write's token.
pub(crate) fn token_header(
    response: &mut axum::response::Response,
    token: Option<ConsistencyToken>,
) {
    if let Some(value) = token.and_then(|t| header::HeaderValue::from_str(&t.to_string()).ok()) {
        response.headers_mut().insert(consistency::HEADER, value);
    }
}
