//! The accept loop every listener runs: hyper-util's HTTP/1.1 + HTTP/2 server with the guards
//! a public listener needs against slow, idle and greedy clients.
//!
//! Per connection, in order:
//! 1. **connection cap** (`http.max_connections` per listener): past it a new connection is
//!    answered `503` with `Retry-After` and closed at once — the listener never stops
//!    accepting, so a flood cannot queue honest clients behind it in the kernel backlog;
//! 2. **PROXY protocol v2** (`http.proxy_protocol`), read only from a trusted proxy, within
//!    the header-read timeout: its source address becomes the peer;
//! 3. **TLS** (`serve_with` given an acceptor, `http/tls.rs`): the handshake must finish
//!    within the header-read timeout; requests then carry [`Secure`];
//! 4. **header-read timeout** (`http.header_read_timeout`): a request's head must be complete
//!    within this time of its first byte — a client trickling header bytes is cut off however
//!    steadily it trickles;
//! 5. **idle timeout** (`http.idle_timeout`): a connection on which a read or a write makes no
//!    progress for this long is closed — an idle keep-alive connection, a stalled body, a
//!    client that stops reading its response;
//! 6. **header size** (`http.max_header_size`): a larger head gets `431` and the connection is
//!    closed (HTTP/2: the same cap on the header list);
//! 7. every request carries a [`ClientAddr`] extension (peer, and client behind trusted
//!    proxies) for throttling and audit.
//!
//! On shutdown the listener stops accepting, open connections finish their in-flight
//! requests (keep-alive is turned off), and whatever is still open after the grace period is
//! dropped.

use super::client_ip::{ClientAddr, TrustedProxies};
use axum::Router;
use hyper::rt::{Sleep, Timer};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// `[http]`: the guards of every listener.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    /// Time a client has to send a request's head, from its first byte.
    pub header_read_timeout: Duration,
    /// Longest time a connection may make no progress (idle keep-alive included).
    pub idle_timeout: Duration,
    /// Open connections per listener.
    pub max_connections: usize,
    /// Largest request head (request line and headers), bytes; at least 8 KiB.
    pub max_header_size: usize,
    /// Longest time a request may take in the handler.
    pub request_timeout: Duration,
    /// Expect a PROXY protocol v2 header on connections from trusted proxies.
    pub proxy_protocol: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 10_000,
            max_header_size: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            proxy_protocol: false,
        }
    }
}

/// The whole answer to a connection over the cap, written without parsing anything.
fn overloaded_response() -> Vec<u8> {
    let body = r#"{"type":"urn:warden:problem:overloaded","title":"Service Unavailable","status":503,"detail":"too many open connections; retry shortly"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
         content-type: application/problem+json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A request extension set on every request that arrived over TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secure;

/// Serves `router` on `listener` until `shutdown` fires, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cfg: ServeConfig,
    trusted: Arc<TrustedProxies>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    serve_with(listener, router, cfg, trusted, None, shutdown).await
}

