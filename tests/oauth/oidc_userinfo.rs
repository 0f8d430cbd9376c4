//! OIDC Core §5.3 userinfo, as a protected resource (RFC 6750 §2, §3; RFC 9449 §7).

use crate::support::TestServer;
use crate::support::code_flow::{Auth, DpopKey, REDIRECT, ada, grant, pkce, public_client, redeem, store_code, tokens_for, verify_id_token, web_client};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// An RFC 6750 §3 answer: status, `WWW-Authenticate` with this scheme (and `error`, when
/// given), a JSON body with the same code, `no-store`.
async fn assert_refused(resp: reqwest::Response, status: u16, scheme: &str, error: Option<&str>) -> HeaderMap {
    let h = resp.headers().clone();
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(h["cache-control"], "no-store");
    let challenges: Vec<&str> = h.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap()).collect();
    let c = challenges.iter().find(|c| c.starts_with(scheme)).unwrap_or_else(|| panic!("no {scheme} challenge in {challenges:?}"));
    let body: Value = resp.json().await.unwrap();
    match error {
        Some(e) => {
            assert!(c.contains(&format!("error=\"{e}\"")), "{c}");
            assert_eq!(body["error"], e);
        }
        None => assert!(!c.contains("error="), "no error code without a token (§3.1): {c}"),
    }
    h
}

async fn get(s: &TestServer, auth: Option<&str>) -> reqwest::Response {
    let mut req = s.http.get(s.url("/userinfo"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

/// §5.3.2: GET and POST with the header, POST with the token in the body (RFC 6750 §2.2):
/// the claims of the granted scopes, `sub` equal to the ID token's, `no-store`.
#[tokio::test]
async fn userinfo_answers_get_post_and_body_tokens_with_the_scopes_claims() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, g) = tokens_for(&s, &id, &secret, "openid profile email", |_| {}).await;
    let token = body["access_token"].as_str().unwrap();
    let (_, id_claims) = verify_id_token(&s, body["id_token"].as_str().unwrap(), &id).await;
    let bearer = format!("Bearer {token}");
    let resp = get(&s, Some(&bearer)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info["sub"], id_claims["sub"]);
    assert_eq!(info["sub"], g.sub);
    assert_eq!(info["name"], "Ada Lovelace");
    assert_eq!(info["given_name"], "Ada");
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["email_verified"], true);
    assert!(info["updated_at"].is_i64());
    assert!(info.get("phone_number").is_none(), "phone was not granted: {info}");
    let post = s.http.post(s.url("/userinfo")).header("authorization", &bearer).send().await.unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(post.json::<Value>().await.unwrap(), info);
    let in_body = s.http.post(s.url("/userinfo")).form(&[("access_token", token)]).send().await.unwrap();
    assert_eq!(in_body.status(), 200);
    assert_eq!(in_body.json::<Value>().await.unwrap(), info);
    // RFC 6750 §2.2: only a form body can carry a token; any other body is no concern of ours.
    let json_body = s.http.post(s.url("/userinfo")).header("authorization", &bearer).json(&json!({"access_token": "x"})).send().await.unwrap();
    assert_eq!(json_body.status(), 200);
    assert_eq!(json_body.json::<Value>().await.unwrap(), info);
}

/// §5.5: the `claims` request's `userinfo` member adds single claims beyond the scopes.
#[tokio::test]
async fn the_claims_requests_userinfo_member_is_honoured() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid", |g| g.claims = Some(json!({"userinfo": {"phone_number": null}, "id_token": {"name": null}}))).await;
    let info: Value = get(&s, Some(&format!("Bearer {}", body["access_token"].as_str().unwrap()))).await.json().await.unwrap();
    assert_eq!(info["phone_number"], "+44 20 7946 0958");
    assert!(info.get("name").is_none(), "asked for the ID token only: {info}");
}

/// RFC 6750 §3.1: no token → 401 with challenges and no error code; the query is never
/// accepted (RFC 9700 §4.3.2); two ways at once → `invalid_request`.
#[tokio::test]
async fn tokens_come_one_way_and_never_in_the_query() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid", |_| {}).await;
    let token = body["access_token"].as_str().unwrap();
    let h = assert_refused(get(&s, None).await, 401, "Bearer", None).await;
    assert!(h.get_all("www-authenticate").iter().any(|v| v.to_str().unwrap().starts_with("DPoP")), "both schemes offered");
    let resp = s.http.get(format!("{}?access_token={token}", s.url("/userinfo"))).send().await.unwrap();
    assert_refused(resp, 400, "Bearer", Some("invalid_request")).await;
    let resp = s.http.post(s.url("/userinfo")).header("authorization", format!("Bearer {token}")).form(&[("access_token", token)]).send().await.unwrap();
    assert_refused(resp, 400, "Bearer", Some("invalid_request")).await;
    assert_refused(get(&s, Some(&format!("Basic {token}"))).await, 400, "Bearer", Some("invalid_request")).await;
    assert_refused(get(&s, Some("Bearer not-a-token")).await, 401, "Bearer", Some("invalid_token")).await;
    // A scheme without a token: the error is in that scheme's challenge.
    assert_refused(get(&s, Some("Bearer")).await, 400, "Bearer", Some("invalid_request")).await;
    assert_refused(get(&s, Some("DPoP")).await, 400, "DPoP", Some("invalid_request")).await;
}

