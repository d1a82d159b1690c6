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
//! for as long as it waits every connection that has answered a request closes once its
//! response is written (idle keep-alive ones at once), as nginx reuses its keep-alive
//! connections when it runs out. A connection asked to close gets [`CLOSE_GRACE`] to finish
//! its response, then is dropped: a client that asks for a feed and never reads it cannot
//! hold its slot, or a drain, for ever.
//!
//! Below the cap a client that asks for a large feed and then stops reading would hold its
//! connection for ever: the response's write waits on the client's full receive window. So
//! every connection's socket is wrapped in [`StallLimit`], which fails a write that has made
//! no progress for [`WRITE_STALL_TIMEOUT`] (hyper has no write timeout of its own); hyper then
//! closes the connection and `tradefeed_http_write_timeouts_total` counts it. A client that
//! reads, however slowly, keeps its connection: only a lack of progress is bounded, not the
//! time a response takes.
//!
//! Graceful shutdown: stop accepting, let each connection finish the request it is answering
//! (idle ones close at once; each within [`CLOSE_GRACE`]), return when all have.
//!
//! The cap is one budget however many loops serve at once ([`ConnectionSlots`], see
//! [`serve_shared`]): a reload that moves `[server] listen` runs the new address's loop beside
//! the old one while the old one's connections finish, and with a cap each the daemon could
//! hold twice its connection limit (twice the descriptors) for as long as that drain lasts.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
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
/// requests being answered finish (within [`CLOSE_GRACE`]), and this returns once every
/// connection has closed. At most [`connection_limit`] connections are open at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let limits = ServeLimits::with_header_read_timeout(header_read_timeout);
    serve_limited(listener, router, limits, shutdown).await;
}

