//! Issue #7 item 3 (app attestation) and item 12 (the Snapchat case): a route that needs,
//! besides a good access token, a short-lived single-use attestation from a trusted
//! attestation service bound to the calling client. Every refusal is checked to be a
//! problem+json with `no-store` that left the upstream untouched.

use super::auth::{b64, both, fresh_key, jws, now, refused, unique, warden_route};
use super::upstream::Upstream;
use super::base;
use crate::support::TestServer;
use serde_json::{Value, json};
use std::time::Duration;
use warden::config::{Config, Overrides, Role};
use warden::gateway::{AttestationConfig, RouteConfig};
use warden::jose::{Alg, SigningKey};

const ATTESTER: &str = "https://attest.example";
const HEADER: &str = "x-app-attestation";

fn attestation(jwks: Value, edit: impl FnOnce(&mut AttestationConfig)) -> AttestationConfig {
    let mut c = AttestationConfig {
        header: HEADER.into(),
        jwks,
        algorithms: vec![Alg::ES256, Alg::EdDSA],
        issuer: ATTESTER.into(),
        audience: "orders-api".into(),
        max_age: Duration::from_secs(300),
        client_claim: "sub".into(),
        bind_token: false,
        clock_skew: Duration::from_secs(5),
    };
    edit(&mut c);
    c
}

/// An attestation for `app`, signed by `key`, with these claims changed.
fn attest(key: &SigningKey, app: &str, extra: Value) -> String {
    let t = now();
    let mut c = json!({"iss": ATTESTER, "aud": "orders-api", "sub": app, "iat": t, "exp": t + 300, "jti": unique()});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    jws(&json!({"alg": key.alg.as_str(), "kid": key.kid.as_str(), "typ": "JWT"}), &c, Some(key))
}

struct Setup {
    up: Upstream,
    s: TestServer,
    key: SigningKey,
    client: String,
    token: String,
}

async fn setup(edit: impl FnOnce(&mut AttestationConfig)) -> Setup {
    let up = Upstream::start().await;
    let (key, jwk) = fresh_key(Alg::EdDSA, "att-1");
    let (_, other) = fresh_key(Alg::ES256, "att-2");
    let att = attestation(json!({"keys": [jwk, other]}), edit);
    let route = RouteConfig { attestation: Some(att), ..warden_route("orders", "/orders/", &up.url()) };
    let s = both(vec![route], |_| {}).await;
    let (client, secret) = s.cc_client().await;
    let token = s.token(&client, &secret, &[]).await;
    Setup { up, s, key, client, token }
}

async fn call(s: &TestServer, token: &str, attestations: &[&str]) -> reqwest::Response {
    let mut req = s.http.get(format!("{}/orders/1", base(s))).bearer_auth(token);
    for a in attestations {
        req = req.header(HEADER, *a);
    }
    req.send().await.unwrap()
}

/// Asserts a 401 `attestation-required` with the challenge naming the header; returns the
/// detail.
async fn required(resp: reqwest::Response) -> String {
    let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(challenge.as_deref(), Some("Attestation header=\"x-app-attestation\""));
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let v = super::assert_problem(resp, 401).await;
    assert_eq!(v["type"], "urn:warden:problem:attestation-required");
    v["detail"].as_str().unwrap().to_owned()
}

/// The genuine app: a good token and a fresh attestation for its own client id pass; the
/// attestation (a credential) is not passed to the upstream.
#[tokio::test]
async fn an_attestation_for_the_calling_client_passes_and_stays_at_the_gateway() {
    let Setup { up, s, key, client, token } = setup(|_| {}).await;
    let resp = call(&s, &token, &[&attest(&key, &client, json!({}))]).await;
    assert_eq!(resp.status(), 200);
    let seen = up.one();
    assert_eq!(seen.headers["x-warden-client-id"], client.as_str());
    assert!(seen.headers.get(HEADER).is_none(), "the attestation stays at the gateway");
}

