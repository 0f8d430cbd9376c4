//! RFC 6749 §6 (+ OIDC Core §11, §12; RFC 9700 §4.14.2; RFC 9449 §5; RFC 7009; RFC 7662;
//! RFC 8707): refresh tokens — who gets one, rotation, reuse detection, binding, lifetimes,
//! revocation and introspection. Codes are made as the authorization endpoint stores them
//! (`support::code_flow`).

use crate::support::code_flow::{
    post_token,
    Auth, DpopKey, REDIRECT, ada, expected_at_hash, grant, now, pkce, redeem, store_code, tokens_for, verify_id_token, web_client,
};
use crate::support::{LogCapture, PgSchema, TestServer, assert_oauth_error, jwt_parts, provider_nodes_over_postgres};
use serde_json::{Value, json};
use std::time::Duration;
use warden::oauth::authorize::code::CodeGrant;

/// The scopes of the clients below.
const SCOPE: &str = "openid profile email offline_access api";

/// A confidential client registered for the code and refresh grants.
async fn refresh_client(s: &TestServer) -> (String, String) {
    web_client(s, json!({"grant_types": ["authorization_code", "refresh_token"], "scope": SCOPE})).await
}

/// A public client (`none`) registered for the code and refresh grants.
async fn public_refresh_client(s: &TestServer) -> String {
    web_client(s, json!({"grant_types": ["authorization_code", "refresh_token"], "scope": SCOPE, "token_endpoint_auth_method": "none"}))
        .await
        .0
}

/// `POST /token` with `grant_type=refresh_token`.
async fn refresh<'a>(s: &TestServer, auth: Auth<'a>, token: &'a str, extra: &[(&'a str, &'a str)], dpop: Option<&str>) -> reqwest::Response {
    post_token(s, auth, vec![("grant_type", "refresh_token"), ("refresh_token", token)], extra, dpop).await
}

/// A successful refresh's body.
async fn refreshed(s: &TestServer, id: &str, secret: &str, token: &str, extra: &[(&str, &str)]) -> Value {
    let resp = refresh(s, Auth::Basic(id, secret), token, extra, None).await;
    assert_eq!(resp.status(), 200, "refresh");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

fn str_of<'a>(body: &'a Value, key: &str) -> &'a str {
    body[key].as_str().unwrap_or_else(|| panic!("{key} in {body}"))
}

/// OIDC Core §11 and RFC 6749 §1.5: a refresh token only for a client registered for the
/// grant, and for an OpenID request only with `offline_access`; a plain OAuth request of a
/// registered client gets one by its registration alone.
#[tokio::test]
async fn a_refresh_token_is_issued_only_when_registered_and_for_openid_with_offline_access() {
    let s = TestServer::start().await;
    let (plain, plain_secret) = web_client(&s, json!({"scope": SCOPE})).await;
    let (body, _) = tokens_for(&s, &plain, &plain_secret, "openid offline_access api", |_| {}).await;
    assert!(body.get("refresh_token").is_none(), "not registered for refresh_token: {body}");

    let (id, secret) = refresh_client(&s).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid api", |_| {}).await;
    assert!(body.get("refresh_token").is_none(), "openid without offline_access: {body}");
    let (body, _) = tokens_for(&s, &id, &secret, "openid offline_access api", |_| {}).await;
    let rt = str_of(&body, "refresh_token");
    assert_eq!(rt.len(), 43, "256 random bits, base64url");
    assert!(rt.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let (body, _) = tokens_for(&s, &id, &secret, "api", |_| {}).await;
    assert!(body["refresh_token"].is_string(), "plain OAuth: the registration decides: {body}");

    // Only the hash is stored: the token itself is nowhere in the database file.
    for file in ["warden.db", "warden.db-wal"] {
        let bytes = std::fs::read(s.data_dir().join(file)).unwrap_or_default();
        assert!(!bytes.windows(rt.len()).any(|w| w == rt.as_bytes()), "the refresh token is not stored in clear ({file})");
    }
}

/// §6 + RFC 9700 §4.14.2: a refresh returns a new access token and a new refresh token; the
/// used one is refused afterwards. The new access token works at userinfo.
#[tokio::test]
async fn a_refresh_rotates_the_refresh_token_and_the_used_one_is_refused() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let (body, g) = tokens_for(&s, &id, &secret, "openid offline_access api", |_| {}).await;
    let rt1 = str_of(&body, "refresh_token").to_owned();
    let next = refreshed(&s, &id, &secret, &rt1, &[]).await;
    assert_eq!(next["token_type"], "Bearer");
    assert_eq!(next["scope"], "openid offline_access api");
    assert_eq!(next["expires_in"], 600);
    let rt2 = str_of(&next, "refresh_token");
    assert_ne!(rt2, rt1, "rotated");
    let at2 = str_of(&next, "access_token");
    let (header, claims) = jwt_parts(at2);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], g.sub);
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["auth_time"], g.auth_time, "the original sign-in");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600, "the client's access token lifetime");
    assert_eq!(s.introspect(&id, &secret, at2).await["active"], true);
    let info = s.http.get(s.url("/userinfo")).bearer_auth(at2).send().await.unwrap();
    assert_eq!(info.status(), 200, "userinfo accepts a refreshed token");
    assert_eq!(info.json::<Value>().await.unwrap()["sub"], g.sub);

    // The next one works too, and so on.
    let third = refreshed(&s, &id, &secret, rt2, &[]).await;
    assert!(third["refresh_token"].is_string());
    // The used token is refused.
    let resp = refresh(&s, Auth::Basic(&id, &secret), &rt1, &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    // Nonsense is refused the same way.
    let resp = refresh(&s, Auth::Basic(&id, &secret), "no-such-token", &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let resp = refresh(&s, Auth::Basic(&id, &secret), "a.b.c", &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "refresh_token")]).await;
    assert_oauth_error(resp, 400, "invalid_request").await;
}

