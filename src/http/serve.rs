//! The HTTP/1 server loop: what `axum::serve` does, plus a deadline for request headers.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never runs and a client
//! that opens a connection and sends nothing, or half a request, holds it (a socket, a task)
//! for as long as it likes; a few thousand such clients use up the file descriptors (slowloris).
//! Here each connection is served by hyper's HTTP/1 builder with a Tokio timer and
//! [`HEADER_READ_TIMEOUT`], which also closes an idle keep-alive connection after that long.
//! Graceful shutdown is axum's: stop accepting, let each connection finish the request it is
//! answering (idle ones close at once), return when all have.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest a client may take to send a request's headers, counted from when the server is
/// ready to read them (so also an idle keep-alive connection's wait for its next request).
/// A feed reader sends its few hundred bytes at once; 20 s leaves room for the slowest link.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `router` on `listener` until `shutdown` completes, then drains: no new connections,
/// requests being answered finish, and this returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = TaskTracker::new();
    let draining = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if accept_failed(e, shutdown.as_mut()).await {
                        break;
                    }
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let draining = draining.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = draining.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                // A client that went away or was too slow to send its headers: routine.
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    draining.cancel();
    connections.close();
    connections.wait().await;
}

/// After a failed `accept`: a connection reset before it was accepted is routine; anything
/// else (e.g. out of file descriptors) is logged and waited out for a second, as hyper and
/// axum do. Whether shutdown came meanwhile.
async fn accept_failed(
    e: std::io::Error,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return false;
    }
    tracing::error!(error = %e, "accepting an HTTP connection failed; retrying in 1 s");
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(1)) => false,
        () = shutdown => true,
    }
}