/// WHAT is calling: the token alone (the stolen-key replay), two attestations, one signed by
/// a key the attestation service does not hold, one naming another key or algorithm, from
/// another issuer, for another audience, expired, too old, issued in the future, or without
/// `jti`: 401, never the upstream.
#[tokio::test]
async fn missing_forged_stale_or_malformed_attestations_are_401() {
    let Setup { up, s, key, client, token } = setup(|_| {}).await;
    let detail = required(call(&s, &token, &[]).await).await;
    assert!(detail.contains("exactly one app attestation in the x-app-attestation header"), "{detail}");
    let a = attest(&key, &client, json!({}));
    required(call(&s, &token, &[&a, &a]).await).await;

    let (forger, _) = fresh_key(Alg::EdDSA, "att-1");
    assert!(required(call(&s, &token, &[&attest(&forger, &client, json!({}))]).await).await.contains("not signed by a trusted attestation key"));
    // `alg: none`, and HS256 with the public key as the secret: never.
    let t = now();
    let claims = json!({"iss": ATTESTER, "aud": "orders-api", "sub": client, "iat": t, "exp": t + 60, "jti": unique()});
    required(call(&s, &token, &[&jws(&json!({"alg": "none", "kid": "att-1"}), &claims, None)]).await).await;
    let hs = format!("{}.{}.{}", b64(json!({"alg": "HS256", "kid": "att-1"}).to_string()), b64(claims.to_string()), b64([0u8; 32]));
    required(call(&s, &token, &[&hs]).await).await;
    // A key embedded in the attestation is not trusted.
    let (rogue, rogue_jwk) = fresh_key(Alg::ES256, "rogue");
    let embedded = jws(&json!({"alg": "ES256", "jwk": rogue_jwk}), &claims, Some(&rogue));
    required(call(&s, &token, &[&embedded]).await).await;

    for (extra, says) in [
        (json!({"iss": "https://evil.example"}), "not from the trusted attestation service"),
        (json!({"aud": "another-api"}), "not meant for this API"),
        (json!({"exp": now() - 60}), "expired"),
        (json!({"iat": now() - 400}), "too old"),
        (json!({"iat": now() + 120}), "in the future"),
        (json!({"jti": null}), "lacks a required claim"),
        (json!({"sub": null}), "lacks a required claim"),
        (json!({"iat": null}), "lacks a required claim"),
    ] {
        let detail = required(call(&s, &token, &[&attest(&key, &client, extra.clone())]).await).await;
        assert!(detail.contains(says), "{extra}: {detail}");
    }
    assert!(up.seen().is_empty(), "no refusal reached the upstream");
}

/// An attestation is minted for one request: replayed within its lifetime, it is refused.
#[tokio::test]
async fn a_replayed_attestation_is_refused() {
    let Setup { up, s, key, client, token } = setup(|_| {}).await;
    let a = attest(&key, &client, json!({}));
    assert_eq!(call(&s, &token, &[&a]).await.status(), 200);
    let detail = required(call(&s, &token, &[&a]).await).await;
    assert!(detail.contains("used before"), "{detail}");
    assert_eq!(call(&s, &token, &[&attest(&key, &client, json!({}))]).await.status(), 200, "a fresh one passes");
    assert_eq!(up.seen().len(), 2);
}

/// The binding: an attestation the service gave another app (the attacker's own genuine
/// app, say) does not let a caller authenticated as this client through; with `bind_token`,
/// its `ath` must be the hash of the access token sent with it.
#[tokio::test]
async fn an_attestation_for_another_client_or_token_is_403() {
    let Setup { up, s, key, client, token } = setup(|c| c.bind_token = true).await;
    let ath = |t: &str| b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes()));
    let mismatch = |resp: reqwest::Response| async move {
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let v = super::assert_problem(resp, 403).await;
        assert_eq!(v["type"], "urn:warden:problem:attestation-mismatch");
        v["detail"].as_str().unwrap().to_owned()
    };
    let detail = mismatch(call(&s, &token, &[&attest(&key, "someone-else", json!({"ath": ath(&token)}))]).await).await;
    assert!(detail.contains("another app"), "{detail}");
    let detail = mismatch(call(&s, &token, &[&attest(&key, &client, json!({"ath": ath("another-token")}))]).await).await;
    assert!(detail.contains("another access token"), "{detail}");
    mismatch(call(&s, &token, &[&attest(&key, &client, json!({}))]).await).await;
    assert!(up.seen().is_empty());
    assert_eq!(call(&s, &token, &[&attest(&key, &client, json!({"ath": ath(&token)}))]).await.status(), 200);
    assert_eq!(up.seen().len(), 1);
}

/// `[gateway.routes.attestation]` from TOML: the defaults, and each bad setting named by
/// its key (what `warden config check` prints).
#[test]
fn attestation_settings_resolve_and_errors_name_their_key() {
    let (_, jwk) = fresh_key(Alg::EdDSA, "att-1");
    let jwks = json!({"keys": [jwk]}).to_string().replace('\'', "");
    let text = format!(
        "version = 1\n[[gateway.routes]]\nid = \"o\"\npath = \"/o/\"\nmethods = [\"GET\"]\nupstream = \"http://127.0.0.1:9\"\nauth = [\"warden\"]\n\
         [gateway.routes.attestation]\nissuer = \"{ATTESTER}\"\naudience = \"orders-api\"\njwks = '{jwks}'\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let load = |t: &str| {
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, t).unwrap();
        Config::load(Some(&path), [], &Overrides::default())
    };
    let c = load(&text).unwrap();
    let a = c.gateway.routes[0].attestation.as_ref().unwrap();
    assert_eq!((a.header.as_str(), a.max_age, a.client_claim.as_str(), a.bind_token), ("x-app-attestation", Duration::from_secs(300), "sub", false));
    assert_eq!(a.algorithms, [Alg::ES256, Alg::EdDSA]);
    for (bad, key) in [
        (text.replace("auth = [\"warden\"]", "auth = [\"anonymous\"]"), "gateway.routes[0].attestation"),
        (text.replace("issuer = ", "header = \"authorization\"\nissuer = "), "gateway.routes[0].attestation.header"),
        (text.replace(&format!("issuer = \"{ATTESTER}\"\n"), ""), "gateway.routes[0].attestation.issuer"),
        (text.replace("jwks = '", "jwks = 'x"), "gateway.routes[0].attestation.jwks"),
        (text.replace("jwks = '", "jwks_file = \"/nonexistent.json\"\njwks = '"), "gateway.routes[0].attestation.jwks_file"),
        (text.replace("issuer = ", "max_age = \"2h\"\nissuer = "), "gateway.routes[0].attestation.max_age"),
        (text.replace("issuer = ", "bogus = 1\nissuer = "), "gateway.routes[0].attestation.bogus"),
    ] {
        let errors = load(&bad).unwrap_err();
        assert!(errors.iter().any(|e| e.key == key), "{key}: {errors:?}");
    }
}

