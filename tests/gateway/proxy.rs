//! Issue #7 item 1: what the upstream receives and what the caller gets back — headers,
//! forwarding information, request ids, streamed bodies, upstream failures, the retry.

use super::upstream::{Mode, Upstream};
use super::{assert_problem, base, gateway, raw, route};
use std::time::{Duration, Instant};

#[tokio::test]
async fn hop_by_hop_override_and_rewrite_headers_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("api", "/api/", &["GET", "POST"], &up.url())], |_| {}).await;
    let resp = s
        .http
        .post(format!("{}/api/orders", base(&s)))
        .header("connection", "x-secret-hop")
        .header("x-secret-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("proxy-authorization", "Basic cHJveHk6c2VjcmV0")
        .header("te", "trailers")
        .header("upgrade", "websocket")
        .header("x-http-method-override", "DELETE")
        .header("x-http-method", "DELETE")
        .header("x-method-override", "DELETE")
        .header("x-original-url", "/admin")
        .header("x-rewrite-url", "/admin")
        .header("authorization", "Bearer end-to-end")
        .header("x-custom", "kept")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/api/orders"));
    for gone in [
        "x-secret-hop",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "upgrade",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-original-url",
        "x-rewrite-url",
    ] {
        assert!(!seen.headers.contains_key(gone), "{gone} reached the upstream");
    }
    assert_eq!(seen.headers["authorization"], "Bearer end-to-end");
    assert_eq!(seen.headers["x-custom"], "kept");
    assert_eq!(seen.headers["host"], up.addr.to_string().as_str(), "Host is the upstream's");
    assert_eq!(&seen.body[..], b"payload");
    // The request id the caller sees is the one the upstream got.
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert_eq!(seen.headers["x-request-id"], id.as_str());
    // Response side: the upstream's identity and hop-by-hop headers are dropped.
    let h = resp.headers();
    assert_eq!(h["x-upstream"], "yes");
    for gone in ["server", "x-powered-by", "keep-alive", "proxy-authenticate"] {
        assert!(!h.contains_key(gone), "{gone} reached the caller");
    }
    assert_eq!(h["x-content-type-options"], "nosniff");

    // A caller's own request id is passed on, even when Connection names it.
    up.clear();
    let resp = s.http.get(format!("{}/api/x", base(&s))).header("x-request-id", "caller-id-1").header("connection", "x-request-id").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "caller-id-1");
    assert_eq!(up.one().headers["x-request-id"], "caller-id-1");
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_replaced() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("api", "/api/", &["GET"], &up.url())], |_| {}).await;
    let r = raw(
        &s,
        b"GET /api/x HTTP/1.1\r\nhost: api.example:8443\r\nx-forwarded-for: 6.6.6.6\r\nforwarded: for=6.6.6.6\r\n\
          x-forwarded-proto: https\r\nx-forwarded-host: evil.example\r\nx-real-ip: 6.6.6.6\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let h = up.one().headers;
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["forwarded"], "for=127.0.0.1;host=\"api.example:8443\";proto=http");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "api.example:8443");
    assert!(!h.contains_key("x-real-ip"));
    assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_kept_and_extended() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("api", "/api/", &["GET"], &up.url())], |c| {
        c.trusted_proxies = warden::http::client_ip::TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
    })
    .await;
    let r = raw(
        &s,
        b"GET /api/x HTTP/1.1\r\nhost: internal:8000\r\nx-forwarded-for: 203.0.113.9\r\nforwarded: for=203.0.113.9;proto=https\r\n\
          x-forwarded-proto: https\r\nx-forwarded-host: api.example\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let h = up.one().headers;
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["forwarded"], "for=203.0.113.9;proto=https, for=127.0.0.1;host=\"internal:8000\";proto=http");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "api.example");
}