/// Expired and revoked tokens are `invalid_token`.
#[tokio::test]
async fn expired_and_revoked_tokens_are_invalid_token() {
    let s = TestServer::start_with(|c| c.oauth.clock_skew = std::time::Duration::ZERO).await;
    let (id, secret) = web_client(&s, json!({"access_token_lifetime": 1})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid", |_| {}).await;
    let short = body["access_token"].as_str().unwrap().to_owned();
    let (id2, secret2) = web_client(&s, json!({})).await;
    let (body, _) = tokens_for(&s, &id2, &secret2, "openid", |_| {}).await;
    let revoked = body["access_token"].as_str().unwrap();
    assert_eq!(get(&s, Some(&format!("Bearer {revoked}"))).await.status(), 200);
    assert_eq!(s.post_form("/revoke", Some((&id2, &secret2)), &[("token", revoked)]).await.status(), 200);
    assert_refused(get(&s, Some(&format!("Bearer {revoked}"))).await, 401, "Bearer", Some("invalid_token")).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_refused(get(&s, Some(&format!("Bearer {short}"))).await, 401, "Bearer", Some("invalid_token")).await;
}

/// RFC 6750 §3.1: a token without `openid` is 403 `insufficient_scope`; a client-credentials
/// token (no user) is `invalid_token`, even with `openid` in its scope.
#[tokio::test]
async fn tokens_without_openid_or_without_a_user_are_refused() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "profile api", |_| {}).await;
    let resp = get(&s, Some(&format!("Bearer {}", body["access_token"].as_str().unwrap()))).await;
    assert_refused(resp, 403, "Bearer", Some("insufficient_scope")).await;
    let (cc, cc_secret) = s.client(json!({"grant_types": ["client_credentials"], "scope": "openid profile"})).await;
    let token = s.token(&cc, &cc_secret, &[]).await;
    assert_refused(get(&s, Some(&format!("Bearer {token}"))).await, 401, "Bearer", Some("invalid_token")).await;
}

/// A user disabled or deleted after sign-in: 401.
#[tokio::test]
async fn a_disabled_or_deleted_user_is_invalid_token() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid", |_| {}).await;
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    warden::oauth::users::set_disabled(&s.store, "ada", true).await.unwrap();
    assert_refused(get(&s, Some(&bearer)).await, 401, "Bearer", Some("invalid_token")).await;
    warden::oauth::users::set_disabled(&s.store, "ada", false).await.unwrap();
    assert_eq!(get(&s, Some(&bearer)).await.status(), 200);
    warden::oauth::users::delete(&s.store, "ada").await.unwrap();
    assert_refused(get(&s, Some(&bearer)).await, 401, "Bearer", Some("invalid_token")).await;
}

/// RFC 9449 §7: a DPoP-bound token needs the DPoP scheme and a proof with `ath`, made with
/// the bound key, once; as `Bearer` it is refused (no downgrade).
#[tokio::test]
async fn dpop_bound_tokens_need_the_dpop_scheme_and_a_proof_with_ath() {
    let s = TestServer::start().await;
    let id = public_client(&s).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let key = DpopKey::new();
    let code = store_code(&s, &grant(&id, &user, "openid email", &challenge)).await;
    let proof = key.proof("POST", &s.url("/token"), None);
    let resp = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), Some(&verifier), &[], Some(&proof)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let url = s.url("/userinfo");
    let call = |method: reqwest::Method, scheme: &'static str, proof: Option<String>| {
        let mut req = s.http.request(method, &url).header("authorization", format!("{scheme} {token}"));
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    let ok = key.proof("GET", &url, Some(token));
    let resp = call(reqwest::Method::GET, "DPoP", Some(ok.clone())).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["email"], "ada@example.com");
    let resp = call(reqwest::Method::POST, "DPoP", Some(key.proof("POST", &url, Some(token)))).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_refused(call(reqwest::Method::GET, "DPoP", Some(ok)).await.unwrap(), 401, "DPoP", Some("invalid_dpop_proof")).await;
    assert_refused(call(reqwest::Method::GET, "Bearer", Some(key.proof("GET", &url, Some(token)))).await.unwrap(), 401, "DPoP", Some("invalid_token")).await;
    let resp = s.http.post(&url).form(&[("access_token", token)]).send().await.unwrap();
    assert_refused(resp, 401, "DPoP", Some("invalid_token")).await;
    assert_refused(call(reqwest::Method::GET, "DPoP", None).await.unwrap(), 401, "DPoP", Some("invalid_dpop_proof")).await;
    let no_ath = key.proof("GET", &url, None);
    assert_refused(call(reqwest::Method::GET, "DPoP", Some(no_ath)).await.unwrap(), 401, "DPoP", Some("invalid_dpop_proof")).await;
    let wrong_method = key.proof("POST", &url, Some(token));
    assert_refused(call(reqwest::Method::GET, "DPoP", Some(wrong_method)).await.unwrap(), 401, "DPoP", Some("invalid_dpop_proof")).await;
    let other_key = DpopKey::new().proof("GET", &url, Some(token));
    assert_refused(call(reqwest::Method::GET, "DPoP", Some(other_key)).await.unwrap(), 401, "DPoP", Some("invalid_dpop_proof")).await;
}

/// An unbound (Bearer) token sent with the DPoP scheme is refused.
#[tokio::test]
async fn a_bearer_token_is_not_accepted_under_the_dpop_scheme() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid", |_| {}).await;
    let token = body["access_token"].as_str().unwrap();
    let proof = DpopKey::new().proof("GET", &s.url("/userinfo"), Some(token));
    let resp = s.http.get(s.url("/userinfo")).header("authorization", format!("DPoP {token}")).header("DPoP", proof).send().await.unwrap();
    assert_refused(resp, 401, "DPoP", Some("invalid_token")).await;
}