/// `examples/stolen-api-key-replay/`: the example's own `warden.toml`, as `run.sh` uses
/// it. The official app's credentials, pulled out of its binary and replayed by an
/// unofficial client, no longer suffice: without an attestation (401), with one forged
/// (401) or one captured from the official app and replayed (401), or with an attestation
/// the service gave the thief's own app (403). The official app with a fresh attestation
/// passes.
#[tokio::test]
async fn the_stolen_api_key_replay_example_blocks_the_unofficial_client() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/stolen-api-key-replay");
    let text = std::fs::read_to_string(dir.join("warden.toml")).unwrap();
    let example = Config::load(Some(&dir.join("warden.toml")), [], &Overrides::default()).expect("the example's warden.toml is valid");
    let route = example.gateway.routes.iter().find(|r| r.id == "orders").expect("the example's orders route").clone();
    let att = route.attestation.clone().expect("the route needs an attestation");
    assert!(text.contains("[gateway.routes.attestation]"));

    let up = Upstream::start().await;
    let upstream = warden::gateway::Upstream::parse(&up.url()).unwrap();
    let s = TestServer::start_with(move |c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.routes = vec![RouteConfig { upstream, ..route }];
        c.oauth.default_audience = example.oauth.default_audience.clone();
    })
    .await;
    // The attestation service's demo key, shipped with the example for run.sh.
    let pem = std::fs::read_to_string(dir.join("attestation-service.key.pem")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD.decode(der).unwrap();
    let kid = att.jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let service = SigningKey::from_pkcs8(warden::model::Kid(kid), Alg::EdDSA, &der).unwrap();
    let attest_for = |app: &str| {
        let t = now();
        let c = json!({"iss": att.issuer, "aud": att.audience, "sub": app, "iat": t, "exp": t + 60, "jti": unique()});
        jws(&json!({"alg": "EdDSA", "kid": service.kid.as_str(), "typ": "JWT"}), &c, Some(&service))
    };
    let (official, secret) = s.client(json!({"grant_types": ["client_credentials"], "scope": "orders:read", "client_name": "shop-app"})).await;
    let (thief_app, _) = s.client(json!({"grant_types": ["client_credentials"], "client_name": "thief-app"})).await;
    let call = |token: String, a: Option<String>| {
        let mut req = s.http.get(format!("{}/orders/42", base(&s))).bearer_auth(token);
        if let Some(a) = a {
            req = req.header(att.header.as_str(), a);
        }
        req
    };
    // The unofficial client holds the official app's id and secret: it gets a token…
    let stolen = s.token(&official, &secret, &[]).await;
    // …but the key alone no longer suffices.
    refused(call(stolen.clone(), None).send().await.unwrap(), 401).await;
    let (forger, _) = fresh_key(Alg::EdDSA, &service.kid.0);
    let t = now();
    let forged = jws(
        &json!({"alg": "EdDSA", "kid": service.kid.as_str()}),
        &json!({"iss": att.issuer, "aud": att.audience, "sub": official, "iat": t, "exp": t + 60, "jti": unique()}),
        Some(&forger),
    );
    refused(call(stolen.clone(), Some(forged)).send().await.unwrap(), 401).await;
    refused(call(stolen.clone(), Some(attest_for(&thief_app))).send().await.unwrap(), 403).await;
    assert!(up.seen().is_empty(), "the unofficial client never reached the API");
    // The official app, attested by the service on a genuine device, passes…
    let genuine = attest_for(&official);
    assert_eq!(call(stolen.clone(), Some(genuine.clone())).send().await.unwrap().status(), 200);
    // …and its attestation, captured on the wire and replayed, does not.
    refused(call(stolen, Some(genuine)).send().await.unwrap(), 401).await;
    assert_eq!(up.seen().len(), 1);
}
