//! GraphQL over WebSocket at `/graphql/ws`: the `graphql-transport-ws`
//! protocol, and the legacy `graphql-ws` one for older clients. Written here
//! rather than taken from async-graphql because the protocol's close codes
//! are ours to keep: 4401 for a subscribe before an accepted
//! `connection_init`, 4403 for a refused token and when the token expires,
//! 4408 when no `connection_init` comes in time, 4409 for a subscription id in
//! use, 4429 for a second `connection_init`, 4400 for anything that is not a
//! protocol message; 1008 for more sockets of one user than allowed, 1001
//! for a client that answers no ping.
//!
//! Every subscribe goes through the same document limits and per-user rate as
//! `POST /graphql`; a connection holds at most [`MAX_SUBSCRIPTIONS`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{Response, ServerError};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response as HttpResponse;
use chrono::Utc;
use event_store::command::Actor;
use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use api_core::consistency::{self, ConsistencyToken};
use api_core::ApiError;

use crate::refusal::refusal;
use crate::ApiState;

/// Subscriptions one connection may hold at once.
pub const MAX_SUBSCRIPTIONS: usize = 32;
/// Sockets one user may hold open at once in one API process.
pub const MAX_SOCKETS_PER_USER: usize = 64;
/// Subscriptions of one user at once, across their sockets to this process:
/// each reads its backlog from the read model, so their number is bounded
/// as the sockets' is.
pub const MAX_SUBSCRIPTIONS_PER_USER: usize = 128;
/// The largest message a client may send.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How often the server pings; a client that answers counts as active.
const PING_EVERY: Duration = Duration::from_secs(15);
/// How long a client may send nothing, not even a pong to our pings.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);
/// How long one message may take to reach the client's socket buffer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    TransportWs,
    /// `subscriptions-transport-ws`, subprotocol `graphql-ws`.
    Legacy,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::TransportWs => "graphql-transport-ws",
            Self::Legacy => "graphql-ws",
        }
    }

    fn next(self) -> &'static str {
        match self {
            Self::TransportWs => "next",
            Self::Legacy => "data",
        }
    }
}

/// What a client may send, in either protocol.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping,
    Pong,
    #[serde(alias = "start")]
    Subscribe {
        id: String,
        payload: Box<async_graphql::Request>,
    },
    #[serde(alias = "stop")]
    Complete {
        id: String,
    },
    ConnectionTerminate,
}

/// What a connection does after handling one thing.
enum Step {
    Continue,
    /// Close with this code and reason.
    Close(u16, String),
    /// The client is gone: nothing more to send.
    Gone,
}

/// A close frame's reason may hold 123 bytes.
const MAX_REASON_BYTES: usize = 123;

fn close(code: u16, reason: impl Into<String>) -> Step {
    let mut reason = reason.into();
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    Step::Close(code, reason)
}

/// Open sockets and running subscriptions per user, across this process.
#[derive(Debug, Default, Clone)]
pub struct SocketCounts {
    sockets: PerUser,
    subscriptions: PerUser,
}

/// How many of something each user holds.
type PerUser = Arc<Mutex<HashMap<String, usize>>>;

/// One socket or subscription of a user, counted until dropped.
struct Slot {
    counts: PerUser,
    user: String,
}

impl SocketCounts {
    fn open(&self, user: &str) -> Option<Slot> {
        take(&self.sockets, user, MAX_SOCKETS_PER_USER)
    }

    fn subscribe(&self, user: &str) -> Option<Slot> {
        take(&self.subscriptions, user, MAX_SUBSCRIPTIONS_PER_USER)
    }
}

/// A slot of `user`'s in `counts`, unless they hold `limit` already.
fn take(counts: &PerUser, user: &str, limit: usize) -> Option<Slot> {
    let mut held = counts.lock().expect("not poisoned");
    let open = held.entry(user.to_owned()).or_insert(0);
    if *open >= limit {
        return None;
    }
    *open += 1;
    Some(Slot {
        counts: Arc::clone(counts),
        user: user.to_owned(),
    })
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("not poisoned");
        if let Some(open) = counts.get_mut(&self.user) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

/// `GET /graphql/ws`: upgrades a client that offers one of our subprotocols.
pub async fn upgrade(
    State(state): State<ApiState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> HttpResponse {
    let offered = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let protocol = if offered.contains(&"graphql-transport-ws") {
        Protocol::TransportWs
    } else if offered.contains(&"graphql-ws") {
        Protocol::Legacy
    } else {
        return refusal(
            StatusCode::BAD_REQUEST,
            ApiError::invalid(
                "sec-websocket-protocol",
                "offer the WebSocket subprotocol graphql-transport-ws (or graphql-ws)",
            ),
        );
    };
    upgrade
        .protocols([protocol.name()])
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| run(state, protocol, socket))
}

async fn run(state: ApiState, protocol: Protocol, mut socket: WebSocket) {
    let mut connection = Connection {
        state,
        protocol,
        session: None,
        active: HashMap::new(),
        streams: SelectAll::new(),
        socket: &mut socket,
    };
    let ended = connection.serve().await;
    drop(connection);
    if let Some((code, reason)) = ended {
        metrics::counter!(infra::metric::WEBSOCKET_CLOSES, "code" => code.to_string()).increment(1);
        tracing::debug!(code, %reason, "closing a WebSocket");
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
    }
}

/// An accepted `connection_init`.
struct Session {
    actor: Actor,
    /// Its subscriptions' backlogs show the caller's own writes: those of
    /// this process, and the token `connection_init` carried.
    reads: consistency::Session,
    expires: Instant,
    _slot: Slot,
}

/// A subscription's responses, tagged with its id; `None` when it ended.
type Tagged = (String, Option<Response>);

struct Connection<'s> {
    state: ApiState,
    protocol: Protocol,
    session: Option<Session>,
    /// Running subscriptions: whether each has sent anything yet, and its
    /// place among its user's.
    active: HashMap<String, (AbortHandle, bool, Slot)>,
    streams: SelectAll<BoxStream<'static, Tagged>>,
    socket: &'s mut WebSocket,
}