/// RFC 9700 §4.14.2: presenting a consumed refresh token revokes the family — the newest
/// refresh token and every access token of the grant become inactive.
#[tokio::test]
async fn reusing_a_consumed_refresh_token_revokes_the_whole_family() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid offline_access api", |_| {}).await;
    let (at1, rt1) = (str_of(&body, "access_token").to_owned(), str_of(&body, "refresh_token").to_owned());
    let next = refreshed(&s, &id, &secret, &rt1, &[]).await;
    let (at2, rt2) = (str_of(&next, "access_token").to_owned(), str_of(&next, "refresh_token").to_owned());
    let last = refreshed(&s, &id, &secret, &rt2, &[]).await;
    let (at3, rt3) = (str_of(&last, "access_token").to_owned(), str_of(&last, "refresh_token").to_owned());
    assert_eq!(s.introspect(&id, &secret, &rt3).await["active"], true);

    // An attacker replays the first refresh token.
    let resp = refresh(&s, Auth::Basic(&id, &secret), &rt1, &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    for t in [&at1, &at2, &at3, &rt3] {
        assert_eq!(s.introspect(&id, &secret, t).await, json!({"active": false}), "the family is revoked");
    }
    let resp = refresh(&s, Auth::Basic(&id, &secret), &rt3, &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let info = s.http.get(s.url("/userinfo")).bearer_auth(&at3).send().await.unwrap();
    assert_eq!(info.status(), 401);
}

/// The reuse is an audit event (`target: audit`, `event = refresh_token_reuse`) naming the
/// grant and the client. The test runtime is single-threaded, so a thread-local subscriber
/// sees the server's events.
#[tokio::test]
async fn reuse_of_a_refresh_token_is_an_audit_event() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let (body, _) = tokens_for(&s, &id, &secret, "offline_access api", |_| {}).await;
    let rt = str_of(&body, "refresh_token").to_owned();
    refreshed(&s, &id, &secret, &rt, &[]).await;

    let logs = LogCapture::default();
    let guard = tracing::subscriber::set_default(logs.subscriber(tracing::Level::INFO));
    let resp = refresh(&s, Auth::Basic(&id, &secret), &rt, &[], None).await;
    drop(guard);
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let text = logs.text();
    let event = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["target"] == "audit" && e["fields"]["event"] == "refresh_token_reuse")
        .unwrap_or_else(|| panic!("no refresh_token_reuse audit event in {text}"));
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["fields"]["client_id"], id);
    assert!(event["fields"]["grant_id"].as_str().is_some_and(|g| g.len() >= 22), "the grant: {event}");
    assert_eq!(event["fields"]["revoked_tokens"], 2, "both access tokens of the family");
    assert!(!text.contains(&rt), "the token itself is never logged");
}

