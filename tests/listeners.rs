//! Issue #5 item 3: every listener is guarded against slow, idle and greedy clients, and reads
//! the client address from PROXY protocol v2 only when the peer is a trusted proxy. Raw TCP,
//! because an HTTP client library would not misbehave on purpose.

use crate::support::TestServer;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden::config::Role;

/// Reads one response: status code, headers and body by `content-length`. `None` when the
/// server closed the connection first.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head.split(' ').nth(1)?.parse().ok()?;
            return Some((status, head));
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether the server has closed the connection (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(tokio::time::timeout(within, stream.read(&mut b)).await, Ok(Ok(0)) | Ok(Err(_)))
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: warden\r\n\r\n")
}

async fn guarded_server(edit: impl FnOnce(&mut warden::config::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.http.header_read_timeout = Duration::from_millis(800);
        c.http.idle_timeout = Duration::from_secs(2);
        c.http.request_timeout = Duration::from_secs(2);
        edit(c);
    })
    .await
}

#[tokio::test]
async fn clients_trickling_header_bytes_are_cut_off_and_others_are_still_served() {
    let s = guarded_server(|_| {}).await;
    let addr = s.addr(Role::Provider);
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /jwks HTTP/1.1\r\nhost: warden\r\nx-slow: ").await.unwrap();
        slow.push(c);
    }
    // Keep every connection busy with one byte per 100 ms — never idle, never finished.
    let trickle = tokio::spawn(async move {
        let mut open = slow;
        let mut closed_at = Vec::new();
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut still = Vec::new();
            for mut c in open {
                if c.write_all(b"a").await.is_ok() && !closed_within(&mut c, Duration::from_millis(1)).await {
                    still.push(c);
                } else {
                    closed_at.push(started.elapsed());
                }
            }
            open = still;
            if open.is_empty() {
                break;
            }
        }
        (open.len(), closed_at)
    });
    // Meanwhile an ordinary client is answered at once.
    for _ in 0..5 {
        let t = Instant::now();
        let resp = s.http.get(s.url("/jwks")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(t.elapsed() < Duration::from_millis(500), "served while the slow clients hang on");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (left, closed_at) = trickle.await.unwrap();
    assert_eq!(left, 0, "every trickling connection was closed");
    for at in closed_at {
        assert!(at < Duration::from_millis(2500), "closed by the header timeout (0.8 s), not the idle timeout: {at:?}");
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_close_after_the_idle_timeout_not_the_header_timeout() {
    let s = guarded_server(|_| {}).await;
    let mut c = TcpStream::connect(s.addr(Role::Provider)).await.unwrap();
    c.write_all(get("/jwks").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut c).await.unwrap().0, 200);
    // Idle longer than the header timeout: still open, the next request is served.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    c.write_all(get("/jwks").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut c).await.unwrap().0, 200, "an idle keep-alive connection outlives the header timeout");
    // Idle past the idle timeout: closed by the server.
    let t = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(4)).await, "closed after the idle timeout");
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(1800) && waited < Duration::from_millis(3500), "after about 2 s: {waited:?}");

    // A connection that never sends anything is closed the same way.
    let mut silent = TcpStream::connect(s.addr(Role::Provider)).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(4)).await);
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_get_503_and_room_frees_up() {
    let s = guarded_server(|c| c.http.max_connections = 5).await;
    let addr = s.addr(Role::Provider);
    let mut held = Vec::new();
    let refused = loop {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(get("/jwks").as_bytes()).await.unwrap();
        let (status, head) = read_response(&mut c).await.expect("an answer, not a silent close");
        if status != 200 {
            break (status, head);
        }
        held.push(c);
        assert!(held.len() <= 5, "the cap holds");
    };
    assert!(held.len() >= 4, "up to the cap connections are served (the harness may hold one)");
    assert_eq!(refused.0, 503);
    let head = refused.1.to_ascii_lowercase();
    assert!(head.contains("retry-after: 1") && head.contains("application/problem+json"), "{head}");
    // Every gateway and admin listener has its own cap.
    let mut other = TcpStream::connect(s.addr(Role::Admin)).await.unwrap();
    other.write_all(get("/healthz").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut other).await.unwrap().0, 200, "per listener");
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = TcpStream::connect(addr).await.unwrap();
    again.write_all(get("/jwks").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut again).await.unwrap().0, 200, "a closed connection frees its place");
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let s = guarded_server(|c| c.http.max_header_size = 8192).await;
    let mut c = TcpStream::connect(s.addr(Role::Provider)).await.unwrap();
    let big = format!("GET /jwks HTTP/1.1\r\nhost: warden\r\nx-big: {}\r\n\r\n", "a".repeat(20_000));
    let _ = c.write_all(big.as_bytes()).await;
    assert_eq!(read_response(&mut c).await.map(|r| r.0), Some(431));
    let mut ok = TcpStream::connect(s.addr(Role::Provider)).await.unwrap();
    ok.write_all(format!("GET /jwks HTTP/1.1\r\nhost: warden\r\nx-ok: {}\r\n\r\n", "a".repeat(4000)).as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut ok).await.unwrap().0, 200);
}

