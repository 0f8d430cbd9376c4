//! RFC 9449 DPoP at the token endpoint: key-bound access tokens for client credentials.
//!
//! Proofs are made here with the `jsonwebtoken` crate's encoder and its own JWK export and
//! RFC 7638 thumbprint, not with Warden's signing code.

use crate::support::{TestServer, assert_oauth_error, jwt_parts};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// A client's DPoP key.
struct DpopKey {
    key: EncodingKey,
    jwk: Jwk,
}

impl DpopKey {
    fn new() -> DpopKey {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        DpopKey { key, jwk }
    }

    fn thumbprint(&self) -> String {
        self.jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
    }

    /// A proof with these claims (and `typ`/`alg`/`jwk` as RFC 9449 §4.2 wants).
    fn proof_with(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    /// A fresh proof for `POST url`.
    fn proof(&self, url: &str) -> String {
        self.proof_with(json!({"jti": unique(), "htm": "POST", "htu": url, "iat": now()}))
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn unique() -> String {
    use base64::Engine;
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

async fn token_request(s: &TestServer, id: &str, secret: &str, proofs: &[&str]) -> reqwest::Response {
    let mut req = s.http.post(s.url("/token")).basic_auth(id, Some(secret)).form(&[("grant_type", "client_credentials")]);
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    req.send().await.unwrap()
}

/// §5, §6.1: a valid proof gets `token_type: DPoP` and a token carrying the proof key's
/// thumbprint as `cnf.jkt`; introspection reports the binding (§6.2).
#[tokio::test]
async fn a_token_request_with_a_proof_gets_a_key_bound_dpop_token() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let key = DpopKey::new();
    let resp = token_request(&s, &id, &secret, &[&key.proof(&s.url("/token"))]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("dpop-nonce").is_none(), "no nonces unless configured");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let (_, claims) = jwt_parts(token);
    assert_eq!(claims["cnf"], json!({"jkt": key.thumbprint()}));

    let v = s.introspect(&id, &secret, token).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["token_type"], "DPoP");
    assert_eq!(v["cnf"]["jkt"], key.thumbprint());

    // Without a proof the same client still gets an ordinary bearer token.
    let resp = token_request(&s, &id, &secret, &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(jwt_parts(body["access_token"].as_str().unwrap()).1.get("cnf").is_none());
    let v = s.introspect(&id, &secret, body["access_token"].as_str().unwrap()).await;
    assert_eq!(v["token_type"], "Bearer");
}

/// §11.1: a proof is single-use, on every node sharing the store.
#[tokio::test]
async fn a_replayed_proof_is_refused_also_by_another_node() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let key = DpopKey::new();
    let proof = key.proof(&s.url("/token"));
    assert_eq!(token_request(&s, &id, &secret, &[&proof]).await.status(), 200);
    assert_oauth_error(token_request(&s, &id, &secret, &[&proof]).await, 400, "invalid_dpop_proof").await;

    let other = s.another_node(|_| {}).await;
    assert_oauth_error(token_request(&other, &id, &secret, &[&proof]).await, 400, "invalid_dpop_proof").await;
    assert_eq!(token_request(&other, &id, &secret, &[&key.proof(&s.url("/token"))]).await.status(), 200);
}

/// §11.1: the replay record outlives the proof: a proof as old as the checks still accept
/// (`dpop_proof_max_age` + `clock_skew`) is refused when replayed.
#[tokio::test]
async fn a_proof_at_the_edge_of_its_age_is_still_single_use() {
    let s = TestServer::start_with(|c| {
        c.oauth.dpop_proof_max_age = std::time::Duration::from_secs(1);
        c.oauth.clock_skew = std::time::Duration::from_secs(2);
    })
    .await;
    let (id, secret) = s.cc_client().await;
    let key = DpopKey::new();
    // Use and replay within one second of the server's clock, the oldest proof it accepts.
    for attempt in 0.. {
        let start = now();
        let proof = key.proof_with(json!({"jti": unique(), "htm": "POST", "htu": s.url("/token"), "iat": start - 3}));
        let first = token_request(&s, &id, &secret, &[&proof]).await.status();
        let replay = token_request(&s, &id, &secret, &[&proof]).await;
        if now() != start {
            assert!(attempt < 5, "never within one second");
            continue;
        }
        assert_eq!(first, 200, "3 s old: within max_age + skew");
        assert_oauth_error(replay, 400, "invalid_dpop_proof").await;
        break;
    }
}

/// §4.3: each check of a proof, with the reason in the description.
#[tokio::test]
async fn a_proof_failing_any_check_is_refused_with_invalid_dpop_proof() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let key = DpopKey::new();
    let url = s.url("/token");
    let claims = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = json!({"jti": unique(), "htm": "POST", "htu": url, "iat": now()});
        edit(c.as_object_mut().unwrap());
        key.proof_with(c)
    };
    let mut no_typ = Header::new(Algorithm::ES256);
    no_typ.jwk = Some(key.jwk.clone());
    let no_typ = jsonwebtoken::encode(&no_typ, &json!({"jti": unique(), "htm": "POST", "htu": url, "iat": now()}), &key.key).unwrap();
    let mut no_jwk = Header::new(Algorithm::ES256);
    no_jwk.typ = Some("dpop+jwt".into());
    let no_jwk = jsonwebtoken::encode(&no_jwk, &json!({"jti": unique(), "htm": "POST", "htu": url, "iat": now()}), &key.key).unwrap();
    // Signed by one key, naming another.
    let other = DpopKey::new();
    let mut forged = Header::new(Algorithm::ES256);
    forged.typ = Some("dpop+jwt".into());
    forged.jwk = Some(other.jwk.clone());
    let forged = jsonwebtoken::encode(&forged, &json!({"jti": unique(), "htm": "POST", "htu": url, "iat": now()}), &key.key).unwrap();
    // An HMAC "proof": a symmetric key can prove nothing.
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("dpop+jwt".into());
    hs.jwk = Some(key.jwk.clone());
    let hs = jsonwebtoken::encode(&hs, &json!({"jti": unique(), "htm": "POST", "htu": url, "iat": now()}), &EncodingKey::from_secret(b"k")).unwrap();

    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "not-a-jwt".into(), "well-formed"),
        ("typ missing", no_typ, "typ"),
        ("jwk missing", no_jwk, "jwk"),
        ("signed by another key", forged, "signature"),
        ("HS256", hs, "alg"),
        ("wrong method", claims(&|c| { c.insert("htm".into(), json!("GET")); }), "htm"),
        ("another endpoint", claims(&|c| { c.insert("htu".into(), json!(url.replace("/token", "/introspect"))); }), "htu"),
        ("another host", claims(&|c| { c.insert("htu".into(), json!("https://evil.example/token")); }), "htu"),
        ("too old", claims(&|c| { c.insert("iat".into(), json!(now() - 600)); }), "too old"),
        ("from the future", claims(&|c| { c.insert("iat".into(), json!(now() + 600)); }), "future"),
        ("no jti", claims(&|c| { c.remove("jti"); }), "jti"),
    ];
    for (what, proof, why) in cases {
        let resp = token_request(&s, &id, &secret, &[&proof]).await;
        assert_eq!(resp.status(), 400, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{what}");
        assert!(body["error_description"].as_str().unwrap().contains(why), "{what}: {body}");
    }
    // §4.3 step 1: exactly one DPoP header.
    let resp = token_request(&s, &id, &secret, &[&key.proof(&url), &key.proof(&url)]).await;
    assert_oauth_error(resp, 400, "invalid_dpop_proof").await;
    // The query string of htu is ignored (step 9).
    let resp = token_request(&s, &id, &secret, &[&claims(&|c| { c.insert("htu".into(), json!(format!("{url}?x=1"))); })]).await;
    assert_eq!(resp.status(), 200);
}