/// Two refreshes with one token at the same moment on two nodes: one consumes it, the other
/// is reuse. The documented behaviour (`token/refresh_token.rs`): the family is revoked, so
/// at most one request gets tokens, and none of what anyone got stays active.
#[tokio::test]
async fn two_refreshes_with_one_token_at_once_revoke_the_family() {
    let a = TestServer::start().await;
    let b = a.another_node(|_| {}).await;
    race_two_nodes(&a, &b).await;
}

/// The same over one PostgreSQL database (skipped with a message without PostgreSQL).
#[tokio::test]
async fn two_refreshes_with_one_token_at_once_over_postgres_revoke_the_family() {
    let Some(pg) = PgSchema::new("warden_refresh").await else { return };
    let (a, b) = provider_nodes_over_postgres(&pg, |_| {}).await;
    race_two_nodes(&a, &b).await;
}

async fn race_two_nodes(a: &TestServer, b: &TestServer) {
    let (id, secret) = refresh_client(a).await;
    for _ in 0..6 {
        let (body, _) = tokens_for(a, &id, &secret, "offline_access api", |_| {}).await;
        let (at1, rt1) = (str_of(&body, "access_token").to_owned(), str_of(&body, "refresh_token").to_owned());
        let (ra, rb) = tokio::join!(
            refresh(a, Auth::Basic(&id, &secret), &rt1, &[], None),
            refresh(b, Auth::Basic(&id, &secret), &rt1, &[], None),
        );
        let mut issued = Vec::new();
        for r in [ra, rb] {
            match r.status().as_u16() {
                200 => {
                    let v: Value = r.json().await.unwrap();
                    issued.push(str_of(&v, "access_token").to_owned());
                    issued.push(str_of(&v, "refresh_token").to_owned());
                }
                _ => {
                    assert_oauth_error(r, 400, "invalid_grant").await;
                }
            }
        }
        assert!(issued.len() <= 2, "one token, at most one winner");
        issued.push(at1);
        for t in &issued {
            assert_eq!(a.introspect(&id, &secret, t).await, json!({"active": false}), "nothing of the family stays active");
            assert_eq!(b.introspect(&id, &secret, t).await, json!({"active": false}));
        }
        if let Some(rt) = issued.iter().find(|t| !t.contains('.')) {
            assert_oauth_error(refresh(a, Auth::Basic(&id, &secret), rt, &[], None).await, 400, "invalid_grant").await;
        }
    }
}

/// RFC 6749 §4.1.2: a replayed code revokes every token of its grant — the refresh tokens
/// too, however often they were rotated.
#[tokio::test]
async fn a_replayed_code_revokes_the_refresh_tokens_of_its_grant() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "openid offline_access api", &challenge)).await;
    let resp = redeem(&s, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    let body: Value = resp.json().await.unwrap();
    let next = refreshed(&s, &id, &secret, str_of(&body, "refresh_token"), &[]).await;
    let (at2, rt2) = (str_of(&next, "access_token"), str_of(&next, "refresh_token"));
    let resp = redeem(&s, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    for t in [str_of(&body, "access_token"), at2, rt2] {
        assert_eq!(s.introspect(&id, &secret, t).await, json!({"active": false}));
    }
    assert_oauth_error(refresh(&s, Auth::Basic(&id, &secret), rt2, &[], None).await, 400, "invalid_grant").await;
}

/// §6: `scope` may narrow the access token's scope, never widen it (`invalid_scope`); the next
/// refresh token keeps the whole grant, and a refused request does not use the token up.
#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid offline_access api", |_| {}).await;
    let rt = str_of(&body, "refresh_token").to_owned();

    for wider in ["api email", "api profile", "write"] {
        let resp = refresh(&s, Auth::Basic(&id, &secret), &rt, &[("scope", wider)], None).await;
        assert_oauth_error(resp, 400, "invalid_scope").await;
    }
    assert_oauth_error(refresh(&s, Auth::Basic(&id, &secret), &rt, &[("scope", " ")], None).await, 400, "invalid_scope").await;

    let narrow = refreshed(&s, &id, &secret, &rt, &[("scope", "api")]).await;
    assert_eq!(narrow["scope"], "api");
    assert_eq!(jwt_parts(str_of(&narrow, "access_token")).1["scope"], "api");
    assert!(narrow.get("id_token").is_none(), "no openid in the narrowed scope, no ID token");
    let again = refreshed(&s, &id, &secret, str_of(&narrow, "refresh_token"), &[]).await;
    assert_eq!(again["scope"], "openid offline_access api", "the grant's scope is kept");
    assert!(again["id_token"].is_string());
    let info = s.introspect(&id, &secret, str_of(&again, "refresh_token")).await;
    assert_eq!(info["scope"], "openid offline_access api");
}

