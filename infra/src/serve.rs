//! HTTP/1 served on bounded connections ([`BoundedListener`]), with the
//! request head's read bounded in time as a whole: a client that sends its
//! headers a byte every few seconds is never silent for the idle time, but
//! it cannot hold a connection past the header time either. `axum::serve`
//! gives hyper no timer, so hyper's own header timeout never runs there.
//! Upgrades (the GraphQL WebSocket) are served; on shutdown each connection
//! finishes the request in flight and closes, and `serve` returns once all
//! have.

use std::time::Duration;

use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connections::BoundedListener;

/// Serves `router` on every connection `listener` accepts until `shutdown`
/// is cancelled; a request's head must arrive within `header_read`.
pub async fn serve(
    mut listener: BoundedListener,
    router: Router,
    header_read: Duration,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let (stream, _address) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read);
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, "connection ended");
            }
        });
    }
    connections.close();
    connections.wait().await;
}