fn proxy_v2_header(source: std::net::SocketAddr, dest: std::net::SocketAddr) -> Vec<u8> {
    use ppp::v2::{Builder, Command, Protocol, Version};
    Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, (source, dest)).build().unwrap()
}

async fn token_attempt(stream: &mut TcpStream) -> u16 {
    let body = "grant_type=client_credentials";
    // "nobody:wrong", base64.
    let req = format!(
        "POST /token HTTP/1.1\r\nhost: warden\r\nauthorization: Basic bm9ib2R5Ondyb25n\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    read_response(stream).await.map_or(0, |r| r.0)
}

#[tokio::test]
async fn proxy_protocol_v2_names_the_client_only_for_trusted_proxies() {
    // The proxy connects from 127.0.0.2; the harness (127.0.0.1) is an ordinary client.
    let s = guarded_server(|c| {
        c.http.proxy_protocol = true;
        c.trusted_proxies = warden::http::client_ip::TrustedProxies::parse(&["127.0.0.2/32".into()]).unwrap();
        c.oauth.auth_failures_per_ip = 2;
    })
    .await;
    let addr = s.addr(Role::Provider);
    let from_proxy = || async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap()
    };
    let attacker: std::net::SocketAddr = "203.0.113.9:5555".parse().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut c = from_proxy().await;
        c.write_all(&proxy_v2_header(attacker, addr)).await.unwrap();
        statuses.push(token_attempt(&mut c).await);
    }
    assert_eq!(statuses, [401, 401, 429], "counted under the address the proxy named");
    let mut c = from_proxy().await;
    c.write_all(&proxy_v2_header("198.51.100.4:1".parse().unwrap(), addr)).await.unwrap();
    assert_eq!(token_attempt(&mut c).await, 401, "another client behind the same proxy is not throttled");

    // From the trusted proxy, a connection without the header is refused without an answer.
    let mut bare = from_proxy().await;
    bare.write_all(get("/jwks").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut bare).await, None);
}

#[tokio::test]
async fn a_proxy_header_from_an_untrusted_peer_is_not_believed() {
    let s = guarded_server(|c| {
        c.http.proxy_protocol = true;
        c.trusted_proxies = warden::http::client_ip::TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
    })
    .await;
    let addr = s.addr(Role::Provider);
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(&proxy_v2_header("203.0.113.9:1".parse().unwrap(), addr)).await.unwrap();
    c.write_all(get("/jwks").as_bytes()).await.unwrap();
    let answer = read_response(&mut c).await;
    assert_eq!(answer.map(|r| r.0), Some(400), "the header is not HTTP, so it is a bad request");
    let resp = s.http.get(s.url("/jwks")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "an untrusted peer speaks plain HTTP");
}
