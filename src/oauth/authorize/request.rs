//! The authorization request's checks, in order (RFC 6749 §4.1.1, §3.1.2; OIDC Core
//! §3.1.2.1–3.1.2.2; RFC 7636 §4.3; RFC 9700 §2.1, §4.1).

use super::response::{Redirect, RedirectResponse, ResponseMode};
use super::{AuthorizeError, AuthzErrorCode};
use crate::model::{Client, GrantType};
use crate::oauth::register::metadata::is_scope_token;
use crate::oauth::{ErrorCode, Provider};
use serde_json::Value;
use std::sync::Arc;

/// More parameters than any authorization request needs.
const MAX_PARAMS: usize = 64;
/// Parameters that may repeat (RFC 8707 §2).
const MULTI_VALUED: &[&str] = &["resource"];
/// Longest `state` and `nonce` accepted: opaque values, but not megabytes.
const MAX_OPAQUE_LEN: usize = 2048;

/// `prompt` (OIDC Core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: no page may be shown.
    pub none: bool,
    /// `login`: authenticate again.
    pub login: bool,
    /// `consent`: ask for consent again.
    pub consent: bool,
    /// `select_account`.
    pub select_account: bool,
}

/// The response types Warden serves (OIDC Core §3.1.2.1, §3.2.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// `code`: the authorization code flow.
    #[default]
    Code,
    /// `id_token`: the implicit flow, an ID token only (legacy, operator-registered clients).
    IdToken,
    /// `id_token token`: the implicit flow, an ID token and an access token (legacy).
    IdTokenToken,
}

impl ResponseType {
    /// Parses a `response_type` value (its space-separated values in any order).
    pub fn parse(s: &str) -> Option<Self> {
        match crate::oauth::register::metadata::canonical_response_type(s)? {
            "code" => Some(Self::Code),
            "id_token" => Some(Self::IdToken),
            "id_token token" => Some(Self::IdTokenToken),
            _ => None,
        }
    }

    /// The canonical wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::IdToken => "id_token",
            Self::IdTokenToken => "id_token token",
        }
    }

    /// Whether this is the implicit flow: tokens in the front channel, no code.
    pub fn is_implicit(self) -> bool {
        self != Self::Code
    }
}

