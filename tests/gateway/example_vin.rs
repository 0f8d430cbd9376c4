//! Issue #7 item 12: `examples/vin-enumeration/` (the Nissan Leaf case) as a test. The
//! example's own `warden.toml` is loaded as `warden serve` loads it; only the addresses are
//! moved to free ports (the listener, the car API, the accounts service's JWK Set), and the
//! accounts service is played by this test: its key signs the owners' tokens, like
//! `carmaker.py` does.

use super::base;
use super::upstream::Upstream;
use crate::support::TestServer;
use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use warden::config::{Config, Overrides, Role};
use warden::gateway::Upstream as UpstreamUrl;
use warden::jose::{Alg, SigningKey};
use warden::model::Kid;

const ALICE_CAR: &str = "SJNFAAZE0U6000001";
const BOBS_CAR: &str = "SJNFAAZE0U6000002";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The example's configuration, resolved by the same code as `warden serve --config`.
fn example_config() -> Config {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vin-enumeration/warden.toml");
    Config::load(Some(&file), [], &Overrides::default()).unwrap_or_else(|e| panic!("the example's warden.toml: {e:?}"))
}

/// The accounts service's signing key and its JWK Set, served on a free port.
async fn accounts() -> (SigningKey, String, tokio_util::sync::DropGuard) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let master = warden::secrets::MasterKey::from_bytes(&[7; 32]);
    let rec = warden::jose::generate_key_record(Alg::RS256, &master, now, now).unwrap();
    let pkcs8 = master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
    let key = SigningKey::from_pkcs8(Kid("accounts-1".into()), Alg::RS256, &pkcs8).unwrap();
    let mut jwk = rec.public_jwk;
    jwk["kid"] = "accounts-1".into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let jwks = json!({"keys": [jwk]});
    let app = Router::new().fallback(move || async move { axum::Json(jwks) });
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { s.cancelled().await }).await;
    });
    (key, url, stop.drop_guard())
}

/// An owner's token as the accounts service signs it (`carmaker.py`).
fn owner_token(key: &SigningKey, issuer: &str, sub: &str, vins: &[&str]) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({"iss": issuer, "sub": sub, "aud": "https://cars.example", "iat": now, "exp": now + 300,
        "jti": format!("{sub}-{now}"), "client_id": "carwings-app", "scope": "cars:read", "vins": vins});
    let header = json!({"alg": "RS256", "kid": key.kid.as_str(), "typ": "at+jwt"});
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    format!("{input}.{}", b64(key.sign(input.as_bytes()).unwrap()))
}

/// The owner's car → 200 with the car API's answer; another VIN, a made-up one, or an
/// encoded-slash detour → refused and never reaching the car API; no token → 401 (the
/// original attack: an anonymous caller with any VIN).
#[tokio::test]
async fn the_vin_enumeration_example_serves_the_owners_car_only() {
    let example = example_config();
    assert_eq!(example.roles, [Role::Gateway]);
    let issuer = example.gateway.issuers[0].issuer.clone();
    let car_api = Upstream::start().await;
    let (key, jwks_url, _accounts) = accounts().await;
    let mut gateway = example.gateway;
    gateway.issuers[0].jwks_url = jwks_url;
    gateway.routes[0].upstream = UpstreamUrl::parse(&car_api.url()).unwrap();
    let s = TestServer::start_with(move |c| {
        let listen = c.gateway.listen;
        c.roles = vec![Role::Gateway];
        c.gateway = gateway;
        c.gateway.listen = listen;
    })
    .await;
    let get = |path: &str, token: Option<&str>| {
        let mut req = s.http.get(format!("{}{path}", base(&s)));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };

    // The attack: no token, any VIN.
    for vin in [ALICE_CAR, BOBS_CAR] {
        super::assert_problem(get(&format!("/cars/{vin}"), None).await.unwrap(), 401).await;
    }
    let alice = owner_token(&key, &issuer, "alice", &[ALICE_CAR]);
    let resp = get(&format!("/cars/{ALICE_CAR}"), Some(&alice)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = car_api.one();
    assert_eq!(seen.path, format!("/cars/{ALICE_CAR}"));
    assert_eq!(seen.headers["x-warden-sub"], "alice");
    car_api.clear();

    for (path, status) in [
        (format!("/cars/{BOBS_CAR}"), 403),
        ("/cars/SJNFAAZE0U6999999".to_owned(), 403),
        (format!("/cars/{ALICE_CAR}%2F..%2F{BOBS_CAR}"), 400),
        (format!("/cars/{ALICE_CAR}/../{BOBS_CAR}"), 403),
    ] {
        let body: Value = super::assert_problem(get(&path, Some(&alice)).await.unwrap(), status).await;
        assert_eq!(body["status"], status, "{path}");
    }
    // A token for bob reaches bob's cars, not alice's.
    let bob = owner_token(&key, &issuer, "bob", &[BOBS_CAR]);
    assert_eq!(get(&format!("/cars/{BOBS_CAR}"), Some(&bob)).await.unwrap().status(), 200);
    super::assert_problem(get(&format!("/cars/{ALICE_CAR}"), Some(&bob)).await.unwrap(), 403).await;
    assert_eq!(car_api.one().path, format!("/cars/{BOBS_CAR}"), "no refusal reached the car API");
}