/// RFC 8707 §2: `resource` at refresh picks among the grant's resources (`invalid_target`
/// otherwise).
#[tokio::test]
async fn resource_at_refresh_picks_among_the_grants_resources() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(
        &s,
        json!({"grant_types": ["authorization_code", "refresh_token"], "scope": SCOPE, "audience": ["https://a.example", "https://b.example", "https://c.example"]}),
    )
    .await;
    let (body, _) = tokens_for(&s, &id, &secret, "offline_access api", |g| g.resource = vec!["https://a.example".into(), "https://b.example".into()]).await;
    let rt = str_of(&body, "refresh_token").to_owned();
    let resp = refresh(&s, Auth::Basic(&id, &secret), &rt, &[("resource", "https://c.example")], None).await;
    assert_oauth_error(resp, 400, "invalid_target").await;
    let one = refreshed(&s, &id, &secret, &rt, &[("resource", "https://b.example")]).await;
    assert_eq!(jwt_parts(str_of(&one, "access_token")).1["aud"], "https://b.example");
    let both = refreshed(&s, &id, &secret, str_of(&one, "refresh_token"), &[]).await;
    assert_eq!(jwt_parts(str_of(&both, "access_token")).1["aud"], json!(["https://a.example", "https://b.example"]));
}

/// §6: the refresh token is bound to its client: another client gets `invalid_grant` (and
/// does not use it up); a client not registered for the grant gets `unauthorized_client`;
/// a wrong secret `invalid_client`.
#[tokio::test]
async fn a_refresh_token_is_bound_to_its_client() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let (other, other_secret) = refresh_client(&s).await;
    let (plain, plain_secret) = web_client(&s, json!({"scope": SCOPE})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "offline_access api", |_| {}).await;
    let rt = str_of(&body, "refresh_token").to_owned();
    assert_oauth_error(refresh(&s, Auth::Basic(&other, &other_secret), &rt, &[], None).await, 400, "invalid_grant").await;
    assert_oauth_error(refresh(&s, Auth::Basic(&plain, &plain_secret), &rt, &[], None).await, 400, "unauthorized_client").await;
    assert_oauth_error(refresh(&s, Auth::Basic(&id, "wrong"), &rt, &[], None).await, 401, "invalid_client").await;
    assert_oauth_error(refresh(&s, Auth::Public(&id), &rt, &[], None).await, 401, "invalid_client").await;
    // The other client's introspection learns nothing about it.
    assert_eq!(s.introspect(&other, &other_secret, &rt).await, json!({"active": false}));
    // The owner still refreshes with it.
    refreshed(&s, &id, &secret, &rt, &[]).await;
}