/// A request that passed every check: what the interaction and the code will carry.
pub struct AuthorizationRequest {
    /// The client, verified.
    pub client: Arc<Client>,
    /// Where and how to answer.
    pub redirect: Redirect,
    /// Whether the request named `redirect_uri` (the token request must then repeat it).
    pub redirect_uri_sent: bool,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code will be bound to.
    pub dpop_jkt: Option<String>,
    /// What the request asks for: a code, or (legacy) the implicit flow's tokens.
    pub response_type: ResponseType,
    /// Requested scopes, deduplicated, in request order.
    pub scope: Vec<String>,
    /// The PKCE S256 challenge (RFC 7636 §4.2); empty in the implicit flow, which issues no
    /// code.
    pub code_challenge: String,
    /// OIDC `nonce`, echoed in the ID token.
    pub nonce: Option<String>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age`, seconds.
    pub max_age: Option<u64>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// The `sub` of a valid `id_token_hint` (issued by us to this client): the session must
    /// be that user's, or the request needs a login (`prompt=none`: `login_required`).
    pub hint_sub: Option<String>,
    /// `ui_locales`, space-separated BCP 47 tags.
    pub ui_locales: Option<String>,
    /// `claims_locales`.
    pub claims_locales: Option<String>,
    /// `acr_values`.
    pub acr_values: Option<String>,
    /// The `claims` request parameter (OIDC Core §5.5), an object with `userinfo` and/or
    /// `id_token` members.
    pub claims: Option<Value>,
    /// RFC 8707 `resource` values.
    pub resource: Vec<String>,
}

/// Raw parameters, as sent: repeats kept so the checks can refuse them at the right step.
struct Raw(Vec<(String, String)>);

impl Raw {
    /// The value of a parameter sent once; `Err(name)` when repeated. Empty counts as absent
    /// (RFC 6749 §3.1).
    fn one(&self, name: &'static str) -> Result<Option<&str>, &'static str> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        match (it.next(), it.next()) {
            (Some(_), Some(_)) => Err(name),
            (Some((_, v)), None) if !v.is_empty() => Ok(Some(v.as_str())),
            _ => Ok(None),
        }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str()).collect()
    }

    /// The first parameter (other than the multi-valued ones) sent more than once.
    fn repeated(&self) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(i, (k, _))| {
            (!MULTI_VALUED.contains(&k.as_str()) && self.0[..i].iter().any(|(p, _)| p == k)).then_some(k.as_str())
        })
    }
}

/// Parses a query string or form body into raw pairs; a page error if it is not one.
pub fn parse_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, AuthorizeError> {
    let mut pairs = Vec::new();
    for (k, v) in form_urlencoded::parse(bytes) {
        if pairs.len() == MAX_PARAMS {
            return Err(AuthorizeError::page(400, "Invalid request", format!("The request has more than {MAX_PARAMS} parameters.")));
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Ok(pairs)
}

fn is_loopback_http(u: &url::Url) -> bool {
    u.scheme() == "http"
        && match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        }
}

/// RFC 6749 §3.1.2.3 and RFC 9700 §4.1.3: the requested URI equals a registered one as a
/// string; the only exception is the port of a loopback IP redirect URI of a native app
/// (RFC 8252 §7.3), which the app picks when it runs — scheme, address, path and query must
/// still be equal.
fn redirect_matches(requested: &str, registered: &str) -> bool {
    if requested == registered {
        return true;
    }
    let (Ok(req), Ok(reg)) = (url::Url::parse(requested), url::Url::parse(registered)) else { return false };
    if !is_loopback_http(&req) || !is_loopback_http(&reg) {
        return false;
    }
    // The requested URI must itself be in normalized form, so "equal but for the port" means
    // exactly that and no other difference hides behind parsing.
    if req.as_str() != requested {
        return false;
    }
    req.host() == reg.host()
        && req.path() == reg.path()
        && req.query() == reg.query()
        && req.fragment().is_none()
        && req.username().is_empty()
        && req.password().is_none()
}

/// RFC 7636 §4.2: a base64url SHA-256 is exactly 43 characters of the base64url alphabet.
fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Provider {
    /// Checks an authorization request, in this order:
    /// 1. no parameter past the limit (page);
    /// 2. `client_id` sent once and registered (page: RFC 6749 §4.1.2.1 forbids redirecting
    ///    when the client is unknown);
    /// 3. `redirect_uri` sent once and registered for the client, compared as a string
    ///    (only a loopback IP URI's port may differ, RFC 8252 §7.3); it may be left out only
    ///    when the client registered exactly one and the request is not OpenID Connect (OIDC
    ///    Core §3.1.2.1 requires it) (page);
    /// 4. `response_mode` is `query`, `fragment` or `form_post` (errors from here on go to
    ///    the redirect URI, in the requested mode when it is valid, else in the response
    ///    type's default: query for `code`, fragment for the implicit types, whose responses
    ///    never use the query — OAuth 2.0 Multiple Response Type Encoding Practices §5);
    /// 5. no request object: `request` → `request_not_supported`, `request_uri` →
    ///    `request_uri_not_supported` (OIDC Core §6; never silently ignored);
    /// 6. no parameter repeated but `resource` (RFC 6749 §3.1) — `invalid_request`;
    /// 7. `response_type` present — `invalid_request`; one this server serves (`code`,
    ///    `id_token`, `id_token token`, values in any order) — else
    ///    `unsupported_response_type`; the client registered for it (`code`: the code grant;
    ///    the `id_token` types: the legacy `implicit` grant, which only an operator can
    ///    register) — else `unauthorized_client` (RFC 6749 §4.1.2.1, §4.2.2.1: the server
    ///    supports the type, this client may not use it); for the implicit types,
    ///    `response_mode=query` — `invalid_request`;
    /// 8. `scope` present, well-formed, each one registered for the client — `invalid_scope`;
    ///    the implicit types also need `openid` (OIDC Core §3.2.2.1) — `invalid_scope`;
    /// 9. PKCE, for `code` (RFC 9700 §2.1.1: for every client): `code_challenge_method` is
    ///    `S256` (`plain` and a missing method, which RFC 7636 §4.3 reads as `plain`, are
    ///    refused) and `code_challenge` is a 43-character base64url value — `invalid_request`.
    ///    The implicit flow has no code, so no PKCE;
    /// 10. `nonce` and `state` at most 2048 bytes; `nonce` present for the implicit types
    ///     (OIDC Core §3.2.2.1: REQUIRED, it is the only replay protection of a front-channel
    ///     ID token) — `invalid_request`;
    /// 11. `prompt` values known, `none` alone — `invalid_request`;
    /// 12. `max_age` a non-negative integer; `display` one of `page`, `popup`, `touch`,
    ///     `wap` — `invalid_request`;
    /// 13. `claims` a JSON object whose members are `userinfo`/`id_token` objects —
    ///     `invalid_request`;
    /// 14. each `resource` an absolute URI without fragment (RFC 8707 §2) and an audience the
    ///     client may get tokens for — `invalid_request` / `invalid_target`;
    /// 15. `dpop_jkt` a thumbprint, and only with `code` (it binds the code); `id_token_hint`
    ///     an ID token this server issued to this client, expired or not (OIDC Core §3.1.2.1)
    ///     — `invalid_request`.
    ///
    /// Unknown parameters are ignored (RFC 6749 §3.1).
    pub async fn check_authorization_request(&self, pairs: Vec<(String, String)>) -> Result<AuthorizationRequest, AuthorizeError> {
        let raw = Raw(pairs);
        let client_id = match raw.one("client_id") {
            Ok(Some(id)) => id,
            Ok(None) => return Err(AuthorizeError::page(400, "Invalid request", "The request does not say which application it comes from (client_id is missing).")),
            Err(_) => return Err(AuthorizeError::page(400, "Invalid request", "The request names its application more than once (client_id is repeated).")),
        };
        let client = match self.load_client(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(AuthorizeError::page(400, "Unknown application", "The application this request comes from is not registered here (unknown client_id).")),
            Err(e) if e.code == ErrorCode::TemporarilyUnavailable => {
                return Err(AuthorizeError::page(503, "Temporarily unavailable", "Sign-in is temporarily unavailable. Please try again in a moment."));
            }
            Err(e) => {
                tracing::error!(error = ?e, "authorization request: loading the client failed");
                return Err(AuthorizeError::page(500, "Something went wrong", "The request could not be processed. Please try again later."));
            }
        };
        let openid = raw.one("scope").ok().flatten().is_some_and(|s| s.split(' ').any(|t| t == "openid"));
        let registered = &client.metadata.redirect_uris;
        let redirect_uri = match raw.one("redirect_uri") {
            Err(_) => return Err(AuthorizeError::page(400, "Invalid request", "The request names more than one redirect URI (redirect_uri is repeated).")),
            Ok(Some(uri)) => match registered.iter().find(|r| redirect_matches(uri, r)) {
                Some(_) => uri.to_owned(),
                None => {
                    return Err(AuthorizeError::page(
                        400,
                        "Invalid redirect URI",
                        format!("The redirect URI \"{}\" is not registered for this application.", uri.chars().take(300).collect::<String>()),
                    ));
                }
            },
            Ok(None) => match registered.as_slice() {
                [only] if !openid => only.clone(),
                [] => return Err(AuthorizeError::page(400, "Invalid request", "This application has no registered redirect URI, so it cannot use sign-in.")),
                _ => return Err(AuthorizeError::page(400, "Invalid request", "The request must name its redirect URI (redirect_uri is missing).")),
            },
        };

        // From here on, errors go back to the client.
        let state = raw.one("state").ok().flatten().map(str::to_owned);
        let mode_param = raw.one("response_mode");
        let mode = mode_param.ok().flatten().and_then(ResponseMode::parse);
        let response_type_param = raw.one("response_type").ok().flatten();
        let response_type = response_type_param.and_then(ResponseType::parse);
        let implicit = response_type.is_some_and(ResponseType::is_implicit);
        let error_mode = match mode {
            Some(ResponseMode::Query) | None if implicit => ResponseMode::Fragment,
            Some(m) => m,
            None => ResponseMode::Query,
        };
        let redirect = Redirect { uri: redirect_uri, mode: error_mode, state, issuer: self.cfg.issuer.clone() };
        let fail = |code: AuthzErrorCode, why: String| AuthorizeError::Redirect(RedirectResponse::error(redirect.clone(), code, why));
        let invalid = |why: &str| fail(AuthzErrorCode::InvalidRequest, why.to_owned());
        match mode_param {
            Ok(Some(m)) if mode.is_none() => {
                return Err(invalid(&format!("response_mode \"{}\" is not supported; use query, fragment or form_post", m.chars().take(64).collect::<String>())));
            }
            _ => {}
        }
        if raw.one("request").ok().flatten().is_some() || raw.all("request").len() > 1 {
            return Err(fail(AuthzErrorCode::RequestNotSupported, "request objects (request) are not supported; send the parameters directly".into()));
        }
        if raw.one("request_uri").ok().flatten().is_some() || raw.all("request_uri").len() > 1 {
            return Err(fail(AuthzErrorCode::RequestUriNotSupported, "request_uri is not supported; send the parameters directly".into()));
        }
        if let Some(name) = raw.repeated() {
            return Err(invalid(&format!("parameter \"{}\" is repeated", name.chars().take(64).collect::<String>())));
        }
        let one = |name: &'static str| raw.one(name).ok().flatten();
        let response_type = match (response_type_param, response_type) {
            (None, _) => return Err(invalid("response_type is missing")),
            (Some(other), None) => {
                return Err(fail(
                    AuthzErrorCode::UnsupportedResponseType,
                    format!("response_type \"{}\" is not supported; use code", other.chars().take(64).collect::<String>()),
                ));
            }
            (Some(_), Some(t)) => t,
        };
        let (grant, flow) = match response_type {
            ResponseType::Code => (GrantType::AuthorizationCode, "the authorization code flow"),
            _ => (GrantType::Implicit, "the implicit flow (a legacy flow an operator must enable per client)"),
        };
        if !client.allows_grant(grant) || !client.allows_response_type(response_type.as_str()) {
            return Err(fail(
                AuthzErrorCode::UnauthorizedClient,
                format!("the client is not registered for response_type \"{}\" ({flow}); use code", response_type.as_str()),
            ));
        }
        if implicit && mode == Some(ResponseMode::Query) {
            return Err(invalid(&format!(
                "response_mode=query is not allowed with response_type \"{}\": tokens never go in the query; use fragment or form_post",
                response_type.as_str()
            )));
        }
        let scope = check_scope(one("scope"), &client.metadata.scope).map_err(|why| fail(AuthzErrorCode::InvalidScope, why))?;
        if implicit && !scope.iter().any(|s| s == "openid") {
            return Err(fail(AuthzErrorCode::InvalidScope, "the id_token response types need the openid scope".into()));
        }
        let code_challenge = if implicit {
            String::new()
        } else {
            match one("code_challenge_method") {
                Some("S256") => {}
                None => return Err(invalid("PKCE is required: send code_challenge with code_challenge_method=S256")),
                Some(_) => return Err(invalid("code_challenge_method must be S256 (plain is not accepted)")),
            }
            match one("code_challenge") {
                Some(c) if is_s256_challenge(c) => c.to_owned(),
                Some(_) => return Err(invalid("code_challenge must be the base64url SHA-256 of the code verifier (43 characters)")),
                None => return Err(invalid("PKCE is required: code_challenge is missing")),
            }
        };
        let nonce = one("nonce").map(str::to_owned);
        if nonce.as_ref().is_some_and(|n| n.len() > MAX_OPAQUE_LEN) || redirect.state.as_ref().is_some_and(|s| s.len() > MAX_OPAQUE_LEN) {
            return Err(invalid("state and nonce must be at most 2048 bytes"));
        }
        if implicit && nonce.is_none() {
            return Err(invalid("nonce is required with the id_token response types (OIDC Core §3.2.2.1)"));
        }
        let prompt = check_prompt(one("prompt")).map_err(&invalid)?;
        let max_age = match one("max_age") {
            None => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| invalid("max_age must be a non-negative integer (seconds)"))?),
        };
        if let Some(d) = one("display")
            && !matches!(d, "page" | "popup" | "touch" | "wap")
        {
            return Err(invalid("display must be page, popup, touch or wap"));
        }
        let claims = match one("claims") {
            None => None,
            Some(c) => Some(check_claims_param(c).map_err(&invalid)?),
        };
        let resource = check_resource(&raw.all("resource"), &client, self).map_err(|(code, why)| fail(code, why))?;
        // RFC 9449 §10: a JWK SHA-256 thumbprint, base64url (43 characters).
        let dpop_jkt = match one("dpop_jkt") {
            None => None,
            Some(_) if implicit => return Err(invalid("dpop_jkt binds an authorization code; the implicit flow issues none")),
            Some(j) if is_s256_challenge(j) => Some(j.to_owned()),
            Some(_) => return Err(invalid("dpop_jkt must be a base64url SHA-256 JWK thumbprint")),
        };
        let redirect_uri_sent = raw.one("redirect_uri").ok().flatten().is_some();
        let hint_sub = match one("id_token_hint") {
            None => None,
            Some(hint) => match self.id_token_hint(hint) {
                Some((sub, auds)) if auds.iter().any(|a| a == client.client_id.as_str()) => Some(sub),
                _ => return Err(invalid("id_token_hint is not an ID token this server issued to this client")),
            },
        };
        Ok(AuthorizationRequest {
            client: client.clone(),
            response_type,
            scope,
            code_challenge,
            nonce,
            prompt,
            max_age,
            login_hint: one("login_hint").map(str::to_owned),
            hint_sub,
            ui_locales: one("ui_locales").map(str::to_owned),
            claims_locales: one("claims_locales").map(str::to_owned),
            acr_values: one("acr_values").map(str::to_owned),
            claims,
            resource,
            redirect,
            redirect_uri_sent,
            dpop_jkt,
        })
    }
}

/// RFC 6749 §3.3: present, well-formed, each registered for the client.
fn check_scope(requested: Option<&str>, registered: &[String]) -> Result<Vec<String>, String> {
    let Some(requested) = requested else {
        return Err("scope is missing; ask for the scopes the application needs (e.g. openid)".into());
    };
    let mut out: Vec<String> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !is_scope_token(s) {
            return Err("the scope parameter is malformed".into());
        }
        if !registered.iter().any(|r| r == s) {
            return Err(format!("scope \"{s}\" is not allowed for this client"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if out.is_empty() {
        return Err("scope is empty".into());
    }
    Ok(out)
}

fn check_prompt(p: Option<&str>) -> Result<Prompt, &'static str> {
    let mut out = Prompt::default();
    let Some(p) = p else { return Ok(out) };
    for v in p.split(' ').filter(|v| !v.is_empty()) {
        match v {
            "none" => out.none = true,
            "login" => out.login = true,
            "consent" => out.consent = true,
            "select_account" => out.select_account = true,
            _ => return Err("prompt values are none, login, consent and select_account"),
        }
    }
    if out.none && (out.login || out.consent || out.select_account) {
        return Err("prompt=none cannot be combined with other prompt values");
    }
    Ok(out)
}

/// OIDC Core §5.5: a JSON object; `userinfo` and `id_token`, when present, are objects whose
/// members are `null` or objects.
fn check_claims_param(text: &str) -> Result<Value, &'static str> {
    let bad = "claims must be a JSON object with userinfo and/or id_token objects (OIDC Core §5.5)";
    let v: Value = serde_json::from_str(text).map_err(|_| bad)?;
    let obj = v.as_object().ok_or(bad)?;
    for member in ["userinfo", "id_token"] {
        if let Some(m) = obj.get(member) {
            let m = m.as_object().ok_or(bad)?;
            if !m.values().all(|c| c.is_null() || c.is_object()) {
                return Err(bad);
            }
        }
    }
    Ok(v)
}

/// RFC 8707 §2: absolute URIs without fragment, each an audience the client may get tokens
/// for (its registered audiences, or the default audience for an operator's client without
/// any).
fn check_resource(values: &[&str], client: &Client, p: &Provider) -> Result<Vec<String>, (AuthzErrorCode, String)> {
    let allowed: Vec<&str> = if client.metadata.audience.is_empty() {
        vec![p.cfg.default_audience.as_str()]
    } else {
        client.metadata.audience.iter().map(String::as_str).collect()
    };
    let mut out: Vec<String> = Vec::new();
    for r in values {
        let ok = url::Url::parse(r).is_ok_and(|u| u.fragment().is_none()) && !r.contains('#');
        if !ok {
            return Err((AuthzErrorCode::InvalidRequest, "resource must be an absolute URI without a fragment".into()));
        }
        if !allowed.contains(r) {
            return Err((
                AuthzErrorCode::InvalidTarget,
                format!("the client may not obtain tokens for \"{}\"", r.chars().take(200).collect::<String>()),
            ));
        }
        if !out.iter().any(|o| o == r) {
            out.push((*r).to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_match_exactly_except_a_loopback_port() {
        let reg = "https://app.example/cb";
        assert!(redirect_matches(reg, reg));
        for other in [
            "https://app.example/cb/",
            "https://app.example/CB",
            "https://app.example/cb?x=1",
            "https://app.example:443/cb",
            "https://APP.example/cb",
            "http://app.example/cb",
            "https://app.example.evil/cb",
            "https://user@app.example/cb",
            "https://app.example/cb#f",
            "https://app.example/cb/../cb",
        ] {
            assert!(!redirect_matches(other, reg), "{other}");
        }
        let native = "http://127.0.0.1/callback";
        assert!(redirect_matches("http://127.0.0.1:51004/callback", native));
        assert!(redirect_matches("http://[::1]:8080/cb", "http://[::1]/cb"));
        for other in [
            "http://127.0.0.1:51004/other",
            "http://127.0.0.2:51004/callback",
            "http://localhost:51004/callback",
            "https://127.0.0.1:51004/callback",
            "http://127.0.0.1:51004/callback?x=1",
            "http://127.0.0.1:51004/./callback",
            "http://127.1:51004/callback",
        ] {
            assert!(!redirect_matches(other, native), "{other}");
        }
        // The port exception is for loopback URIs only.
        assert!(!redirect_matches("https://app.example:8443/cb", reg));
    }

    #[test]
    fn s256_challenges_are_43_base64url_characters() {
        assert!(is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="));
    }

    #[test]
    fn prompt_none_stands_alone_and_unknown_values_are_refused() {
        assert_eq!(check_prompt(Some("login consent")).unwrap(), Prompt { login: true, consent: true, ..Prompt::default() });
        assert!(check_prompt(Some("none")).unwrap().none);
        assert!(check_prompt(Some("none login")).is_err());
        assert!(check_prompt(Some("create")).is_err());
    }

    #[test]
    fn the_claims_parameter_must_be_shaped_as_oidc_says() {
        assert!(check_claims_param(r#"{"userinfo":{"email":{"essential":true},"name":null},"id_token":{"auth_time":null}}"#).is_ok());
        for bad in ["[]", "{", r#"{"userinfo":[]}"#, r#"{"id_token":{"email":true}}"#] {
            assert!(check_claims_param(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repeats_are_found_except_resource() {
        let raw = Raw(vec![("resource".into(), "a".into()), ("resource".into(), "b".into()), ("x".into(), "1".into())]);
        assert_eq!(raw.repeated(), None);
        let raw = Raw(vec![("scope".into(), "a".into()), ("x".into(), "1".into()), ("scope".into(), "b".into())]);
        assert_eq!(raw.repeated(), Some("scope"));
        assert_eq!(raw.one("scope"), Err("scope"));
    }
}