/// [`serve`], terminating TLS on every connection when `tls` is given (after the PROXY
/// header, within the header-read timeout; requests then carry [`Secure`]).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    cfg: ServeConfig,
    trusted: Arc<TrustedProxies>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let overloaded = overloaded_response();
    let graceful = GracefulShutdown::new();
    let mut base = auto::Builder::new(TokioExecutor::new());
    base.http1().max_buf_size(cfg.max_header_size.max(8192)).header_read_timeout(cfg.header_read_timeout);
    base.http2().max_header_list_size(cfg.max_header_size as u32).max_concurrent_streams(256);
    let cfg = Arc::new(cfg);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection cap reached; refusing a connection");
            let _ = stream.try_write(&overloaded);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let (router, trusted, cfg, base, tls) = (router.clone(), trusted.clone(), cfg.clone(), base.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let mut stream = stream;
            let peer = if cfg.proxy_protocol && trusted.contains(peer.ip()) {
                match tokio::time::timeout(cfg.header_read_timeout, read_proxy_header(&mut stream, peer)).await {
                    Ok(Ok(source)) => source,
                    _ => {
                        tracing::debug!(%peer, "missing or malformed PROXY protocol header; closing");
                        return;
                    }
                }
            } else {
                peer
            };
            let conn = Conn { router, trusted, base, idle: cfg.idle_timeout, peer };
            match tls {
                None => conn.run(stream, false, watcher).await,
                Some(acceptor) => match tokio::time::timeout(cfg.header_read_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => conn.run(stream, true, watcher).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    let grace = cfg.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; dropping them");
    }
    Ok(())
}

/// What serving one accepted connection needs.
struct Conn {
    router: Router,
    trusted: Arc<TrustedProxies>,
    base: auto::Builder<TokioExecutor>,
    idle: Duration,
    peer: SocketAddr,
}

impl Conn {
    async fn run<S>(self, stream: S, secure: bool, watcher: hyper_util::server::graceful::Watcher)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn { router, trusted, base, idle, peer } = self;
        let clock = Arc::new(HeadClock::new());
        let io = TokioIo::new(Guarded::new(stream, idle, clock.clone()));
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let ip = trusted.client_ip(peer.ip(), req.headers());
            req.extensions_mut().insert(ClientAddr { peer, ip });
            if secure {
                req.extensions_mut().insert(Secure);
            }
            router.clone().oneshot(req)
        });
        let mut builder = base;
        builder.http1().timer(HeadTimer(clock));
        let conn = builder.serve_connection(io, service).into_owned();
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Reads a PROXY protocol v2 header (haproxy `proxy-protocol.txt` §2.2) and returns the
/// client it names. `LOCAL` (the proxy's own health checks) and non-IP families keep the
/// TCP peer. Reads exactly the header's bytes, so the HTTP stream starts right after it.
async fn read_proxy_header(stream: &mut TcpStream, peer: SocketAddr) -> io::Result<SocketAddr> {
    use ppp::v2::{Addresses, Command, Header};
    let mut buf = vec![0u8; 16];
    stream.read_exact(&mut buf).await?;
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    buf.resize(16 + len, 0);
    stream.read_exact(&mut buf[16..]).await?;
    let header = Header::try_from(buf.as_slice()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(match (header.command, header.addresses) {
        (Command::Proxy, Addresses::IPv4(a)) => SocketAddr::from((a.source_address, a.source_port)),
        (Command::Proxy, Addresses::IPv6(a)) => SocketAddr::from((a.source_address, a.source_port)),
        _ => peer,
    })
}

/// When the bytes of the request head now being read began to arrive: set by [`Guarded`] on
/// the first read after hyper armed its header timer, cleared when it arms it again.
struct HeadClock {
    origin: Instant,
    /// Milliseconds since `origin` of the first byte, or `NONE`.
    first_byte: AtomicU64,
}

const NONE: u64 = u64::MAX;

impl HeadClock {
    fn new() -> Self {
        Self { origin: Instant::now(), first_byte: AtomicU64::new(NONE) }
    }

    fn arm(&self) {
        self.first_byte.store(NONE, Ordering::Relaxed);
    }

    fn saw_bytes(&self) {
        if self.first_byte.load(Ordering::Relaxed) == NONE {
            let ms = self.origin.elapsed().as_millis() as u64;
            self.first_byte.store(ms, Ordering::Relaxed);
        }
    }

    fn first_byte(&self) -> Option<Instant> {
        match self.first_byte.load(Ordering::Relaxed) {
            NONE => None,
            ms => Some(self.origin + Duration::from_millis(ms)),
        }
    }
}

/// hyper's header-read timer for one connection. hyper arms it as soon as it waits for a
/// request head — also while a kept-alive connection sits idle — so counted from there it
/// would cut idle keep-alive connections at the header timeout. This timer counts from the
/// head's first byte instead; an idle connection is the idle timeout's business.
struct HeadTimer(Arc<HeadClock>);

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.0.arm();
        let timeout = deadline.saturating_duration_since(Instant::now());
        Box::pin(HeadSleep { clock: self.0.clone(), timeout, inner: None })
    }
}

struct HeadSleep {
    clock: Arc<HeadClock>,
    timeout: Duration,
    inner: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // hyper polls this whenever the connection wakes without a complete head, so a first
        // byte that arrived since the last poll is seen here.
        let Some(first) = self.clock.first_byte() else { return Poll::Pending };
        let deadline = tokio::time::Instant::from_std(first + self.timeout);
        let sleep = self.inner.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        sleep.as_mut().poll(cx)
    }
}

impl Sleep for HeadSleep {}

/// A connection's socket with the idle timeout: a read or write that stays pending for
/// `idle` fails with `TimedOut`, which ends the connection. Also feeds [`HeadClock`].
struct Guarded<S> {
    io: S,
    clock: Arc<HeadClock>,
    read: Stall,
    write: Stall,
}

impl<S> Guarded<S> {
    fn new(io: S, idle: Duration, clock: Arc<HeadClock>) -> Self {
        Self { io, clock, read: Stall::new(idle), write: Stall::new(idle) }
    }
}

/// How long one direction of a connection has been waiting; the timer is allocated once per
/// connection and re-armed at the start of each wait.
struct Stall {
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
}

impl Stall {
    fn new(idle: Duration) -> Self {
        Self { idle, timer: None, waiting: false }
    }

    /// The operation is pending: `Ready(TimedOut)` once it has been for `idle`.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let deadline = tokio::time::Instant::now() + self.idle;
        let timer = match &mut self.timer {
            Some(t) => {
                if !self.waiting {
                    t.as_mut().reset(deadline);
                }
                t
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.waiting = true;
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle"))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The operation made progress (or failed): the next wait starts a fresh period.
    fn done<T>(&mut self, r: Poll<T>) -> Poll<T> {
        self.waiting = false;
        r
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => this.read.pending(cx),
            ready => {
                if buf.filled().len() > before {
                    this.clock.saw_bytes();
                }
                this.read.done(ready)
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write(cx, data) {
            Poll::Pending => this.write.pending(cx),
            ready => this.write.done(ready),
        }
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.write.pending(cx),
            ready => this.write.done(ready),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
