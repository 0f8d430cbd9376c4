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
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::json;
use std::collections::HashMap;
use crate::support::oauth2_send as send;
use warden::model::Claims;
use warden::secrets::password::Password;

const CB: &str = "https://rp.example/callback";

/// The user's part, in the test browser: open the library's authorization URL, sign in as
/// alice, allow. The consent page and the parameters the browser brings back to `CB`.
async fn sign_in_and_allow(s: &TestServer, auth_url: &str) -> (String, HashMap<String, String>) {
    let mut b = Browser::new(s);
    let page = location(&b.get(auth_url).await);
    let html = b.get(&page).await.text().await.unwrap();
    let consent = location(&submit_login(&mut b, &html, "alice", PASSWORD).await);
    let html = b.get(&consent).await.text().await.unwrap();
    let back = location(&b.post(&form_action(&html), &[("csrf", &input(&html, "csrf")), ("decision", "allow")]).await);
    let back = url::Url::parse(&back).unwrap();
    assert_eq!(back.as_str().split('?').next(), Some(CB));
    (html, back.query_pairs().into_owned().collect())
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
    let (_, q) = sign_in_and_allow(&s, auth_url.as_str()).await;
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

/// The openidconnect crate refreshes (RFC 6749 §6, OIDC Core §12): a client registered for
/// `refresh_token` asking for `offline_access` gets a refresh token; the library exchanges it
/// and validates the refreshed ID token (same `sub` and `auth_time`, no `nonce`); the used
/// refresh token is refused afterwards (rotation).
#[tokio::test]
async fn the_openidconnect_crate_refreshes_tokens() {
    let s = TestServer::start().await;
    let alice = warden::oauth::users::create(&s.store, "alice", Claims::default(), Some(Password::new(PASSWORD.into()))).await.unwrap();
    let (client_id, secret) = s
        .client(json!({
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [CB],
            "scope": "openid offline_access",
            "client_name": "Relying Party",
        }))
        .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let http_client = |req: HttpRequest| send(http.clone(), req);
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(s.issuer.clone()).unwrap(), &http_client).await.unwrap();
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.clone()), Some(ClientSecret::new(secret)))
        .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let (consent, q) = sign_in_and_allow(&s, auth_url.as_str()).await;
    assert!(consent.contains("Stay connected"), "the consent page names offline access");
    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .unwrap();
    let id_verifier = client.id_token_verifier();
    let first = tokens.id_token().unwrap().claims(&id_verifier, &nonce).unwrap().clone();
    let refresh_token = tokens.refresh_token().expect("a refresh token for offline_access").clone();

    let refreshed = client.exchange_refresh_token(&refresh_token).unwrap().request_async(&http_client).await.unwrap();
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    let id_token = refreshed.id_token().expect("a refreshed ID token");
    let no_nonce = |n: Option<&Nonce>| if n.is_none() { Ok(()) } else { Err("a refreshed ID token has no nonce".to_owned()) };
    let claims = id_token.claims(&id_verifier, no_nonce).unwrap();
    assert_eq!(claims.subject().as_str(), alice.id.as_str());
    assert_eq!(claims.subject(), first.subject());
    assert_eq!(claims.auth_time(), first.auth_time());
    let at_hash = AccessTokenHash::from_token(refreshed.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&id_verifier).unwrap()).unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    let next = refreshed.refresh_token().expect("rotated");
    assert_ne!(next.secret(), refresh_token.secret());
    // The used refresh token is refused (and its reuse revokes the family).
    assert!(client.exchange_refresh_token(&refresh_token).unwrap().request_async(&http_client).await.is_err());
    assert!(client.exchange_refresh_token(next).unwrap().request_async(&http_client).await.is_err(), "the family is revoked");
}
