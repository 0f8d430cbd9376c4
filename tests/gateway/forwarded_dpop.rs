//! Issue #7 item 3: DPoP behind a TLS proxy. A proof's `htu` names the URL the client used
//! (`https://api.example.com/...`), which differs from what the gateway sees behind the
//! proxy (`http://10.0.0.2:8000/...`). The gateway compares it with the configured
//! `public_url`, or with the proto and host a trusted proxy forwarded — never with forwarding
//! headers from anyone else.

use super::auth::{b64, both, fresh_key, jws, now, refused, unique, warden_route};
use super::base;
use super::upstream::Upstream;
use crate::support::TestServer;
use serde_json::{Value, json};
use warden::http::client_ip::TrustedProxies;
use warden::jose::{Alg, SigningKey};

struct Dpop {
    key: SigningKey,
    public: Value,
}

impl Dpop {
    fn new() -> Dpop {
        let (key, jwk) = fresh_key(Alg::ES256, "dpop");
        let mut public = jwk.clone();
        public.as_object_mut().unwrap().retain(|k, _| ["kty", "crv", "x", "y"].contains(&k.as_str()));
        Dpop { key, public }
    }

    fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        let mut c = json!({"jti": unique(), "htm": htm, "htu": htu, "iat": now()});
        if let Some(t) = token {
            c["ath"] = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes())).into();
        }
        jws(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public}), &c, Some(&self.key))
    }

    /// A DPoP-bound token from the provider.
    async fn token(&self, s: &TestServer) -> String {
        let (id, secret) = s.cc_client().await;
        let resp = s
            .http
            .post(s.url("/token"))
            .basic_auth(&id, Some(&secret))
            .header("DPoP", self.proof("POST", &s.url("/token"), None))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

async fn send(s: &TestServer, token: &str, proof: String, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = s.http.get(format!("{}/api/x", base(s))).header("authorization", format!("DPoP {token}")).header("DPoP", proof);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// From a trusted proxy (here the test's own address), the forwarded proto and host make
/// the public URL: a proof for `https://api.example.com/api/x` passes, one for the gateway's
/// own address does not. `Forwarded` counts like `X-Forwarded-*`.
#[tokio::test]
async fn behind_a_trusted_proxy_htu_is_the_forwarded_public_url() {
    let up = Upstream::start().await;
    let s = both(vec![warden_route("api", "/api/", &up.url())], |c| {
        c.trusted_proxies = TrustedProxies::parse(&["127.0.0.1".into(), "::1".into()]).unwrap();
    })
    .await;
    let d = Dpop::new();
    let token = d.token(&s).await;
    let public = "https://api.example.com/api/x";
    let xf = [("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com")];
    assert_eq!(send(&s, &token, d.proof("GET", public, Some(&token)), &xf).await.status(), 200);
    let own = format!("{}/api/x", base(&s));
    let c = refused(send(&s, &token, d.proof("GET", &own, Some(&token)), &xf).await, 401).await;
    assert!(c.contains("invalid_dpop_proof"), "{c}");
    let fwd = [("forwarded", "for=198.51.100.7;proto=https;host=api.example.com")];
    assert_eq!(send(&s, &token, d.proof("GET", public, Some(&token)), &fwd).await.status(), 200);
    assert_eq!(up.seen().len(), 2);
}

/// From a peer that is not a trusted proxy, forwarding headers are ignored: a proof for the
/// URL they claim is refused, one for the gateway's own URL passes.
#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_do_not_change_htu() {
    let up = Upstream::start().await;
    let s = both(vec![warden_route("api", "/api/", &up.url())], |_| {}).await;
    let d = Dpop::new();
    let token = d.token(&s).await;
    let xf = [("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com")];
    refused(send(&s, &token, d.proof("GET", "https://api.example.com/api/x", Some(&token)), &xf).await, 401).await;
    assert!(up.seen().is_empty());
    let own = format!("{}/api/x", base(&s));
    assert_eq!(send(&s, &token, d.proof("GET", &own, Some(&token)), &xf).await.status(), 200);
}

/// `[gateway] public_url` wins: proofs must name it, whatever the request or a (trusted)
/// proxy says.
#[tokio::test]
async fn a_configured_public_url_is_what_htu_must_name() {
    let up = Upstream::start().await;
    let s = both(vec![warden_route("api", "/api/", &up.url())], |c| {
        c.gateway.public_url = Some("https://public.example".into());
        c.trusted_proxies = TrustedProxies::parse(&["127.0.0.1".into(), "::1".into()]).unwrap();
    })
    .await;
    let d = Dpop::new();
    let token = d.token(&s).await;
    assert_eq!(send(&s, &token, d.proof("GET", "https://public.example/api/x", Some(&token)), &[]).await.status(), 200);
    let own = format!("{}/api/x", base(&s));
    refused(send(&s, &token, d.proof("GET", &own, Some(&token)), &[]).await, 401).await;
    let xf = [("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com")];
    refused(send(&s, &token, d.proof("GET", "https://api.example.com/api/x", Some(&token)), &xf).await, 401).await;
    assert_eq!(up.seen().len(), 1);
}
