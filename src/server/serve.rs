//! The accept loop: HTTP/1.1 connections under a cap, each with a deadline for its
//! request head that also closes it when idle between requests, and a graceful shutdown
//! that waits for open requests only up to a deadline.
//!
//! (`axum::serve` sets no timer, so a connection that never finishes its headers, or
//! sits idle after a response, stays open forever and holds a file descriptor.)

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::config::ServerSettings;
use super::head_limits::{MAX_HEADER_BYTES, MAX_HEADERS};

/// How long to pause accepting after `accept` fails (out of file descriptors, say):
/// retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serve `app` on `listener` until `shutdown` completes; then stop accepting, let open
/// requests finish for up to `shutdown_grace_ms`, and close whatever remains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(settings.header_read_timeout_ms))
        // Above the JSON-answering limits of `head_limits`, so those answer first.
        .max_headers(MAX_HEADERS * 4)
        .max_buf_size((MAX_HEADER_BYTES * 4).max(64 << 10));
    let permits = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // At the cap, stop accepting: new connections wait in the kernel's backlog
        // instead of failing `accept` for everyone with "too many open files".
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let open = graceful.count();
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    tracing::info!(open, "shutting down: finishing in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = settings.shutdown_grace_ms,
            "shutdown deadline passed: closing the connections still open"
        );
    }
}