#[tokio::test]
async fn a_one_mib_body_round_trips_intact_and_responses_stream() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("api", "/api/", &["GET", "POST"], &up.url())], |_| {}).await;
    let body: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    let resp = s.http.post(format!("{}/api/upload", base(&s))).body(body.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let echoed = resp.bytes().await.unwrap();
    assert_eq!(echoed.len(), body.len());
    assert!(echoed[..] == body[..], "the echoed body differs");
    assert!(up.one().body[..] == body[..], "the upstream got a different body");

    // The first part of a response reaches the caller while the upstream is still writing.
    let mut resp = s.http.get(format!("{}/api/stream", base(&s))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.expect("first chunk before the end").unwrap().unwrap();
    assert_eq!(&first[..], b"first;");
    up.release();
    let second = resp.chunk().await.unwrap().unwrap();
    assert_eq!(&second[..], b"second");
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_and_a_slow_one_504_without_internals() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let up = Upstream::start().await;
    let mut slow = route("slow", "/slow/", &["GET"], &up.url());
    slow.timeouts.first_byte = Duration::from_millis(300);
    let mut body = route("body", "/body/", &["GET"], &up.url());
    body.timeouts.total = Duration::from_millis(500);
    let s = gateway(vec![route("down", "/down/", &["GET", "POST"], &format!("http://{closed}")), slow, body], |_| {}).await;
    let p = assert_problem(s.http.get(format!("{}/down/x", base(&s))).send().await.unwrap(), 502).await;
    assert_eq!(p["type"], "urn:warden:problem:bad-gateway");
    assert_problem(s.http.post(format!("{}/down/x", base(&s))).body("x").send().await.unwrap(), 502).await;

    up.set_mode(Mode::Slow(Duration::from_secs(2)));
    let started = Instant::now();
    let p = assert_problem(s.http.get(format!("{}/slow/x", base(&s))).send().await.unwrap(), 504).await;
    assert_eq!(p["type"], "urn:warden:problem:gateway-timeout");
    assert!(started.elapsed() < Duration::from_millis(1500), "answered at the first-byte timeout");

    // The total timeout cuts a response body that is still streaming.
    up.set_mode(Mode::Echo);
    let mut resp = s.http.get(format!("{}/body/stream", base(&s))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(&resp.chunk().await.unwrap().unwrap()[..], b"first;");
    let rest = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.expect("cut at the total timeout");
    assert!(rest.is_err(), "the body ends with an error, not silently complete: {rest:?}");

    // An upstream 500 keeps its status; its body is scrubbed (`responses.rs`).
    up.set_mode(Mode::Fail);
    let p = assert_problem(s.http.get(format!("{}/slow/x", base(&s))).send().await.unwrap(), 500).await;
    assert_eq!(p["type"], "urn:warden:problem:upstream-error");
}

/// A listener whose accept queue is full: connection attempts hang (the kernel drops the
/// SYN) until `free` accepts the placeholder connection; after that it serves HTTP.
struct Jammed {
    addr: std::net::SocketAddr,
    listener: Option<tokio::net::TcpListener>,
    _placeholder: tokio::net::TcpStream,
}

impl Jammed {
    async fn new() -> Jammed {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let placeholder = tokio::net::TcpStream::connect(addr).await.unwrap();
        Jammed { addr, listener: Some(listener), _placeholder: placeholder }
    }

    /// Empties the queue and serves one plain 200 per connection from then on.
    fn free_after(&mut self, after: Duration) {
        let listener = self.listener.take().unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = listener.accept().await; // the placeholder
            while let Ok((mut c, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    let _ = c.read(&mut buf).await;
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nserved!").await;
                });
            }
        });
    }
}

/// Only idempotent methods are retried, and only when no connection could be made: the
/// first attempt hangs in a full accept queue until `connect_timeout`, the queue frees up
/// meanwhile, and the retry gets through — for GET. POST gets its 504.
#[tokio::test]
async fn a_failed_connection_is_retried_once_for_get_but_not_for_post() {
    let connect = Duration::from_millis(900);
    let mut get_up = Jammed::new().await;
    let mut post_up = Jammed::new().await;
    let mut get_route = route("get", "/get/", &["GET"], &format!("http://{}", get_up.addr));
    get_route.timeouts.connect = connect;
    let mut post_route = route("post", "/post/", &["POST"], &format!("http://{}", post_up.addr));
    post_route.timeouts.connect = connect;
    let s = gateway(vec![get_route, post_route], |_| {}).await;

    get_up.free_after(Duration::from_millis(400));
    let started = Instant::now();
    let resp = s.http.get(format!("{}/get/x", base(&s))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= connect, "the first attempt timed out and a second one got through ({:?})", started.elapsed());
    assert_eq!(resp.text().await.unwrap(), "served!");

    post_up.free_after(Duration::from_millis(400));
    let started = Instant::now();
    let p = assert_problem(s.http.post(format!("{}/post/x", base(&s))).body("once").send().await.unwrap(), 504).await;
    assert_eq!(p["type"], "urn:warden:problem:gateway-timeout");
    assert!(started.elapsed() < connect * 2, "no second attempt ({:?})", started.elapsed());
}

