//! The web app at `GET /`: a page, its script and its styles, all from this
//! server under a policy that allows nothing from elsewhere, and in local mode
//! `POST /auth/dev-token`, which signs a development token for a name.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use domain::values::UserId;
use serde::Deserialize;
use serde_json::json;

use api_core::auth::TokenVerifier;
use api_core::ApiError;

use crate::refusal::refusal;
use crate::ApiState;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../assets/app/index.html");
const SCRIPT: &str = include_str!("../assets/app/app.js");
const STYLES: &str = include_str!("../assets/app/app.css");

/// How long a development token lasts.
const DEV_TOKEN_HOURS: i64 = 12;

/// `GET /`: the page.
pub async fn page() -> Response {
    with_policy("text/html; charset=utf-8", PAGE)
}

/// `GET /app/{file}`: the page's script or styles.
pub async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => with_policy("text/javascript; charset=utf-8", SCRIPT),
        "app.css" => with_policy("text/css; charset=utf-8", STYLES),
        _ => refusal(StatusCode::NOT_FOUND, ApiError::NoSuchResource("file")),
    }
}

fn with_policy(content_type: &'static str, body: &'static str) -> Response {
    let response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let mut response = crate::graphiql::with_policy(response, CONTENT_SECURITY_POLICY);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Deserialize)]
pub struct DevTokenRequest {
    name: String,
}

/// Signs development tokens; present only in local mode.
#[derive(Clone)]
pub struct DevTokens(pub Arc<TokenVerifier>);

/// `POST /auth/dev-token` `{"name": "alice"}`: a token for that user, in
/// local mode only (elsewhere the route answers 404 like any unknown path).
pub async fn dev_token(
    State(state): State<ApiState>,
    body: Result<Json<DevTokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(DevTokens(signer)) = &state.dev_tokens else {
        return refusal(StatusCode::NOT_FOUND, ApiError::NoSuchResource("route"));
    };
    let Ok(Json(request)) = body else {
        return refusal(
            StatusCode::BAD_REQUEST,
            ApiError::invalid("body", "send {\"name\": \"<user name>\"} as JSON"),
        );
    };
    let user = match UserId::parse(&request.name) {
        Ok(user) => user,
        Err(invalid) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                ApiError::invalid("name", invalid.reason),
            )
        }
    };
    let ttl = chrono::Duration::hours(DEV_TOKEN_HOURS);
    let token = signer.issue(&user, ttl);
    Json(json!({
        "token": token,
        "userId": user.as_str(),
        "expiresAt": (Utc::now() + ttl).to_rfc3339(),
    }))
    .into_response()
}
