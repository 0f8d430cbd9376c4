//! Authorization codes for tests of the token endpoint, ID tokens and userinfo: a user, a
//! `CodeGrant` stored exactly as `Provider::issue_code` stores it, PKCE pairs, DPoP proofs
//! made with the `jsonwebtoken` crate (not Warden's signing code), and the JWKS check of an
//! ID token with `jsonwebtoken`.

use super::TestServer;
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};
use warden::model::{Claims, User};
use warden::oauth::authorize::code::{CODE_LIFETIME_SECS, CodeGrant, code_id};
use warden::store::ArtifactKind;

pub const REDIRECT: &str = "https://app.example/cb";

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn random() -> String {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}

/// A PKCE pair (RFC 7636): a 43-character verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = random();
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    (verifier, challenge)
}

/// A user "ada" with a name, an e-mail address and a phone number.
pub async fn ada(s: &TestServer) -> User {
    let claims = Claims {
        name: Some("Ada Lovelace".into()),
        given_name: Some("Ada".into()),
        email: Some("ada@example.com".into()),
        email_verified: true,
        phone_number: Some("+44 20 7946 0958".into()),
        ..Default::default()
    };
    warden::oauth::users::create(&s.store, "ada", claims, None).await.unwrap()
}

/// A confidential web app: `client_secret_basic`, one redirect URI, OIDC scopes plus `api`.
pub async fn web_client(s: &TestServer, extra: Value) -> (String, String) {
    let mut spec = json!({
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code"],
        "scope": "openid profile email phone address api",
        "client_name": "web app",
    });
    if let (Some(o), Value::Object(e)) = (spec.as_object_mut(), extra) {
        o.extend(e);
    }
    s.client(spec).await
}

/// A public client (`token_endpoint_auth_method = none`).
pub async fn public_client(s: &TestServer) -> String {
    web_client(s, json!({"token_endpoint_auth_method": "none"})).await.0
}

/// A grant as the authorization endpoint would make it: `scope` granted by `user` to
/// `client_id`, redirect URI named in the request, nonce "n-0S6_WzA2Mj", password sign-in.
pub fn grant(client_id: &str, user: &User, scope: &str, challenge: &str) -> CodeGrant {
    CodeGrant {
        client_id: client_id.to_owned(),
        redirect_uri: REDIRECT.to_owned(),
        redirect_uri_sent: true,
        code_challenge: challenge.to_owned(),
        scope: scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        resource: vec![],
        nonce: Some("n-0S6_WzA2Mj".into()),
        claims: None,
        sub: user.id.0.clone(),
        auth_time: now() - 5,
        sid: random(),
        amr: vec!["pwd".into()],
        acr: Some("1".into()),
        dpop_jkt: None,
        grant_id: random(),
        issued_at: now(),
    }
}

/// Stores `grant` under a new code exactly as `Provider::issue_code` does; returns the code.
/// Every code starts a grant of its own (a new `grant_id`), as at the authorization endpoint.
pub async fn store_code(s: &TestServer, grant: &CodeGrant) -> String {
    store_code_expiring(s, grant, now() + CODE_LIFETIME_SECS).await
}

/// [`store_code`] with a chosen expiry.
pub async fn store_code_expiring(s: &TestServer, grant: &CodeGrant, expires_at: i64) -> String {
    let code = random();
    let grant = CodeGrant { grant_id: random(), ..grant.clone() };
    let payload = serde_json::to_vec(&grant).unwrap();
    s.store
        .artifacts
        .put(ArtifactKind::AuthorizationCode, &code_id(&code), &payload, expires_at, Some(&grant.grant_id))
        .await
        .unwrap();
    code
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// HTTP Basic with id and secret.
    Basic(&'a str, &'a str),
    /// A public client: `client_id` in the body.
    Public(&'a str),
}

/// `POST /token` with `grant_type=authorization_code`, the code, the redirect URI and the
/// verifier (each left out when `None`), plus `extra` parameters and headers.
pub async fn redeem(
    s: &TestServer,
    auth: Auth<'_>,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    extra: &[(&str, &str)],
    dpop: Option<&str>,
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "authorization_code"), ("code", code)];
    if let Some(r) = redirect_uri {
        form.push(("redirect_uri", r));
    }
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    post_token(s, auth, form, extra, dpop).await
}

/// `POST /token` with `form` and `extra` parameters, the client authenticated as `auth`
/// (HTTP Basic, or `client_id` in the form for a public client), and a DPoP proof.
pub async fn post_token<'a>(s: &TestServer, auth: Auth<'a>, mut form: Vec<(&'a str, &'a str)>, extra: &[(&'a str, &'a str)], dpop: Option<&str>) -> reqwest::Response {
    if let Auth::Public(id) = auth {
        form.push(("client_id", id));
    }
    form.extend_from_slice(extra);
    let mut req = s.http.post(s.url("/token")).form(&form);
    if let Auth::Basic(id, secret) = auth {
        req = req.basic_auth(id, Some(secret));
    }
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

/// A code for `scope` redeemed by a confidential client: (token response body, user, grant).
pub async fn tokens_for(s: &TestServer, id: &str, secret: &str, scope: &str, edit: impl FnOnce(&mut CodeGrant)) -> (Value, CodeGrant) {
    let user = match s.store.catalog.user_by_username("ada").await.unwrap() {
        Some(u) => u,
        None => ada(s).await,
    };
    let (verifier, challenge) = pkce();
    let mut g = grant(id, &user, scope, &challenge);
    edit(&mut g);
    let code = store_code(s, &g).await;
    let resp = redeem(s, Auth::Basic(id, secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_eq!(resp.status(), 200, "code redemption");
    (resp.json().await.unwrap(), g)
}

/// A client's DPoP key (ES256), with proofs made by `jsonwebtoken`.
pub struct DpopKey {
    key: EncodingKey,
    jwk: Jwk,
}

impl DpopKey {
    pub fn new() -> DpopKey {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        DpopKey { key, jwk }
    }

    pub fn thumbprint(&self) -> String {
        self.jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
    }

    pub fn proof_with(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    /// A fresh proof for `method url`, with `ath` for `access_token` when given.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        let mut claims = json!({"jti": random(), "htm": method, "htu": url, "iat": now()});
        if let Some(t) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, t.as_bytes())).into();
        }
        self.proof_with(claims)
    }
}

/// Verifies an ID token with `jsonwebtoken` against the server's published JWKS: the key its
/// `kid` names, the algorithm that key is published for, issuer, audience and expiry.
/// Returns (header alg, claims).
pub async fn verify_id_token(s: &TestServer, id_token: &str, client_id: &str) -> (Algorithm, Value) {
    let jwks: JwkSet = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.clone().expect("an ID token names its key");
    let jwk = jwks.find(&kid).expect("the ID token's key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[&s.issuer]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat"]);
    v.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(id_token, &key, &v).unwrap();
    (header.alg, data.claims)
}

/// OIDC Core §3.1.3.6 `at_hash`, computed here: the left half of the SHA-256 (SHA-512 for
/// EdDSA) of the access token, base64url.
pub fn expected_at_hash(alg: Algorithm, access_token: &str) -> String {
    let d = match alg {
        Algorithm::EdDSA => digest::digest(&digest::SHA512, access_token.as_bytes()),
        _ => digest::digest(&digest::SHA256, access_token.as_bytes()),
    };
    let b = d.as_ref();
    URL_SAFE_NO_PAD.encode(&b[..b.len() / 2])
}