/// RFC 9449 §5: a public client's refresh token is bound to the DPoP key of the token request
/// that got it; a refresh needs a proof with that key. A confidential client's is bound by its
/// authentication only.
#[tokio::test]
async fn a_public_clients_refresh_token_is_bound_to_its_dpop_key() {
    let s = TestServer::start().await;
    let id = public_refresh_client(&s).await;
    let user = ada(&s).await;
    let key = DpopKey::new();
    let url = s.url("/token");
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "openid offline_access api", &challenge)).await;
    let resp = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), Some(&verifier), &[], Some(&key.proof("POST", &url, None))).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let rt = str_of(&body, "refresh_token").to_owned();

    assert_oauth_error(refresh(&s, Auth::Public(&id), &rt, &[], None).await, 400, "invalid_dpop_proof").await;
    let stranger = DpopKey::new().proof("POST", &url, None);
    assert_oauth_error(refresh(&s, Auth::Public(&id), &rt, &[], Some(&stranger)).await, 400, "invalid_dpop_proof").await;
    let resp = refresh(&s, Auth::Public(&id), &rt, &[], Some(&key.proof("POST", &url, None))).await;
    assert_eq!(resp.status(), 200, "the refused attempts did not use the token up");
    let next: Value = resp.json().await.unwrap();
    assert_eq!(next["token_type"], "DPoP");
    assert_eq!(jwt_parts(str_of(&next, "access_token")).1["cnf"], json!({"jkt": key.thumbprint()}));
    // The next refresh token is bound to the same key.
    let rt2 = str_of(&next, "refresh_token");
    let stranger = DpopKey::new().proof("POST", &url, None);
    assert_oauth_error(refresh(&s, Auth::Public(&id), rt2, &[], Some(&stranger)).await, 400, "invalid_dpop_proof").await;
    assert_eq!(refresh(&s, Auth::Public(&id), rt2, &[], Some(&key.proof("POST", &url, None))).await.status(), 200);

    // A confidential client that used DPoP may refresh without it (bearer tokens then).
    let (cid, csecret) = refresh_client(&s).await;
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&cid, &user, "offline_access api", &challenge)).await;
    let resp = redeem(&s, Auth::Basic(&cid, &csecret), &code, Some(REDIRECT), Some(&verifier), &[], Some(&key.proof("POST", &url, None))).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let plain = refreshed(&s, &cid, &csecret, str_of(&body, "refresh_token"), &[]).await;
    assert_eq!(plain["token_type"], "Bearer");
    assert!(jwt_parts(str_of(&plain, "access_token")).1.get("cnf").is_none());
    // A proof at its refresh does not bind its next refresh token either.
    let resp = refresh(&s, Auth::Basic(&cid, &csecret), str_of(&plain, "refresh_token"), &[], Some(&key.proof("POST", &url, None))).await;
    let bound: Value = resp.json().await.unwrap();
    assert_eq!(bound["token_type"], "DPoP");
    assert_eq!(refreshed(&s, &cid, &csecret, str_of(&bound, "refresh_token"), &[]).await["token_type"], "Bearer");

    // A public client's refresh token got without DPoP is bound by the first refresh that
    // proves a key: from then on the family needs that key.
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "offline_access api", &challenge)).await;
    let resp = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let resp = refresh(&s, Auth::Public(&id), str_of(&body, "refresh_token"), &[], Some(&key.proof("POST", &url, None))).await;
    assert_eq!(resp.status(), 200);
    let next: Value = resp.json().await.unwrap();
    let rt = str_of(&next, "refresh_token");
    assert_oauth_error(refresh(&s, Auth::Public(&id), rt, &[], None).await, 400, "invalid_dpop_proof").await;
    let stranger = DpopKey::new().proof("POST", &url, None);
    assert_oauth_error(refresh(&s, Auth::Public(&id), rt, &[], Some(&stranger)).await, 400, "invalid_dpop_proof").await;
    assert_eq!(refresh(&s, Auth::Public(&id), rt, &[], Some(&key.proof("POST", &url, None))).await.status(), 200);
}