#[tokio::test]
async fn the_upstream_base_path_prefixes_the_normalised_path_and_head_follows_get() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("v1", "/api/", &["GET"], &format!("{}/v1/", up.url()))], |_| {}).await;
    let r = raw(&s, b"GET /api/./orders//7?x=1 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n").await.unwrap();
    assert_eq!(r.status, 200);
    let seen = up.one();
    assert_eq!((seen.path.as_str(), seen.query.as_deref()), ("/v1/api/orders/7", Some("x=1")));
    up.clear();
    let resp = s.http.head(format!("{}/api/x", base(&s))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.one().method, "HEAD");
}

/// HTTP/2 in (cleartext, prior knowledge), HTTP/1.1 to the upstream.
#[tokio::test]
async fn http2_requests_are_proxied_to_an_http1_upstream() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let up = Upstream::start().await;
    let s = gateway(vec![route("api", "/api/", &["POST"], &up.url())], |_| {}).await;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let req = hyper::Request::post(format!("{}/api/h2//x", base(&s))).body(Full::from("over h2")).unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(&resp.into_body().collect().await.unwrap().to_bytes()[..], b"over h2");
    let seen = up.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/api/h2/x"));
    assert_eq!(seen.headers["x-forwarded-host"], s.addr(warden::config::Role::Gateway).to_string().as_str());
    assert_eq!(&seen.body[..], b"over h2");
}

#[tokio::test]
async fn a_route_may_speak_http2_to_its_upstream() {
    let up = Upstream::start().await;
    let mut h2 = route("h2", "/h2/", &["GET", "POST"], &up.url());
    h2.http2 = true;
    let s = gateway(vec![h2, route("h1", "/h1/", &["GET"], &up.url())], |_| {}).await;
    let resp = s.http.post(format!("{}/h2/x", base(&s))).header("connection", "x-hop").header("x-hop", "1").body("via h2").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "via h2");
    let seen = up.one();
    assert_eq!(seen.version, axum::http::Version::HTTP_2);
    assert_eq!((seen.path.as_str(), &seen.body[..]), ("/h2/x", &b"via h2"[..]));
    assert!(!seen.headers.contains_key("x-hop"));
    up.clear();
    assert_eq!(s.http.get(format!("{}/h1/x", base(&s))).send().await.unwrap().status(), 200);
    assert_eq!(up.one().version, axum::http::Version::HTTP_11);
}

/// Routes to the same upstream share one keep-alive pool: sequential requests through two
/// routes travel over one upstream connection.
#[tokio::test]
async fn routes_to_one_upstream_share_a_keep_alive_pool() {
    let up = Upstream::start().await;
    let other = Upstream::start().await;
    let s = gateway(
        vec![route("a", "/a/", &["GET"], &up.url()), route("b", "/b/", &["GET"], &up.url()), route("c", "/c/", &["GET"], &other.url())],
        |_| {},
    )
    .await;
    for path in ["/a/1", "/b/2", "/a/3", "/c/4"] {
        assert_eq!(s.http.get(format!("{}{path}", base(&s))).send().await.unwrap().status(), 200);
    }
    let peers: Vec<_> = up.seen().iter().map(|r| r.peer.expect("recorded")).collect();
    assert_eq!(peers.len(), 3);
    assert!(peers.iter().all(|p| *p == peers[0]), "one connection for both routes: {peers:?}");
    assert_eq!(other.one().path, "/c/4");
}