impl Connection<'_> {
    /// Serves until the connection ends; answers the close code and reason
    /// to send, if the client is still there.
    async fn serve(&mut self) -> Option<(u16, String)> {
        let init_deadline = Instant::now() + self.state.ws_init_timeout;
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let shutdown = self.state.shutdown.clone();
        let mut erased = self.state.erased.subscribe();
        let mut last_heard = Instant::now();
        loop {
            let expires = self.session.as_ref().map(|s| s.expires);
            let ended = tokio::select! {
                frame = self.socket.recv() => {
                    last_heard = Instant::now();
                    match frame {
                    Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
                    Some(Ok(Message::Binary(_))) => {
                        close(4400, "binary messages are not part of the protocol")
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Step::Continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => Step::Gone,
                    }
                }
                Some((id, response)) = self.streams.next(), if !self.streams.is_empty() => {
                    self.on_response(id, response).await
                }
                () = tokio::time::sleep_until(init_deadline), if self.session.is_none() => {
                    close(4408, "Connection initialisation timeout")
                }
                () = tokio::time::sleep_until(expires.unwrap_or(init_deadline)), if expires.is_some() => {
                    close(4403, "Forbidden: the token expired; connect again with a new one")
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        return Some((
                            1001,
                            "the client answered no ping; it is gone".to_owned(),
                        ));
                    }
                    let ping = match self.protocol {
                        Protocol::TransportWs => Message::Ping(Default::default()),
                        Protocol::Legacy => Message::Text(json!({"type": "ka"}).to_string().into()),
                    };
                    self.send(ping).await
                }
                Ok(user) = erased.recv(), if self.session.is_some() => {
                    if self.session.as_ref().is_some_and(|s| s.actor.user_id.as_str() == user) {
                        close(4403, "Forbidden: this user's data was erased")
                    } else {
                        Step::Continue
                    }
                }
                () = shutdown.cancelled() => close(1001, "the server is shutting down"),
            };
            match ended {
                Step::Continue => {}
                Step::Close(code, reason) => return Some((code, reason)),
                Step::Gone => return None,
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Step {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(error) => return close(4400, format!("Invalid message received: {error}")),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => self.on_init(payload).await,
            ClientMessage::Ping => self.send_json(json!({"type": "pong"})).await,
            ClientMessage::Pong => Step::Continue,
            ClientMessage::Subscribe { id, payload } => self.on_subscribe(id, *payload).await,
            ClientMessage::Complete { id } => {
                if let Some((handle, ..)) = self.active.remove(&id) {
                    handle.abort();
                }
                Step::Continue
            }
            ClientMessage::ConnectionTerminate => close(1000, "terminated by the client"),
        }
    }

    async fn on_init(&mut self, payload: Option<Value>) -> Step {
        if self.session.is_some() {
            return close(4429, "Too many initialisation requests");
        }
        let Some(token) = payload.as_ref().and_then(token_of) else {
            return close(
                4403,
                "Forbidden: connection_init needs {\"authorization\": \"Bearer <token>\"}",
            );
        };
        let (user_id, expires) = match self.state.verifier.verify_until(token) {
            Ok(verified) => verified,
            Err(refusal) => return close(4403, format!("Forbidden: {}", refusal.message())),
        };
        let carried = match payload
            .as_ref()
            .and_then(|p| p.get("consistencyToken"))
            .map(|token| match token.as_str() {
                Some(text) => ConsistencyToken::parse("consistencyToken", text),
                None => ConsistencyToken::parse("consistencyToken", ""),
            })
            .transpose()
        {
            Ok(carried) => carried,
            Err(refused) => return close(4400, refused.message()),
        };
        let Some(slot) = self.state.sockets.open(user_id.as_str()) else {
            return close(
                1008,
                format!("too many open connections for this user (at most {MAX_SOCKETS_PER_USER})"),
            );
        };
        let left = (expires - Utc::now()).to_std().unwrap_or_default();
        self.session = Some(Session {
            actor: Actor {
                user_id,
                correlation_id: uuid::Uuid::new_v4().to_string(),
            },
            reads: self.state.consistency.session(carried),
            expires: Instant::now() + left,
            _slot: slot,
        });
        self.send_json(json!({"type": "connection_ack"})).await
    }

    async fn on_subscribe(&mut self, id: String, request: async_graphql::Request) -> Step {
        let Some(session) = &self.session else {
            return close(4401, "Unauthorized");
        };
        if id.is_empty() || id.len() > 128 {
            return close(4400, "a subscription id is 1 to 128 characters");
        }
        if self.active.contains_key(&id) {
            return close(4409, format!("Subscriber for {id} already exists"));
        }
        if self.active.len() >= MAX_SUBSCRIPTIONS {
            return self
                .send_error(
                    &id,
                    ApiError::TooManySubscriptions {
                        limit: MAX_SUBSCRIPTIONS,
                        per: "connection",
                    },
                )
                .await;
        }
        let Some(slot) = self.state.sockets.subscribe(session.actor.user_id.as_str()) else {
            return self
                .send_error(
                    &id,
                    ApiError::TooManySubscriptions {
                        limit: MAX_SUBSCRIPTIONS_PER_USER,
                        per: "user",
                    },
                )
                .await;
        };
        if let Err(refused) = self
            .state
            .documents
            .check(&request.query, request.operation_name.as_deref())
        {
            return self.send_error(&id, refused.into()).await;
        }
        // Queries and mutations go to `POST /graphql`, where each runs under
        // the request deadline and holds a place among the user's requests in
        // flight; a socket holds long-lived subscriptions only.
        if !is_subscription(&request.query, request.operation_name.as_deref()) {
            return self
                .send_error(
                    &id,
                    ApiError::invalid(
                        "query",
                        "this socket takes subscriptions; send queries and mutations to POST /graphql",
                    ),
                )
                .await;
        }
        // Counted against the user's rate like any request; a subscription
        // does not hold a place among the requests in flight.
        if let Err(refused) = self.state.fairness.admit(session.actor.user_id.as_str()) {
            return self.send_error(&id, refused.into()).await;
        }
        let request = request
            .data(session.actor.clone())
            .data(session.reads.clone());
        let tag = id.clone();
        let end = id.clone();
        let responses = self
            .state
            .schema
            .execute_stream(request)
            .map(move |response| (tag.clone(), Some(response)))
            .chain(futures::stream::once(async move { (end, None) }));
        let (handle, registration) = AbortHandle::new_pair();
        self.streams
            .push(Abortable::new(responses, registration).boxed());
        self.active.insert(id, (handle, false, slot));
        Step::Continue
    }

    async fn on_response(&mut self, id: String, response: Option<Response>) -> Step {
        let Some(mut response) = response else {
            // Ended by the server: tell the client, unless it asked for it.
            if self.active.remove(&id).is_some() {
                return self.send_json(json!({"type": "complete", "id": id})).await;
            }
            return Step::Continue;
        };
        let Some((handle, started, _)) = self.active.get_mut(&id) else {
            return Step::Continue;
        };
        for error in &mut response.errors {
            ensure_code(error);
        }
        // A document refused before it ran is an `error`, which ends it.
        if !*started && response.data == async_graphql::Value::Null && response.is_err() {
            handle.abort();
            self.active.remove(&id);
            let errors = serde_json::to_value(&response.errors).unwrap_or_default();
            return self
                .send_json(json!({"type": "error", "id": id, "payload": errors}))
                .await;
        }
        *started = true;
        let payload = serde_json::to_value(&response).unwrap_or_default();
        self.send_json(json!({"type": self.protocol.next(), "id": id, "payload": payload}))
            .await
    }

    async fn send_error(&mut self, id: &str, error: ApiError) -> Step {
        let payload = json!([error.to_json()]);
        self.send_json(json!({"type": "error", "id": id, "payload": payload}))
            .await
    }

    async fn send_json(&mut self, message: Value) -> Step {
        self.send(Message::Text(message.to_string().into())).await
    }

    async fn send(&mut self, message: Message) -> Step {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(message)).await {
            Ok(Ok(())) => Step::Continue,
            Ok(Err(_)) => Step::Gone,
            Err(_) => close(4408, "the client did not read its messages in time"),
        }
    }
}

/// Whether the operation a document runs is a subscription.
fn is_subscription(query: &str, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return true; // the engine reports the syntax error
    };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_none_or(|operation| operation.node.ty == OperationType::Subscription)
}

/// The bearer token in a `connection_init` payload: `authorization` (or
/// `Authorization`) as `Bearer <token>`, or a bare `token`.
fn token_of(payload: &Value) -> Option<&str> {
    let header = payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"))
        .and_then(Value::as_str);
    match header {
        Some(header) => header.strip_prefix("Bearer ").map(str::trim),
        None => payload.get("token").and_then(Value::as_str),
    }
}

fn ensure_code(error: &mut ServerError) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", api_core::ErrorCode::Validation.as_str());
    }
}