/// The connections the serve loops sharing it may hold open together: one budget, however
/// many loops draw on it. A reload that moves `[server] listen` serves the new address while
/// the old one's connections finish; with a budget each, the two could hold twice the cap.
/// Clones share the budget.
#[derive(Debug, Clone)]
pub struct ConnectionSlots {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl ConnectionSlots {
    /// A budget of `max` connections (at least 1).
    pub fn new(max: usize) -> ConnectionSlots {
        let max = max.max(1);
        ConnectionSlots {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// How many connections the budget allows.
    pub fn max(&self) -> usize {
        self.max
    }

    /// How many slots are taken now, across every loop sharing the budget: each open
    /// connection's, and one per loop waiting in `accept` for its next connection (taken
    /// before it accepts, so an idle server reports one per loop).
    pub fn open(&self) -> usize {
        self.max - self.semaphore.available_permits()
    }
}

/// How long a connection asked to close (to make room at the cap, or at shutdown) may still
/// take to finish the response it is writing; then it is dropped. A reader takes a feed in
/// well under a second; a client that asked for one and stopped reading would otherwise hold
/// its connection, and at the cap everyone's turn, for ever.
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Longest a response write may wait without the client taking a single byte; then the
/// connection is closed. It bounds a lack of progress, not a response's total time: a phone on
/// a poor link that takes a feed at a kilobyte a second frees room in the socket's buffer
/// every few seconds and is served however long it takes. 30 s rides out a mobile link's
/// dead spell of 15 s or so (TCP's retransmissions back off exponentially, about 1, 3, 7 and
/// 15 s in) and is half nginx's `send_timeout` (the time nginx allows between two successful
/// writes): a client that takes nothing for that long has in practice gone, or never meant to
/// read. hyper has no such timeout (its only one is for request headers).
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The limits [`serve_limited`] serves with.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// Connections open at once, at least 1 (see [`connection_limit`]). Loops that share a
    /// budget ([`serve_shared`]) take the budget's instead: make it with this number.
    pub max_connections: usize,
    /// See [`CLOSE_GRACE`].
    pub close_grace: Duration,
    /// See [`WRITE_STALL_TIMEOUT`].
    pub write_stall_timeout: Duration,
}

impl ServeLimits {
    /// The daemon's limits ([`connection_limit`], [`CLOSE_GRACE`], [`WRITE_STALL_TIMEOUT`])
    /// with `header_read_timeout`.
    pub fn with_header_read_timeout(header_read_timeout: Duration) -> ServeLimits {
        ServeLimits {
            header_read_timeout,
            max_connections: connection_limit(),
            close_grace: CLOSE_GRACE,
            write_stall_timeout: WRITE_STALL_TIMEOUT,
        }
    }
}

/// [`serve`] with explicit limits.
///
/// While the cap is reached (the loop waits for a free slot) every connection that has
/// answered a request closes: at once if idle, else after the response it is writing (within
/// `close_grace`), and one that gets a request meanwhile closes after answering it. So a burst
/// of connections taken at once does not keep the backlog waiting once they are used.
pub async fn serve_limited(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = ConnectionSlots::new(limits.max_connections);
    serve_shared(listener, router, limits, slots, shutdown, || {}).await;
}

/// [`serve_limited`] with the connection cap of `slots`, shared with every other loop given a
/// clone of it: a connection of any of them holds a slot until it closes, and a loop at the
/// cap waits for one (its own idle connections close meanwhile, as at its own cap).
/// `limits.max_connections` is not read. `closed` runs once the listener is closed (it takes
/// no connection more; before the open ones drain), so that the address can be bound again.
pub async fn serve_shared(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    slots: ConnectionSlots,
    shutdown: impl Future<Output = ()>,
    closed: impl FnOnce(),
) {
    let ServeLimits {
        header_read_timeout,
        close_grace,
        write_stall_timeout,
        ..
    } = limits;
    let max_connections = slots.max();
    // The address too: a reload that changes `[server] listen` starts another serve loop.
    match listener.local_addr() {
        Ok(listen) => tracing::info!(%listen, max_connections, "serving HTTP"),
        Err(_) => tracing::info!(max_connections, "serving HTTP"),
    }
    let slots = slots.semaphore;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = TaskTracker::new();
    let control = Arc::new(Control::default());
    let mut last_warned: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                control.set_at_cap(true);
                if last_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    last_warned = Some(Instant::now());
                    tracing::warn!(
                        max_connections,
                        "HTTP connection limit reached; new connections wait until one closes"
                    );
                }
                let slot = tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => {
                        slot.expect("the connection semaphore is never closed")
                    }
                    () = shutdown.as_mut() => break,
                };
                control.set_at_cap(false);
                slot
            }
        };
        let stream = tokio::select! {
            // Shutdown first: once asked to stop, no connection is taken that draining would
            // then close unread.
            biased;
            () = shutdown.as_mut() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if accept_failed(e, shutdown.as_mut()).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let used = Arc::new(AtomicBool::new(false));
        let service = MarkUsed {
            inner: TowerToHyperService::new(router.clone()),
            used: Arc::clone(&used),
        };
        let io = TokioIo::new(StallLimit::new(stream, write_stall_timeout));
        let connection = builder.serve_connection(io, service);
        let mut watch = Watch::new(Arc::clone(&control), used);
        connections.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            // Set once the connection is asked to close: when it is dropped regardless.
            let mut closing: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
            let result = std::future::poll_fn(|cx| {
                loop {
                    if closing.is_none() && watch.should_close(cx) {
                        connection.as_mut().graceful_shutdown();
                        closing = Some(Box::pin(tokio::time::sleep(close_grace)));
                    }
                    if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                        return Poll::Ready(Some(result));
                    }
                    // That poll may have read a request: at the cap, this one closes after it.
                    if closing.is_none() && watch.should_close(cx) {
                        continue;
                    }
                    return match closing.as_mut().map(|sleep| sleep.as_mut().poll(cx)) {
                        Some(Poll::Ready(())) => Poll::Ready(None),
                        _ => Poll::Pending,
                    };
                }
            })
            .await;
            match result {
                // A client that went away or was too slow to send its headers: routine.
                Some(Err(e)) => tracing::debug!(error = %e, "HTTP connection ended with an error"),
                Some(Ok(())) => {}
                None => tracing::debug!(
                    ?close_grace,
                    "HTTP connection dropped: it did not finish its response in time to close"
                ),
            }
        });
    }
    drop(listener);
    closed();
    control.drain();
    connections.close();
    connections.wait().await;
}

/// What the accept loop tells its connections. Each connection reads the flags on every wake
/// (atomic loads: no lock on the serving path) and registers its waker once, so that it is
/// woken when a flag it waits on is raised while it sleeps (an idle keep-alive connection).
#[derive(Default)]
struct Control {
    /// The accept loop is waiting for a free slot: connections that have answered a request
    /// close.
    at_cap: AtomicBool,
    /// Shutdown: every connection closes after its current response.
    draining: AtomicBool,
    wakers: Mutex<Wakers>,
}

#[derive(Default)]
struct Wakers {
    next_id: u64,
    /// Every open connection's, woken when draining starts.
    all: HashMap<u64, Waker>,
    /// Those of connections that have had a request and are not closing yet, woken when the
    /// cap is reached.
    sheddable: HashMap<u64, Waker>,
}

impl Control {
    fn wakers(&self) -> std::sync::MutexGuard<'_, Wakers> {
        self.wakers.lock().expect("connection wakers lock poisoned")
    }

    fn set_at_cap(&self, at_cap: bool) {
        // Raised, then the registered are woken under the lock; a connection registers under
        // the lock, then reads the flag: either it is woken or it sees the flag.
        self.at_cap.store(at_cap, Ordering::SeqCst);
        if at_cap {
            self.wakers()
                .sheddable
                .values()
                .for_each(Waker::wake_by_ref);
        }
    }

    fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.wakers().all.values().for_each(Waker::wake_by_ref);
    }
}