/// `provider.refresh_token_idle_lifetime`: an unused refresh token expires; using it starts
/// the period again.
#[tokio::test]
async fn an_unused_refresh_token_expires_after_the_idle_lifetime() {
    let s = TestServer::start_with(|c| c.oauth.refresh_token_idle_lifetime = Duration::from_secs(3)).await;
    let (id, secret) = refresh_client(&s).await;
    let (body, _) = tokens_for(&s, &id, &secret, "offline_access api", |_| {}).await;
    let rt = str_of(&body, "refresh_token").to_owned();
    let info = s.introspect(&id, &secret, &rt).await;
    assert!(info["exp"].as_i64().unwrap() <= now() + 3, "idle expiry: {info}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let next = refreshed(&s, &id, &secret, &rt, &[]).await;
    let rt2 = str_of(&next, "refresh_token").to_owned();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let next = refreshed(&s, &id, &secret, &rt2, &[]).await;
    let rt3 = str_of(&next, "refresh_token").to_owned();
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_oauth_error(refresh(&s, Auth::Basic(&id, &secret), &rt3, &[], None).await, 400, "invalid_grant").await;
    assert_eq!(s.introspect(&id, &secret, &rt3).await, json!({"active": false}));
}

/// `provider.refresh_token_max_lifetime`, counted from the sign-in (`auth_time`): refreshing
/// does not extend it; a sign-in older than it gets no refresh token at all.
#[tokio::test]
async fn a_refresh_token_family_ends_at_the_absolute_lifetime_from_sign_in() {
    let s = TestServer::start_with(|c| {
        c.oauth.refresh_token_idle_lifetime = Duration::from_secs(60);
        c.oauth.refresh_token_max_lifetime = Duration::from_secs(60);
    })
    .await;
    let (id, secret) = refresh_client(&s).await;
    let (body, _) = tokens_for(&s, &id, &secret, "offline_access api", |g: &mut CodeGrant| g.auth_time = now() - 120).await;
    assert!(body.get("refresh_token").is_none(), "the sign-in is older than the maximum: {body}");

    let (body, g) = tokens_for(&s, &id, &secret, "offline_access api", |g: &mut CodeGrant| g.auth_time = now() - 57).await;
    let rt = str_of(&body, "refresh_token").to_owned();
    assert_eq!(s.introspect(&id, &secret, &rt).await["exp"], g.auth_time + 60, "capped by the family's end");
    let next = refreshed(&s, &id, &secret, &rt, &[]).await;
    let rt2 = str_of(&next, "refresh_token").to_owned();
    assert_eq!(s.introspect(&id, &secret, &rt2).await["exp"], g.auth_time + 60, "rotation does not extend it");
    let wait = (g.auth_time + 61 - now()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait * 1000 + 200)).await;
    assert_oauth_error(refresh(&s, Auth::Basic(&id, &secret), &rt2, &[], None).await, 400, "invalid_grant").await;
}

/// OIDC Core §12.2: the refreshed ID token has the same `sub` and `auth_time`, a new `iat`,
/// `at_hash` of the new access token, and no `nonce`.
#[tokio::test]
async fn a_refreshed_id_token_keeps_sub_and_auth_time_and_has_no_nonce() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let (body, g) = tokens_for(&s, &id, &secret, "openid offline_access", |_| {}).await;
    let (_, first) = verify_id_token(&s, str_of(&body, "id_token"), &id).await;
    assert_eq!(first["nonce"], "n-0S6_WzA2Mj");
    let next = refreshed(&s, &id, &secret, str_of(&body, "refresh_token"), &[]).await;
    let (alg, claims) = verify_id_token(&s, str_of(&next, "id_token"), &id).await;
    assert_eq!(claims["sub"], first["sub"]);
    assert_eq!(claims["sub"], g.sub);
    assert_eq!(claims["auth_time"], g.auth_time);
    assert_eq!(claims["auth_time"], first["auth_time"]);
    assert_eq!(claims["azp"], id);
    assert_eq!(claims["sid"], g.sid);
    assert!(claims.get("nonce").is_none(), "no nonce on refresh: {claims}");
    assert_eq!(claims["at_hash"], expected_at_hash(alg, str_of(&next, "access_token")));
}

/// RFC 7009 §2.1: revoking a refresh token (with the hint or without) revokes its grant:
/// every refresh token and access token of the family. Another client may not revoke it.
#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let (other, other_secret) = refresh_client(&s).await;
    for hint in [Some("refresh_token"), None, Some("access_token")] {
        let (body, _) = tokens_for(&s, &id, &secret, "openid offline_access api", |_| {}).await;
        let at1 = str_of(&body, "access_token").to_owned();
        let next = refreshed(&s, &id, &secret, str_of(&body, "refresh_token"), &[]).await;
        let (at2, rt2) = (str_of(&next, "access_token").to_owned(), str_of(&next, "refresh_token").to_owned());
        let mut form = vec![("token", rt2.as_str())];
        if let Some(h) = hint {
            form.push(("token_type_hint", h));
        }
        let resp = s.post_form("/revoke", Some((&other, &other_secret)), &form).await;
        assert_oauth_error(resp, 400, "unauthorized_client").await;
        assert_eq!(s.introspect(&id, &secret, &rt2).await["active"], true, "not by another client");

        let resp = s.post_form("/revoke", Some((&id, &secret)), &form).await;
        assert_eq!(resp.status(), 200, "hint {hint:?}");
        for t in [&at1, &at2, &rt2] {
            assert_eq!(s.introspect(&id, &secret, t).await, json!({"active": false}), "hint {hint:?}");
        }
        assert_oauth_error(refresh(&s, Auth::Basic(&id, &secret), &rt2, &[], None).await, 400, "invalid_grant").await;
        // Again: still a success (§2.2).
        assert_eq!(s.post_form("/revoke", Some((&id, &secret)), &form).await.status(), 200);
    }
}

