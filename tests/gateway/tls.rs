//! Issue #7 item 1: TLS termination with rustls — certificate and key from files, TLS 1.3
//! preferred and 1.2 allowed, reloaded when the files change, `https` in the forwarding
//! headers.

use super::upstream::Upstream;
use super::route;
use crate::support::TestServer;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use warden::config::Role;
use warden::http::tls::TlsFiles;

/// Writes a fresh self-signed pair for 127.0.0.1; returns the certificate (DER).
fn write_pair(dir: &Path) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    made.cert.der().clone()
}

/// A GET over TLS trusting `trust` only, limited to `versions`: status, the certificate the
/// server presented, and the negotiated protocol version.
async fn get_tls(
    s: &TestServer,
    trust: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    path: &str,
) -> (u16, CertificateDer<'static>, rustls::ProtocolVersion) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(s.addr(Role::Gateway)).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("handshake");
    let (_, conn) = tls.get_ref();
    let presented = conn.peer_certificates().unwrap()[0].clone().into_owned();
    let version = conn.protocol_version().unwrap();
    let (mut send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(connection);
    let req = hyper::Request::get(path).header("host", "api.example").body(Empty::<bytes::Bytes>::new()).unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    (status, presented, version)
}

async fn tls_gateway(dir: &Path, upstream: &Upstream) -> TestServer {
    let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    TestServer::start_with(|c| {
        // The provider first: the harness checks readiness over plain HTTP on the first role.
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.tls = Some(files);
        c.gateway.routes = vec![route("api", "/api/", &["GET"], &upstream.url())];
    })
    .await
}

#[tokio::test]
async fn tls_is_terminated_and_the_upstream_learns_the_request_was_https() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pair(dir.path());
    let up = Upstream::start().await;
    let s = tls_gateway(dir.path(), &up).await;
    let (status, presented, version) = get_tls(&s, &cert, &[&rustls::version::TLS13, &rustls::version::TLS12], "/api/x").await;
    assert_eq!((status, version), (200, rustls::ProtocolVersion::TLSv1_3), "TLS 1.3 preferred");
    assert_eq!(presented, cert);
    let h = up.one().headers;
    assert_eq!(h["x-forwarded-proto"], "https");
    assert!(h["forwarded"].to_str().unwrap().ends_with(";proto=https"), "{h:?}");
    // TLS 1.2 is still allowed.
    let (status, _, version) = get_tls(&s, &cert, &[&rustls::version::TLS12], "/api/x").await;
    assert_eq!((status, version), (200, rustls::ProtocolVersion::TLSv1_2));
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = s.http.get(format!("http://{}/api/x", s.addr(Role::Gateway))).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    assert_eq!(up.seen().len(), 2);
}

#[tokio::test]
async fn a_renewed_certificate_is_picked_up_and_a_broken_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_pair(dir.path());
    let up = Upstream::start().await;
    let s = tls_gateway(dir.path(), &up).await;
    assert_eq!(get_tls(&s, &first, &[&rustls::version::TLS13], "/api/x").await.1, first);

    let second = write_pair(dir.path());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The first handshake after the change may still see the old pair (it triggers the
    // reload); the next ones present the new one.
    let mut presented = None;
    for _ in 0..3 {
        let tcp = tokio::net::TcpStream::connect(s.addr(Role::Gateway)).await.unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(second.clone()).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let attempt = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(ServerName::try_from("127.0.0.1").unwrap(), tcp);
        if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), attempt).await {
            presented = Some(tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(presented.as_ref(), Some(&second), "the renewed certificate is served");

    // A half-written renewal does not take the listener down: the last good pair stays.
    std::fs::write(dir.path().join("cert.pem"), "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..2 {
        let (status, presented, _) = get_tls(&s, &second, &[&rustls::version::TLS13], "/api/x").await;
        assert_eq!((status, presented), (200, second.clone()));
    }
}

#[tokio::test]
async fn a_bad_certificate_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let mut cfg = crate::support::test_config(dir.path());
    cfg.roles = vec![Role::Gateway];
    cfg.gateway.tls = Some(TlsFiles { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") });
    let listeners = warden::app::Listeners::bind(&cfg).await.unwrap();
    let core = warden::app::Core::open(&cfg, None).await.unwrap();
    let err = warden::app::run(cfg, core, listeners, tokio_util::sync::CancellationToken::new()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("gateway TLS") && text.contains("cert.pem"), "{text}");
}

#[tokio::test]
async fn https_upstreams_are_checked_against_the_configured_roots() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path());
    let files = TlsFiles { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") };
    let up = Upstream::start_tls(&files).await;
    assert!(up.url().starts_with("https://127.0.0.1:"));
    let mut trusted = route("trusted", "/trusted/", &["GET", "POST"], &up.url());
    trusted.upstream.ca_file = Some(files.cert.clone());
    let mut h2 = route("h2", "/h2/", &["GET"], &up.url());
    h2.upstream.ca_file = Some(files.cert.clone());
    h2.http2 = true;
    // Without a CA file: the system roots, which do not know this self-signed certificate.
    let unknown = route("unknown", "/unknown/", &["POST"], &up.url());
    let s = super::gateway(vec![trusted, h2, unknown], |_| {}).await;
    let resp = s.http.post(format!("{}/trusted/x", super::base(&s))).body("over tls").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "over tls");
    let seen = up.one();
    assert_eq!((seen.path.as_str(), seen.version), ("/trusted/x", axum::http::Version::HTTP_11));
    up.clear();
    assert_eq!(s.http.get(format!("{}/h2/x", super::base(&s))).send().await.unwrap().status(), 200);
    assert_eq!(up.one().version, axum::http::Version::HTTP_2, "h2 by ALPN");
    up.clear();
    let p = super::assert_problem(s.http.post(format!("{}/unknown/x", super::base(&s))).body("x").send().await.unwrap(), 502).await;
    assert_eq!(p["type"], "urn:warden:problem:bad-gateway");
    assert!(up.seen().is_empty(), "an untrusted upstream gets no request");
}

#[tokio::test]
async fn a_bad_upstream_ca_file_stops_the_start_with_its_route() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "nothing here").unwrap();
    let mut r = route("r", "/r/", &["GET"], "https://127.0.0.1:1");
    r.upstream.ca_file = Some(dir.path().join("ca.pem"));
    let errors = warden::gateway::Gateway::new(
        &warden::gateway::Config { listen: "127.0.0.1:0".parse().unwrap(), routes: vec![r], ..Default::default() },
        Arc::default(),
        None,
    )
    .unwrap_err();
    assert_eq!((errors[0].index, errors[0].key), (0, "upstream_ca_file"));
    assert!(errors[0].message.contains("ca.pem"));
}
