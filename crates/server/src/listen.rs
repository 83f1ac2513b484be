//! The accept loop. `axum::serve` never times out a connection that sends half its headers
//! and waits, so enough such connections exhaust the process's file descriptors and nothing
//! is answered any more. This loop serves HTTP/1.1 with hyper directly and holds every
//! connection to three rules:
//! - the request head must arrive within the header-read timeout, counted from the moment
//!   the connection (or a kept-alive connection's next request) starts waiting for it, so
//!   idle and half-open connections are closed;
//! - at most `max_connections` are open at once (never more than the file-descriptor limit
//!   leaves room for); beyond that, new connections wait in the kernel's backlog instead of
//!   failing the accept;
//! - an accept error (the descriptor limit reached anyway) is logged and retried after a
//!   short pause, so the server keeps accepting once descriptors are free again.
//!
//! The time a request may take once its head arrived is the router's request timeout.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Descriptors kept free for the database pool, outgoing HTTP clients and files.
const RESERVED_DESCRIPTORS: u64 = 256;

/// How a listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// How long in-flight requests may finish after shutdown begins.
    pub shutdown_timeout: Duration,
}

/// Raises this process's soft descriptor limit to its hard limit and returns how many
/// connections fit beside the descriptors the rest of the process needs.
fn connection_capacity(wanted: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft));
    match limit {
        Ok(limit) => {
            let room = limit.saturating_sub(RESERVED_DESCRIPTORS).max(16);
            wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        Err(_) => wanted,
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish for
/// up to `limits.shutdown_timeout`.
pub async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let capacity = connection_capacity(limits.max_connections);
    if capacity < limits.max_connections {
        tracing::warn!(
            connections.wanted = limits.max_connections,
            connections.capacity = capacity,
            "the file-descriptor limit allows fewer connections than configured"
        );
    }
    let permits = Arc::new(Semaphore::new(capacity));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            let app = app.clone();
            async move {
                let response = app.oneshot(request.map(Body::new)).await;
                Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error.cause = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown deadline reached with requests still open");
    }
    Ok(())
}

/// A failed accept: out of descriptors, or the peer gave up before we took it. Pausing
/// lets other connections finish and free descriptors instead of spinning.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    ) {
        return;
    }
    tracing::error!(error.cause = %err, "accept failed; retrying shortly");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
