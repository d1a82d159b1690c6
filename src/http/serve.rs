//! The HTTP/1 server loop: what `axum::serve` does, plus a deadline for request headers and a
//! cap on open connections.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never runs and a client
//! that opens a connection and sends nothing, or half a request, holds it (a socket, a task)
//! for as long as it likes; a few thousand such clients use up the file descriptors (slowloris).
//! Here each connection is served by hyper's HTTP/1 builder with a Tokio timer and
//! [`HEADER_READ_TIMEOUT`], which also closes an idle keep-alive connection after that long.
//!
//! The timeout alone does not bound how many connections are open at once: a client that
//! reopens them as they are closed kept every descriptor of the process in use, and then the
//! daemon's own feed fetches failed (EMFILE) and were recorded as source failures. So at most
//! [`connection_limit`] connections are served at once; at the cap the server accepts nothing
//! (new clients wait in the kernel's listen backlog, in arrival order) until one closes, and
//! asks the connections that have already answered a request to close once idle, as nginx
//! reuses its keep-alive connections when it runs out.
//!
//! Graceful shutdown is axum's: stop accepting, let each connection finish the request it is
//! answering (idle ones close at once), return when all have.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest a client may take to send a request's headers, counted from when the server is
/// ready to read them (so also an idle keep-alive connection's wait for its next request).
/// A feed reader sends its few hundred bytes at once; 20 s leaves room for the slowest link.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Fewest connections served at once, however low the open-files limit.
const MIN_CONNECTIONS: usize = 16;
/// Most connections served at once, however high the open-files limit: each costs a task and
/// its buffers, and feed readers' requests are short.
const MAX_CONNECTIONS: usize = 4096;

/// How many HTTP connections may be open at once: a quarter of the open-files limit, between
/// 16 and 4096, so the other three quarters stay for the database, the feed fetches and
/// everything else the daemon opens. On Unix the soft limit is first raised towards the hard
/// limit, as far as the largest cap needs (4 × 4096): a soft limit of 1024 (the usual default)
/// and a hard one of 524288 give 4096 connections.
pub fn connection_limit() -> usize {
    connections_for(open_files_limit())
}

/// The connection cap for an open-files limit (`None`: unknown or unlimited).
fn connections_for(open_files: Option<u64>) -> usize {
    open_files.map_or(MAX_CONNECTIONS, |n| {
        usize::try_from(n / 4)
            .unwrap_or(usize::MAX)
            .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
    })
}

/// The soft open-files limit, after raising it towards the hard limit (as far as
/// `4 * MAX_CONNECTIONS`) when it is lower. A refused raise (a seccomp filter, a platform
/// maximum below the hard limit) leaves the limit as it was.
#[cfg(unix)]
fn open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let want = 4 * MAX_CONNECTIONS as u64;
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current?;
    let target = limit.maximum.map_or(want, |hard| hard.min(want));
    if soft >= target {
        return Some(soft);
    }
    let raised = Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => Some(target),
        Err(e) => {
            tracing::debug!(error = %e, soft, target, "raising the open-files limit failed");
            Some(soft)
        }
    }
}

#[cfg(not(unix))]
fn open_files_limit() -> Option<u64> {
    None
}

/// Serves `router` on `listener` until `shutdown` completes, then drains: no new connections,
/// requests being answered finish, and this returns once every connection has closed. At most
/// [`connection_limit`] connections are open at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let max_connections = connection_limit();
    tracing::info!(max_connections, "serving HTTP");
    serve_limited(
        listener,
        router,
        header_read_timeout,
        max_connections,
        shutdown,
    )
    .await;
}

/// [`serve`] with at most `max_connections` connections open at once (at least 1).
pub async fn serve_limited(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = TaskTracker::new();
    let draining = CancellationToken::new();
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    // Bumped each time the cap is reached: connections that have answered a request close.
    let (shed, _) = watch::channel(0u64);
    let mut last_warned: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                shed.send_modify(|n| *n += 1);
                if last_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    last_warned = Some(Instant::now());
                    tracing::warn!(
                        max_connections,
                        "HTTP connection limit reached; new connections wait until one closes"
                    );
                }
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => {
                        slot.expect("the connection semaphore is never closed")
                    }
                    () = shutdown.as_mut() => break,
                }
            }
        };
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
        let used = Arc::new(AtomicBool::new(false));
        let service = MarkUsed {
            inner: TowerToHyperService::new(router.clone()),
            used: Arc::clone(&used),
        };
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let draining = draining.clone();
        let mut shed = shed.subscribe();
        connections.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            let mut sheddable = true;
            let result = loop {
                tokio::select! {
                    result = connection.as_mut() => break result,
                    () = draining.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        break connection.await;
                    }
                    changed = shed.changed(), if sheddable => {
                        // A connection that has answered a request is a keep-alive one (or
                        // answering its next request): it closes now if idle, else after
                        // this response. One that has not yet had its first request is left
                        // to the header timeout: closing it could drop a request in flight.
                        if changed.is_err() {
                            sheddable = false;
                        } else if used.load(Ordering::Relaxed) {
                            connection.as_mut().graceful_shutdown();
                            sheddable = false;
                        }
                    }
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

/// A hyper service that notes in `used` that its connection has received a request.
struct MarkUsed<S> {
    inner: S,
    used: Arc<AtomicBool>,
}

impl<S: hyper::service::Service<R>, R> hyper::service::Service<R> for MarkUsed<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: R) -> Self::Future {
        self.used.store(true, Ordering::Relaxed);
        self.inner.call(request)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_of_the_open_files_limit_is_kept_for_connections_within_bounds() {
        let cases = [
            (Some(0), MIN_CONNECTIONS),
            (Some(20), MIN_CONNECTIONS),
            (Some(256), 64),
            (Some(1024), 256),
            (Some(8192), 2048),
            (Some(16_384), MAX_CONNECTIONS),
            (Some(1 << 20), MAX_CONNECTIONS),
            (Some(u64::MAX), MAX_CONNECTIONS),
            (None, MAX_CONNECTIONS),
        ];
        for (open_files, want) in cases {
            assert_eq!(connections_for(open_files), want, "{open_files:?}");
        }
    }
}
