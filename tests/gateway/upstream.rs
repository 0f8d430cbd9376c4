//! An in-process upstream that records every request it receives (method, path, query,
//! headers, body) and can be told to be slow, fail with 500, or stream its answer.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// One request as the upstream saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The gateway's side of the connection.
    pub peer: Option<SocketAddr>,
    pub version: axum::http::Version,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// How the upstream answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// 200, echoing the body, with headers a proxy must drop.
    Echo,
    /// Waits this long before answering.
    Slow(Duration),
    /// 500 with internals in the body.
    Fail,
    /// 200 with this JSON body (`content-type: application/json`).
    Json(&'static str),
}

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    mode: Arc<Mutex<Mode>>,
    /// For `/stream`: the second half of the body is sent when this fires.
    release: Arc<tokio::sync::Notify>,
    tls: bool,
}

pub struct Upstream {
    pub addr: SocketAddr,
    shared: Shared,
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Upstream {
    pub async fn start() -> Upstream {
        Self::start_with(None).await
    }

    /// An upstream serving https with this certificate and key.
    pub async fn start_tls(files: &warden::http::tls::TlsFiles) -> Upstream {
        Self::start_with(Some(warden::http::tls::acceptor(files).unwrap())).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Shared { seen: Arc::default(), mode: Arc::new(Mutex::new(Mode::Echo)), release: Arc::default(), tls: tls.is_some() };
        let app = Router::new().fallback(record).with_state(shared.clone());
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let cfg = warden::http::serve::ServeConfig::default();
            let _ = warden::http::serve::serve_with(listener, app, cfg, Arc::default(), tls, s).await;
        });
        Upstream { addr, shared, stop }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.shared.tls { "https" } else { "http" }, self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The only request received so far.
    pub fn one(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "expected exactly one upstream request, got {seen:#?}");
        seen.into_iter().next().unwrap()
    }

    pub fn clear(&self) {
        self.shared.seen.lock().unwrap().clear();
    }

    /// Lets a `/stream` response finish.
    pub fn release(&self) {
        self.shared.release.notify_one();
    }
}

async fn record(State(shared): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    shared.seen.lock().unwrap().push(Seen {
        peer: parts.extensions.get::<warden::http::client_ip::ClientAddr>().map(|c| c.peer),
        version: parts.version,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: body.clone(),
        at: std::time::Instant::now(),
    });
    let mode = *shared.mode.lock().unwrap();
    if parts.uri.path().ends_with("/stream") {
        let (mut tx, rx) = http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(1);
        let release = shared.release.clone();
        tokio::spawn(async move {
            let _ = tx.send_data(Bytes::from_static(b"first;")).await;
            release.notified().await;
            let _ = tx.send_data(Bytes::from_static(b"second")).await;
        });
        return Response::new(Body::new(rx));
    }
    match mode {
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Fail => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Body::from("stack trace at /srv/app.py line 3"))
                .unwrap();
        }
        Mode::Json(json) => {
            return Response::builder().header("content-type", "application/json").body(Body::from(json)).unwrap();
        }
        Mode::Echo => {}
    }
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert("server", HeaderValue::from_static("upstream-secret/1.2.3"));
    h.insert("x-powered-by", HeaderValue::from_static("PHP/5.4"));
    h.insert("x-upstream", HeaderValue::from_static("yes"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert("proxy-authenticate", HeaderValue::from_static("Basic realm=\"internal\""));
    resp
}
