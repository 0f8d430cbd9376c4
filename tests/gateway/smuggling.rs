//! Issue #7 item 1: malformed or ambiguous HTTP/1.1 framing, sent as raw bytes, is refused
//! with 400 / 431 and the connection closed, and no upstream sees it. Most of it hyper's
//! parser refuses by itself; a bad first chunk is caught by the gateway reading the body's
//! first frame before it contacts the upstream.

use super::upstream::Upstream;
use super::{gateway, raw, route};

#[tokio::test]
async fn ambiguous_or_malformed_requests_are_refused_before_any_upstream() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("api", "/api/", &["GET", "POST"], &up.url())], |_| {}).await;
    let smuggled = "GET /api/smuggled HTTP/1.1\r\nhost: a\r\n\r\n";
    let big = "a".repeat(20 * 1024);
    let cases: Vec<(&str, String, u16)> = vec![
        ("two different Content-Lengths", format!("POST /api/x HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ncontent-length: 40\r\n\r\nbody{smuggled}"), 400),
        ("a Content-Length list", format!("POST /api/x HTTP/1.1\r\nhost: a\r\ncontent-length: 4, 40\r\n\r\nbody{smuggled}"), 400),
        ("a signed Content-Length", format!("POST /api/x HTTP/1.1\r\nhost: a\r\ncontent-length: +4\r\n\r\nbody{smuggled}"), 400),
        ("space before the colon", format!("POST /api/x HTTP/1.1\r\nhost: a\r\ncontent-length : 4\r\n\r\nbody{smuggled}"), 400),
        ("a bad chunk size", format!("POST /api/x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nbody\r\n0\r\n\r\n{smuggled}"), 400),
        ("an oversized chunk size", format!("POST /api/x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffffff\r\nbody\r\n0\r\n\r\n{smuggled}"), 400),
        ("a transfer coding other than chunked last", format!("POST /api/x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, gzip\r\n\r\n4\r\nbody\r\n0\r\n\r\n{smuggled}"), 400),
        ("an unknown transfer coding", format!("POST /api/x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: xchunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n{smuggled}"), 400),
        ("Transfer-Encoding in HTTP/1.0", format!("POST /api/x HTTP/1.0\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n{smuggled}"), 400),
        ("obs-fold", format!("GET /api/x HTTP/1.1\r\nhost: a\r\nx-folded: a\r\n b\r\n\r\n{smuggled}"), 400),
        ("a header line without a colon", format!("GET /api/x HTTP/1.1\r\nhost: a\r\nnonsense\r\n\r\n{smuggled}"), 400),
        ("an absolute-form target naming another host than Host", format!("GET http://other.example/api/x HTTP/1.1\r\nhost: a\r\n\r\n{smuggled}"), 400),
        ("oversized headers", format!("GET /api/x HTTP/1.1\r\nhost: a\r\nx-big: {big}\r\n\r\n{smuggled}"), 431),
    ];
    for (what, bytes, status) in cases {
        let r = raw(&s, bytes.as_bytes()).await.unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(r.status, status, "{what}: {r:?}");
        // `raw` read to the end: the connection was closed, so the smuggled request was
        // never read as a second one.
        assert!(up.seen().is_empty(), "{what}: the upstream saw {:#?}", up.seen());
    }
}

/// Content-Length together with Transfer-Encoding: hyper does not refuse it, and drops the
/// Content-Length before the gateway sees the request (RFC 9112 §6.1 lets a server process it
/// as chunked if it closes the connection afterwards). What the gateway can still guarantee:
/// the upstream gets exactly one request, framed by the chunked encoding alone, and the bytes
/// after it are never read as a second request.
#[tokio::test]
async fn content_length_with_transfer_encoding_cannot_smuggle_a_second_request() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("api", "/api/", &["GET", "POST"], &up.url())], |_| {}).await;
    for order in [
        "content-length: 40\r\ntransfer-encoding: chunked\r\n",
        "transfer-encoding: chunked\r\ncontent-length: 40\r\n",
    ] {
        up.clear();
        let req = format!("POST /api/x HTTP/1.1\r\nhost: a\r\n{order}\r\n4\r\nbody\r\n0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nhost: a\r\n\r\n");
        let r = raw(&s, req.as_bytes()).await.expect("an answer");
        assert!(r.status == 200 || r.status == 400, "{r:?}");
        let seen = up.seen();
        assert!(seen.len() <= 1, "{seen:#?}");
        assert!(seen.iter().all(|r| r.path == "/api/x" && &r.body[..] == b"body"), "{seen:#?}");
        assert!(!r.body.contains("smuggled") && r.head.matches("HTTP/1.1").count() == 1, "one response only: {r:?}");
    }
}