/// A refused proof does not hide a client-authentication failure: bad credentials are
/// `invalid_client` whatever the proof, so the replay store is not open to strangers.
#[tokio::test]
async fn client_authentication_comes_before_the_proof() {
    let s = TestServer::start().await;
    let (id, _) = s.cc_client().await;
    let key = DpopKey::new();
    let proof = key.proof(&s.url("/token"));
    assert_oauth_error(token_request(&s, &id, "wrong-secret", &[&proof]).await, 401, "invalid_client").await;
    // The proof was not recorded: the real client can still use it.
    let (id2, secret2) = s.cc_client().await;
    assert_eq!(token_request(&s, &id2, &secret2, &[&proof]).await.status(), 200);
}

/// §5.2: a client registered with `dpop_bound_access_tokens` never gets a bearer token.
#[tokio::test]
async fn a_client_registered_for_dpop_must_send_a_proof() {
    let s = TestServer::start().await;
    let (id, secret) = s
        .client(json!({"grant_types": ["client_credentials"], "scope": "read", "dpop_bound_access_tokens": true}))
        .await;
    let resp = token_request(&s, &id, &secret, &[]).await;
    assert_oauth_error(resp, 400, "invalid_dpop_proof").await;
    let resp = token_request(&s, &id, &secret, &[&DpopKey::new().proof(&s.url("/token"))]).await;
    assert_eq!(resp.json::<Value>().await.unwrap()["token_type"], "DPoP");
}

/// §8: with `provider.dpop_nonce`, a proof without the server's nonce gets `use_dpop_nonce`
/// and a `DPoP-Nonce` header; a retry with that nonce succeeds, and so does one on another
/// node (the nonce needs no shared state beyond the master key).
#[tokio::test]
async fn with_nonces_on_the_client_retries_with_the_servers_nonce() {
    let s = TestServer::start_with(|c| c.oauth.dpop_nonce = true).await;
    let (id, secret) = s.cc_client().await;
    let key = DpopKey::new();
    let url = s.url("/token");
    let resp = token_request(&s, &id, &secret, &[&key.proof(&url)]).await;
    let headers = assert_oauth_error(resp, 400, "use_dpop_nonce").await;
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();

    let with_nonce = |nonce: &str| key.proof_with(json!({"jti": unique(), "htm": "POST", "htu": url, "iat": now(), "nonce": nonce}));
    let resp = token_request(&s, &id, &secret, &[&with_nonce(&nonce)]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("dpop-nonce").is_some(), "successful responses carry the current nonce (§8.2)");
    assert_eq!(resp.json::<Value>().await.unwrap()["token_type"], "DPoP");

    let bad = assert_oauth_error(token_request(&s, &id, &secret, &[&with_nonce("made-up")]).await, 400, "use_dpop_nonce").await;
    assert_eq!(bad["dpop-nonce"], nonce.as_str());

    let other = s.another_node(|c| c.oauth.dpop_nonce = true).await;
    assert_eq!(token_request(&other, &id, &secret, &[&with_nonce(&nonce)]).await.status(), 200);
}