/// One connection's view of [`Control`]; deregisters its waker when dropped.
struct Watch {
    control: Arc<Control>,
    /// Set by [`MarkUsed`] when the connection receives a request.
    used: Arc<AtomicBool>,
    /// The id and the waker registered (on the first poll).
    registered: Option<(u64, Waker)>,
    /// Registered among the sheddable.
    sheddable: bool,
}

impl Watch {
    fn new(control: Arc<Control>, used: Arc<AtomicBool>) -> Watch {
        Watch {
            control,
            used,
            registered: None,
            sheddable: false,
        }
    }

    /// Whether the connection is to close now: draining, or at the cap once it has answered a
    /// request. A connection that has not had a request yet is left to the header timeout:
    /// closing it could drop a request in flight. Once this says yes, the connection stops
    /// being woken for the cap.
    fn should_close(&mut self, cx: &Context<'_>) -> bool {
        let id = match &mut self.registered {
            Some((id, waker)) => {
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                    let mut wakers = self.control.wakers();
                    wakers.all.insert(*id, waker.clone());
                    if self.sheddable {
                        wakers.sheddable.insert(*id, waker.clone());
                    }
                }
                *id
            }
            None => {
                let mut wakers = self.control.wakers();
                let id = wakers.next_id;
                wakers.next_id += 1;
                wakers.all.insert(id, cx.waker().clone());
                self.registered = Some((id, cx.waker().clone()));
                id
            }
        };
        if self.control.draining.load(Ordering::SeqCst) {
            self.not_sheddable(id);
            return true;
        }
        if !self.sheddable && self.used.load(Ordering::Relaxed) {
            self.sheddable = true;
            self.control
                .wakers()
                .sheddable
                .insert(id, cx.waker().clone());
        }
        if self.sheddable && self.control.at_cap.load(Ordering::SeqCst) {
            self.not_sheddable(id);
            return true;
        }
        false
    }

    fn not_sheddable(&mut self, id: u64) {
        if self.sheddable {
            self.sheddable = false;
            self.control.wakers().sheddable.remove(&id);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some((id, _)) = &self.registered {
            let mut wakers = self.control.wakers();
            wakers.all.remove(id);
            wakers.sheddable.remove(id);
        }
    }
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

/// A socket whose writes fail with [`WriteStalled`] once one has waited `timeout` without any
/// write succeeding: a client that stopped reading. The clock starts when a write first finds
/// the socket's buffer full and stops at the next write that succeeds, so a response that fits
/// the buffer, or a client that keeps reading, never touches the timer: on the serving path
/// this costs a branch per write, and the timer (made on a connection's first full buffer) is
/// rearmed once per wait for the client, which is itself a trip through the kernel.
///
/// Vectored writes go through as such: hyper writes a response's head and body with one
/// `writev` only over IO that says it can (else it copies every body into its buffer).
pub(crate) struct StallLimit<S> {
    io: S,
    timeout: Duration,
    /// Fires `timeout` after the current wait began; made on the first wait.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A write is waiting and `stall` is set for it.
    waiting: bool,
}

impl<S> StallLimit<S> {
    pub(crate) fn new(io: S, timeout: Duration) -> StallLimit<S> {
        StallLimit {
            io,
            timeout,
            stall: None,
            waiting: false,
        }
    }

    /// Passes on what a write returned: ready (some progress, or an error) ends a wait;
    /// pending starts one, or fails with [`WriteStalled`] once the wait has lasted `timeout`.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.waiting = false;
            return poll;
        }
        let stall = match &mut self.stall {
            Some(stall) if self.waiting => stall,
            Some(stall) => {
                stall
                    .as_mut()
                    .reset(tokio::time::Instant::now() + self.timeout);
                stall
            }
            None => self
                .stall
                .insert(Box::pin(tokio::time::sleep(self.timeout))),
        };
        self.waiting = true;
        if stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        // hyper closes the connection at a write's error and writes no more.
        crate::telemetry::record_write_timeout();
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            WriteStalled(self.timeout),
        )))
    }
}

/// The error of a write that made no progress for the time given: the client stopped reading.
#[derive(Debug, thiserror::Error)]
#[error("the client took no response bytes for {0:?}")]
pub(crate) struct WriteStalled(Duration);

impl<S: AsyncRead + Unpin> AsyncRead for StallLimit<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallLimit<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    // A TCP socket's flush and shutdown do not wait on the client.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
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
