//! RFC 7523 §2.2 / OIDC Core §9 `private_key_jwt` client authentication. Assertions are signed
//! with jsonwebtoken's own signer, not Warden's.

use crate::support::{TestServer, assert_oauth_error};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

struct ClientKey {
    encoding: EncodingKey,
    jwk: Value,
}

fn client_key(kid: &str) -> ClientKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid,
                     "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
    let der = pair.to_pkcs8v1().unwrap();
    ClientKey { encoding: EncodingKey::from_ec_der(der.as_ref()), jwk }
}

fn now() -> i64 {
    warden::model::unix_now()
}

fn assertion(key: &ClientKey, kid: Option<&str>, claims: Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, &claims, &key.encoding).unwrap()
}

async fn token_with(s: &TestServer, assertion: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion),
    ];
    s.post_form("/token", None, &form).await
}

#[tokio::test]
async fn signed_assertions_authenticate_once_each() {
    let s = TestServer::start().await;
    let key = client_key("k1");
    let (id, _) = s
        .client(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                       "jwks": {"keys": [key.jwk]}, "scope": "read"}))
        .await;
    let good = |jti: &str| json!({"iss": id, "sub": id, "aud": s.issuer, "exp": now() + 60, "iat": now(), "jti": jti});

    let a = assertion(&key, Some("k1"), good("one"));
    assert_eq!(token_with(&s, &a).await.status(), 200);
    assert_oauth_error(token_with(&s, &a).await, 401, "invalid_client").await; // replay

    // A single-key client may omit kid.
    assert_eq!(token_with(&s, &assertion(&key, None, good("two"))).await.status(), 200);
}

/// draft-ietf-oauth-rfc7523bis (after the OpenID Foundation's January 2025 disclosure): the
/// audience is the issuer identifier as a single string. The token endpoint URL, or an array,
/// works only while `provider.assertion_audience_transition` is on.
#[tokio::test]
async fn the_assertion_audience_is_the_issuer_as_a_single_string() {
    for transition in [false, true] {
        let s = TestServer::start_with(|c| c.oauth.assertion_audience_transition = transition).await;
        let key = client_key("k1");
        let (id, _) = s
            .client(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                           "jwks": {"keys": [key.jwk]}}))
            .await;
        let with_aud = |aud: Value, jti: &str| {
            assertion(&key, Some("k1"), json!({"iss": id, "sub": id, "aud": aud, "exp": now() + 60, "jti": jti}))
        };
        let issuer = s.issuer.clone();
        let token_endpoint = s.url("/token");
        assert_eq!(token_with(&s, &with_aud(issuer.clone().into(), "a")).await.status(), 200, "issuer, transition {transition}");
        let legacy = [
            (json!(token_endpoint), "token endpoint URL"),
            (json!([issuer]), "array with the issuer"),
            (json!([token_endpoint, "https://elsewhere.example"]), "array with the token endpoint"),
        ];
        for (i, (aud, what)) in legacy.into_iter().enumerate() {
            let resp = token_with(&s, &with_aud(aud, &format!("l{i}"))).await;
            if transition {
                assert_eq!(resp.status(), 200, "{what} accepted during the transition");
            } else {
                assert_oauth_error(resp, 401, "invalid_client").await;
            }
        }
        for (i, aud) in [json!("https://elsewhere.example"), json!(["https://elsewhere.example"]), json!(format!("{issuer}/"))].into_iter().enumerate() {
            assert_oauth_error(token_with(&s, &with_aud(aud, &format!("x{i}"))).await, 401, "invalid_client").await;
        }
    }
}

#[tokio::test]
async fn bad_assertions_are_invalid_client() {
    let s = TestServer::start().await;
    let key = client_key("k1");
    let stranger = client_key("k1");
    let (id, _) = s
        .client(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                       "jwks": {"keys": [key.jwk]}}))
        .await;
    let base = json!({"iss": id, "sub": id, "aud": s.issuer, "exp": now() + 60, "iat": now()});
    let with = |k: &str, v: Value, jti: &str| {
        let mut c = base.clone();
        c["jti"] = jti.into();
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v;
        }
        c
    };
    let cases = [
        ("wrong audience", assertion(&key, Some("k1"), with("aud", "https://elsewhere.example/token".into(), "a"))),
        ("expired", assertion(&key, Some("k1"), with("exp", (now() - 3600).into(), "b"))),
        ("exp too far ahead", assertion(&key, Some("k1"), with("exp", (now() + 3 * 3600).into(), "c"))),
        ("iss differs from sub", assertion(&key, Some("k1"), with("iss", "someone".into(), "d"))),
        ("no jti", assertion(&key, Some("k1"), with("jti", Value::Null, "e"))),
        ("signed by another key", assertion(&stranger, Some("k1"), with("aud", s.issuer.clone().into(), "f"))),
        ("unknown kid", assertion(&key, Some("k2"), with("aud", s.issuer.clone().into(), "g"))),
    ];
    for (what, a) in cases {
        let resp = token_with(&s, &a).await;
        assert_eq!(resp.status(), 401, "{what}");
        assert_oauth_error(resp, 401, "invalid_client").await;
    }
    // HS256 "signed" with the public key bytes as the secret: the header cannot pick HMAC.
    let hs = jsonwebtoken::encode(
        &Header { kid: Some("k1".into()), ..Header::new(Algorithm::HS256) },
        &with("jti", "h".into(), "h"),
        &EncodingKey::from_secret(key.jwk.to_string().as_bytes()),
    )
    .unwrap();
    assert_oauth_error(token_with(&s, &hs).await, 401, "invalid_client").await;
}

