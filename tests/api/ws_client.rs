//! A real WebSocket client speaking `graphql-transport-ws` (or the legacy
//! `graphql-ws`), for tests of `/graphql/ws`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Json(Value),
    Closed(u16, String),
}

pub struct GqlSocket {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl GqlSocket {
    /// Opens `/graphql/ws` of the app at `address` (`http://host:port`)
    /// offering `protocol`.
    pub async fn open(address: &str, protocol: &str) -> Self {
        let url = format!("{}/graphql/ws", address.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            protocol,
            "the server speaks the offered protocol"
        );
        Self { socket }
    }

    /// Opens a `graphql-transport-ws` socket and initialises it with `token`.
    pub async fn connect(address: &str, token: &str) -> Self {
        let mut socket = Self::open(address, "graphql-transport-ws").await;
        socket.init(token).await;
        socket
    }

    pub async fn init(&mut self, token: &str) {
        self.send(json!({
            "type": "connection_init",
            "payload": {"authorization": format!("Bearer {token}")},
        }))
        .await;
        let ack = self.next(Duration::from_secs(5)).await;
        assert_eq!(
            ack,
            Some(Frame::Json(json!({"type": "connection_ack"}))),
            "connection_init is acknowledged"
        );
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("the socket takes the message");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "id": id,
            "type": "subscribe",
            "payload": {"query": query, "variables": variables},
        }))
        .await;
    }

    /// The next protocol message or close within `within`; `None` if nothing
    /// came. Pings and pongs are skipped.
    pub async fn next(&mut self, within: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Some(Frame::Json(serde_json::from_str(&text).unwrap()))
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Some(Frame::Closed(code, reason));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Frame::Closed(1006, String::new())),
            }
        }
    }

    /// The payload of the next `next` message for `id`, skipping others.
    pub async fn next_payload(&mut self, id: &str, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Frame::Json(message) if message["id"] == id && message["type"] == "next" => {
                    return Some(message["payload"].clone())
                }
                Frame::Json(message) if message["id"] == id && message["type"] == "error" => {
                    panic!("subscription {id} failed: {message}")
                }
                Frame::Json(_) => continue,
                Frame::Closed(code, reason) => panic!("closed with {code}: {reason}"),
            }
        }
    }

    /// The close code the server ends this socket with, within `within`.
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Frame::Closed(code, _) => return Some(code),
                Frame::Json(_) => continue,
            }
        }
    }
}