/// A public client revokes its own refresh token by `client_id` (RFC 7009 §2.1 authenticates
/// only clients with credentials).
#[tokio::test]
async fn a_public_client_revokes_its_refresh_token() {
    let s = TestServer::start().await;
    let id = public_refresh_client(&s).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "offline_access api", &challenge)).await;
    let body: Value = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), Some(&verifier), &[], None).await.json().await.unwrap();
    let rt = str_of(&body, "refresh_token").to_owned();
    let resp = s.http.post(s.url("/revoke")).form(&[("token", rt.as_str()), ("client_id", id.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_oauth_error(refresh(&s, Auth::Public(&id), &rt, &[], None).await, 400, "invalid_grant").await;
}

/// RFC 7662 §2.2: a refresh token is described to its own client: active,
/// `token_type: refresh_token`, its client, user, scope, expiry and `auth_time`.
#[tokio::test]
async fn a_refresh_token_is_introspected_by_its_own_client() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let (rs, rs_secret) = s.client(json!({"grant_types": ["client_credentials"], "scope": "read", "resource_server_for": [s.issuer.clone()]})).await;
    let (body, g) = tokens_for(&s, &id, &secret, "offline_access api", |_| {}).await;
    let rt = str_of(&body, "refresh_token");
    let info = s.introspect(&id, &secret, rt).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["client_id"], id);
    assert_eq!(info["sub"], g.sub);
    assert_eq!(info["scope"], "offline_access api");
    assert_eq!(info["iss"], s.issuer);
    assert_eq!(info["auth_time"], g.auth_time);
    let exp = info["exp"].as_i64().unwrap();
    assert!((now() + 14 * 24 * 3600 - exp).abs() <= 5, "14 days idle by default: {info}");
    // A resource server of the access token's audience learns nothing about a refresh token.
    assert_eq!(s.introspect(&rs, &rs_secret, str_of(&body, "access_token")).await["active"], true);
    assert_eq!(s.introspect(&rs, &rs_secret, rt).await, json!({"active": false}));
}

/// A user disabled after the grant can no longer refresh (and the token is spent).
#[tokio::test]
async fn a_disabled_user_cannot_refresh() {
    let s = TestServer::start().await;
    let (id, secret) = refresh_client(&s).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid offline_access", |_| {}).await;
    let rt = str_of(&body, "refresh_token").to_owned();
    warden::oauth::users::set_disabled(&s.store, "ada", true).await.unwrap();
    assert_oauth_error(refresh(&s, Auth::Basic(&id, &secret), &rt, &[], None).await, 400, "invalid_grant").await;
    warden::oauth::users::set_disabled(&s.store, "ada", false).await.unwrap();
    assert_oauth_error(refresh(&s, Auth::Basic(&id, &secret), &rt, &[], None).await, 400, "invalid_grant").await;
}

/// RFC 8414: `refresh_token` is accepted but not advertised yet (the whole browser flow is
/// switched on in discovery at once).
#[tokio::test]
async fn refresh_token_is_advertised_and_public_clients_may_revoke() {
    let s = TestServer::start().await;
    let meta: Value = s.http.get(s.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert!(meta["grant_types_supported"].as_array().unwrap().iter().any(|g| g == "refresh_token"));
    assert!(meta["revocation_endpoint_auth_methods_supported"].as_array().unwrap().iter().any(|m| m == "none"));
}