#[tokio::test]
async fn assertion_parameters_must_be_complete_and_of_the_right_type() {
    let s = TestServer::start().await;
    let resp = s.post_form("/token", None, &[("grant_type", "client_credentials"), ("client_assertion", "x.y.z")]).await;
    assert_oauth_error(resp, 400, "invalid_request").await;
    let form = [("grant_type", "client_credentials"), ("client_assertion_type", "urn:other"), ("client_assertion", "x.y.z")];
    assert_oauth_error(s.post_form("/token", None, &form).await, 400, "invalid_request").await;
    let form = [("grant_type", "client_credentials"), ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ("client_assertion", "garbage")];
    assert_oauth_error(s.post_form("/token", None, &form).await, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_secret_client_cannot_authenticate_with_an_assertion() {
    let s = TestServer::start().await;
    let key = client_key("k1");
    // Registered for client_secret_basic, though it also lists keys.
    let (id, _) = s.client(json!({"grant_types": ["client_credentials"], "jwks": {"keys": [key.jwk]}})).await;
    let a = assertion(&key, Some("k1"), json!({"iss": id, "sub": id, "aud": s.issuer, "exp": now() + 60, "jti": "x"}));
    assert_oauth_error(token_with(&s, &a).await, 401, "invalid_client").await;
}

/// RFC 7517 §5: keys the server does not use (here an encryption key) are ignored, and a
/// single registered signing key without `kid` matches an assertion whose header has one, as
/// many client libraries send.
#[tokio::test]
async fn a_kidless_signing_key_beside_an_encryption_key_authenticates() {
    let s = TestServer::start().await;
    let key = client_key("unused");
    let mut signing = key.jwk.clone();
    signing.as_object_mut().unwrap().remove("kid");
    let mut encryption = client_key("enc").jwk;
    encryption["use"] = "enc".into();
    let (id, _) = s
        .client(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                       "jwks": {"keys": [encryption, signing]}}))
        .await;
    let claims = json!({"iss": id, "sub": id, "aud": s.issuer, "exp": now() + 60, "jti": "kidless"});
    let a = assertion(&key, Some("chosen-by-the-library"), claims);
    assert_eq!(token_with(&s, &a).await.status(), 200);
}

/// The clock skew applies to assertions (a client whose clock is a little behind still
/// authenticates), and an assertion accepted inside the skew cannot be replayed inside it:
/// its `jti` is kept until the last second it could verify.
#[tokio::test]
async fn the_clock_skew_applies_and_a_replay_within_it_is_refused() {
    let s = TestServer::start_with(|c| c.oauth.clock_skew = std::time::Duration::from_secs(60)).await;
    let key = client_key("k1");
    let (id, _) = s
        .client(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                       "jwks": {"keys": [key.jwk]}}))
        .await;
    let exp = now() - 30;
    let expired_within_skew = assertion(&key, Some("k1"), json!({"iss": id, "sub": id, "aud": s.issuer, "exp": exp, "jti": "late"}));
    assert_eq!(token_with(&s, &expired_within_skew).await.status(), 200, "30 s past exp, 60 s of skew");
    assert_oauth_error(token_with(&s, &expired_within_skew).await, 401, "invalid_client").await;
    let beyond = assertion(&key, Some("k1"), json!({"iss": id, "sub": id, "aud": s.issuer, "exp": now() - 90, "jti": "too-late"}));
    assert_oauth_error(token_with(&s, &beyond).await, 401, "invalid_client").await;
    // The replay record outlives the assertion's last accepting second (exp + skew).
    let record = format!("{id}:late");
    let jtis = warden::store::ArtifactKind::AssertionJti;
    assert!(s.holds(jtis, &record, exp + 60).await, "alive in the last second the assertion verifies");
    assert!(!s.holds(jtis, &record, exp + 61).await, "and not forever");
}

/// `exp` may lie at most `assertion_max_lifetime` + clock skew ahead, that bound included.
#[tokio::test]
async fn an_assertion_may_live_up_to_the_maximum_plus_the_skew() {
    let s = TestServer::start_with(|c| {
        c.oauth.clock_skew = std::time::Duration::from_secs(60);
        c.oauth.assertion_max_lifetime = std::time::Duration::from_secs(300);
    })
    .await;
    let key = client_key("k1");
    let (id, _) = s
        .client(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                       "jwks": {"keys": [key.jwk]}}))
        .await;
    let with_exp = |exp: i64, jti: &str| assertion(&key, Some("k1"), json!({"iss": id, "sub": id, "aud": s.issuer, "exp": exp, "jti": jti}));
    assert_eq!(token_with(&s, &with_exp(now() + 330, "inside-the-skew")).await.status(), 200, "max + half the skew");
    assert_eq!(token_with(&s, &with_exp(now() + 360, "on-the-bound")).await.status(), 200, "exactly max + skew");
    assert_oauth_error(token_with(&s, &with_exp(now() + 370, "beyond")).await, 401, "invalid_client").await;
}
