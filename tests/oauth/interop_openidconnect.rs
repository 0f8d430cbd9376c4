//! The whole browser flow with a relying-party library we did not write: the `openidconnect`
//! crate does discovery, builds the authorization request (PKCE S256, state, nonce), exchanges
//! the code, validates the ID token (signature from the JWKS, iss, aud, nonce, at_hash) and
//! calls userinfo. Only the user's part (the login and consent pages) is driven by the test
//! browser.

use super::oidc_login_consent::{PASSWORD, submit_login};
use crate::support::TestServer;
use crate::support::browser::{Browser, form_action, input, location};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::json;
use warden::model::Claims;
use warden::secrets::password::Password;

const CB: &str = "https://rp.example/callback";

/// The crate's async HTTP client contract, carried by reqwest (no redirects followed).
async fn send(http: reqwest::Client, req: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let mut r = http.request(parts.method, parts.uri.to_string()).body(body);
    for (k, v) in &parts.headers {
        r = r.header(k, v);
    }
    let resp = r.send().await?;
    let mut out = axum::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    Ok(out.body(resp.bytes().await?.to_vec()).unwrap())
}

#[tokio::test]
async fn the_openidconnect_crate_signs_a_user_in_end_to_end() {
    let s = TestServer::start().await;
    let claims = Claims { email: Some("alice@example.com".into()), email_verified: true, name: Some("Alice Liddell".into()), ..Claims::default() };
    let alice = warden::oauth::users::create(&s.store, "alice", claims, Some(Password::new(PASSWORD.into()))).await.unwrap();
    let (client_id, secret) = s
        .client(json!({
            "grant_types": ["authorization_code"],
            "redirect_uris": [CB],
            "scope": "openid profile email",
            "client_name": "Relying Party",
        }))
        .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let http_client = |req: HttpRequest| send(http.clone(), req);

    // Discovery.
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(s.issuer.clone()).unwrap(), &http_client).await.unwrap();
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.clone()), Some(ClientSecret::new(secret)))
        .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());

    // The authorization request, built by the library.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The user's part: sign in and consent in the browser.
    let mut b = Browser::new(&s);
    let page = location(&b.get(auth_url.as_str()).await);
    let html = b.get(&page).await.text().await.unwrap();
    let consent = location(&submit_login(&mut b, &html, "alice", PASSWORD).await);
    let html = b.get(&consent).await.text().await.unwrap();
    let back = location(&b.post(&form_action(&html), &[("csrf", &input(&html, "csrf")), ("decision", "allow")]).await);
    let back = url::Url::parse(&back).unwrap();
    assert_eq!(back.as_str().split('?').next(), Some(CB));
    let q: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(&q["state"], csrf.secret());
    assert_eq!(q["iss"], s.issuer, "RFC 9207");

    // Code exchange and ID token validation by the library.
    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token for the openid scope");
    let verifier = client.id_token_verifier();
    let id_claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(id_claims.subject().as_str(), alice.id.as_str());
    assert!(id_claims.auth_time().is_some());
    let at_hash = AccessTokenHash::from_token(tokens.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&verifier).unwrap()).unwrap();
    assert_eq!(id_claims.access_token_hash(), Some(&at_hash));
    // OIDC Core §5.4: with an access token, scope claims come from userinfo.
    assert!(id_claims.email().is_none());

    // Userinfo, checked by the library against the ID token's subject.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(id_claims.subject().clone()))
        .unwrap()
        .request_async(&http_client)
        .await
        .unwrap();
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.email_verified(), Some(true));
    assert_eq!(info.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Alice Liddell"));

    // The same code a second time: refused (RFC 6749 §4.1.2).
    assert!(client.exchange_code(AuthorizationCode::new(q["code"].clone())).unwrap().request_async(&http_client).await.is_err());
}
