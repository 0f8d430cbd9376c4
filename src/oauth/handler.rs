//! The provider's HTTP surface: the endpoint table and thin axum handlers that turn requests
//! into plain values, call [`Provider`], and render results or RFC 6749 errors.

use super::{Challenge, DpopHeader, ErrorCode, FormRequest, OAuthError, Params, Provider, RegistrationMode};
use crate::http::problem::Problem;
use super::authorize::{self, AuthorizeError, RedirectResponse, ResponseMode};
use super::interaction::logout::{LogoutError, LogoutRequest};
use super::interaction::{self, LoginOutcome, Pending, Session, SessionCookie, Step};
use crate::model::{Client, User};
use super::pages;
use super::token::TokenResponse;
use super::userinfo::UserinfoRequest;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use crate::http::client_ip::ClientAddr;
use axum::Extension;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

type Shared = State<Arc<Provider>>;
/// Who is calling, as the listener resolved it (behind trusted proxies: the client).
type Client_ = Option<Extension<ClientAddr>>;

fn client_ip(c: Client_) -> IpAddr {
    c.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(a)| a.ip)
}

/// The endpoint table. Mounted under the issuer's path, if it has one.
pub fn routes(p: Arc<Provider>) -> Router {
    let mut r = Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata_get))
        // OIDC Discovery §4: appended to the issuer, so nested under its path below.
        .route("/.well-known/openid-configuration", get(metadata_get))
        .route("/jwks", get(jwks_get))
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/par", post(par_post))
        .route("/logout", get(logout_get).post(logout_post))
        .route("/logout/confirm", post(logout_confirm))
        .route("/interaction/{id}", get(interaction_get))
        .route("/interaction/{id}/login", post(login_post))
        .route("/interaction/{id}/consent", post(consent_post))
        .route("/assets/warden.css", get(stylesheet_get))
        .route("/token", post(token_post))
        .route("/introspect", post(introspect_post))
        .route("/revoke", post(revoke_post))
        .route("/userinfo", get(userinfo_get).post(userinfo_post));
    if p.cfg.registration.mode != RegistrationMode::Disabled {
        r = r.route("/register", post(register_post)).route(
            "/register/{client_id}",
            get(registration_get).put(registration_put).delete(registration_delete),
        );
    }
    let r = r
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(p.cfg.max_body_size));
    let issuer_path = url::Url::parse(&p.cfg.issuer).map(|u| u.path().trim_end_matches('/').to_owned());
    let r = match issuer_path {
        Ok(path) if !path.is_empty() => Router::new()
            .route(&format!("/.well-known/oauth-authorization-server{path}"), get(metadata_get))
            .nest(&path, r),
        _ => r,
    };
    r.fallback(|| async { Problem::not_found().into_response() }).with_state(p)
}

/// RFC 6749 JSON for a wrong method on an OAuth endpoint (axum adds the `Allow` header).
async fn method_not_allowed() -> Response {
    let body = ErrorBody { error: ErrorCode::InvalidRequest.as_str(), error_description: "this endpoint does not accept that method" };
    no_store((StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response())
}

fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    error_description: &'a str,
}

/// RFC 6749 §5.2 rendering: JSON body, status from the code, `no-store`, and the challenge
/// headers RFC 6749 §5.2 and RFC 6750 §3 ask for. Causes of 5xx errors are logged here, once.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status.unwrap_or(self.code.status())).unwrap_or(StatusCode::BAD_REQUEST);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // A dependency is down: one line per request at warn, not an error storm.
            tracing::warn!(error = %self, cause = ?self.source, "request failed: temporarily unavailable");
        } else if status.is_server_error() {
            tracing::error!(error = %self, cause = ?self.source, "request failed");
        }
        let body = ErrorBody { error: self.code.as_str(), error_description: &self.description };
        let mut resp = no_store((status, Json(body)).into_response());
        let h = resp.headers_mut();
        let challenges: Vec<String> = match self.challenge {
            Some(Challenge::Basic) => vec!["Basic realm=\"warden\", charset=\"UTF-8\"".into()],
            Some(Challenge::Bearer) => vec!["Bearer realm=\"warden\"".into()],
            Some(Challenge::BearerInvalidToken) => vec!["Bearer realm=\"warden\", error=\"invalid_token\"".into()],
            Some(Challenge::Resource { dpop, error }) => {
                let scheme = if dpop { format!("DPoP algs=\"{DPOP_ALGS}\",") } else { "Bearer".into() };
                vec![format!("{scheme} realm=\"warden\", error=\"{}\"", error.as_str())]
            }
            Some(Challenge::AnyToken) => vec!["Bearer realm=\"warden\"".into(), format!("DPoP algs=\"{DPOP_ALGS}\", realm=\"warden\"")],
            None => vec![],
        };
        for c in challenges {
            if let Ok(v) = HeaderValue::from_str(&c) {
                h.append(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(retry) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(retry.as_secs().max(1)));
        }
        if let Some(nonce) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            h.insert(DPOP_NONCE, nonce);
        }
        resp
    }
}

/// A body that could not be read: 413 when over the limit, 400 otherwise.
fn body_rejection(rej: BytesRejection) -> Response {
    let status = rej.status();
    let description = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the request body is too large"
    } else {
        "the request body could not be read"
    };
    let body = ErrorBody { error: ErrorCode::InvalidRequest.as_str(), error_description: description };
    no_store((status, Json(body)).into_response())
}

/// RFC 9449 §7.1: the proof algorithms a protected resource accepts.
const DPOP_ALGS: &str = "ES256 RS256 PS256 EdDSA";

/// RFC 9449 §4.1, §8.1.
const DPOP: header::HeaderName = header::HeaderName::from_static("dpop");
const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

fn dpop_header(h: &HeaderMap) -> DpopHeader {
    let mut values = h.get_all(DPOP).into_iter();
    match (values.next(), values.next()) {
        (None, _) => DpopHeader::Absent,
        (Some(v), None) => DpopHeader::One(v.to_str().unwrap_or_default().to_owned()),
        (Some(_), Some(_)) => DpopHeader::Many,
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Builds the plain request the protocol code takes; a response if the body is unusable.
/// Takes the whole request rather than a `HeaderMap` extractor, which would clone every
/// header: only two are read.
async fn form_request(p: &Provider, peer: IpAddr, req: Request) -> Result<FormRequest, Box<Response>> {
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let dpop = dpop_header(req.headers());
    let body = Bytes::from_request(req, p).await.map_err(|r| Box::new(body_rejection(r)))?;
    let content_type = content_type.as_ref().and_then(|v| v.to_str().ok());
    let params = Params::parse_form(content_type, &body).map_err(|e| Box::new(e.into_response()))?;
    Ok(FormRequest { params, authorization, peer, dpop })
}

/// A JSON success with `no-store`, or the error.
fn json_no_store(r: Result<impl Serialize, OAuthError>) -> Response {
    match r {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn metadata_get(State(p): Shared) -> Response {
    let mut resp = Json(p.metadata()).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}

async fn jwks_get(State(p): Shared) -> Response {
    let max_age = (p.cfg.keys.rotation_delay.as_secs() / 2).min(300);
    let cache = HeaderValue::from_str(&format!("public, max-age={max_age}")).unwrap_or(HeaderValue::from_static("no-cache"));
    let jwks = p.ring.current().jwks();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (header::CACHE_CONTROL, cache)], jwks.to_string())
        .into_response()
}

async fn token_post(State(p): Shared, client: Client_, req: Request) -> Response {
    match form_request(&p, client_ip(client), req).await {
        Ok(req) => match p.token(&req).await {
            Ok(token) => token_response(&token),
            Err(e) => e.into_response(),
        },
        Err(resp) => *resp,
    }
}

/// RFC 6749 §5.1: what `json_no_store` renders, in one buffer sized for the token, with the
/// header map sized for every header the response will carry (these three, the common
/// layers' three, and hyper's `date` and `content-length`).
fn token_response(token: &TokenResponse) -> Response {
    let json = match token.to_json() {
        Ok(json) => json,
        Err(e) => return OAuthError::server_error(e).into_response(),
    };
    let mut resp = Response::new(Body::from(json));
    let h = resp.headers_mut();
    h.reserve(8);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(nonce) = token.dpop_nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
        h.insert(DPOP_NONCE, nonce);
    }
    no_store(resp)
}

/// Headers every HTML page gets: no caching, no framing (clickjacking), a strict policy.
fn html_page(status: StatusCode, html: String, csp: &str) -> Response {
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(csp) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    resp
}

fn request_id(h: &HeaderMap) -> Option<String> {
    header_str(h, header::HeaderName::from_static("x-request-id")).map(str::to_owned)
}

fn error_page(p: &Provider, status: u16, title: &str, message: &str, request_id: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    html_page(status, p.pages.error(title, message, request_id), pages::CONTENT_SECURITY_POLICY)
}

/// An authorization response for the client: a 303 to the redirect URI (RFC 9700 §4.12:
/// never 307, which would repost a login form's body) for the query and fragment modes, the
/// auto-submitting page for `form_post`.
fn authorization_response(p: &Provider, r: &RedirectResponse) -> Response {
    match r.to.mode {
        ResponseMode::FormPost => {
            let html = p.pages.form_post(&r.to.uri, &r.fields());
            html_page(StatusCode::OK, html, &pages::form_post_csp(&r.form_action_origin()))
        }
        ResponseMode::Query | ResponseMode::Fragment => match HeaderValue::from_str(&r.location()) {
            Ok(location) => {
                let mut resp = StatusCode::SEE_OTHER.into_response();
                resp.headers_mut().insert(header::LOCATION, location);
                resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp
            }
            Err(_) => error_page(p, 400, "Invalid request", "The response could not be sent back to the application.", None),
        },
    }
}

/// The value of cookie `name` (RFC 6265 §5.4: `name=value` pairs split by `;`).
fn cookie<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The browser's session, if its cookie names a live one.
async fn browser_session(p: &Provider, h: &HeaderMap) -> Result<Option<Session>, OAuthError> {
    match cookie(h, SessionCookie::for_issuer(&p.cfg.issuer).name) {
        Some(v) => p.session(v).await,
        None => Ok(None),
    }
}

/// A page for a failure of the browser flow itself (the store is down, say).
fn flow_error(p: &Provider, e: OAuthError, rid: Option<&str>) -> Response {
    if e.code == ErrorCode::TemporarilyUnavailable {
        error_page(p, 503, "Temporarily unavailable", "Sign-in is temporarily unavailable. Please try again in a moment.", rid)
    } else {
        tracing::error!(error = ?e, "browser flow failed");
        error_page(p, 500, "Something went wrong", "The request could not be processed. Please try again later.", rid)
    }
}

fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn interaction_url(p: &Provider, id: &str) -> String {
    format!("{}/interaction/{id}", super::issuer_path(&p.cfg.issuer))
}

/// Where a decided step sends the browser: the client, or the interaction's page.
fn step_response(p: &Provider, step: Step) -> Response {
    match step {
        Step::Respond(r) => authorization_response(p, &r),
        Step::Login { id, .. } | Step::Consent { id, .. } => see_other(&interaction_url(p, &id)),
    }
}

async fn authorize(p: &Provider, headers: &HeaderMap, pairs: Result<Vec<(String, String)>, AuthorizeError>) -> Response {
    let rid = request_id(headers);
    let checked = match pairs {
        Ok(pairs) => match p.resolve_pushed(pairs).await {
            Ok(pairs) => p.check_authorization_request(pairs).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let request = match checked {
        Ok(r) => r,
        Err(AuthorizeError::Page { status, title, message }) => return error_page(p, status, title, &message, rid.as_deref()),
        Err(AuthorizeError::Redirect(r)) => return authorization_response(p, &r),
    };
    // Past this point the redirect URI is verified: a failure goes back to the client.
    let redirect = request.redirect.clone();
    let session = match browser_session(p, headers).await {
        Ok(s) => s,
        Err(e) => return failed_at_client(p, redirect, e),
    };
    match p.decide(request, session.as_ref()).await {
        Ok(step) => step_response(p, step),
        Err(e) => failed_at_client(p, redirect, e),
    }
}

/// OIDC Core §3.1.2.6 / RFC 6749 §4.1.2.1: `temporarily_unavailable` or `server_error` to the
/// (verified) client.
fn failed_at_client(p: &Provider, to: authorize::Redirect, e: OAuthError) -> Response {
    let code = if e.code == ErrorCode::TemporarilyUnavailable {
        authorize::AuthzErrorCode::TemporarilyUnavailable
    } else {
        tracing::error!(error = ?e, "authorization request failed");
        authorize::AuthzErrorCode::ServerError
    };
    authorization_response(p, &RedirectResponse::error(to, code, "the request could not be completed; try again later"))
}

/// The interaction's page: login, or consent when the browser is signed in. A fresh CSRF
/// cookie is set when the browser has none.
async fn interaction_get(State(p): Shared, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let rid = request_id(&headers);
    let (pending, client) = match p.interaction(&id).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired_page(&p, rid.as_deref()),
        Err(e) => return flow_error(&p, e, rid.as_deref()),
    };
    let session = match browser_session(&p, &headers).await {
        Ok(s) => s,
        Err(e) => return flow_error(&p, e, rid.as_deref()),
    };
    let user = match p.signed_in_user(session.as_ref(), &pending).await {
        Ok(u) => u,
        Err(e) => return flow_error(&p, e, rid.as_deref()),
    };
    let (csrf_cookie, set_cookie) = browser_binding(&p, &headers);
    let mut resp = match user {
        Some(user) => consent_page(&p, &id, &csrf_cookie, &client, &pending, &user),
        None => {
            let prefill = pending.login_hint.clone().unwrap_or_default();
            login_page(&p, &id, &csrf_cookie, &pending, &interaction::display_name(&client), &prefill, None)
        }
    };
    if let Some(c) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// The browser's CSRF cookie, and a `Set-Cookie` when it has none yet.
fn browser_binding(p: &Provider, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let cookies = SessionCookie::for_issuer(&p.cfg.issuer);
    match cookie(headers, cookies.csrf_name()).filter(|v| (16..=128).contains(&v.len())) {
        Some(v) => (v.to_owned(), None),
        None => {
            let v = crate::secrets::random_text(32).unwrap_or_default();
            let set = HeaderValue::from_str(&cookies.set(cookies.csrf_name(), &v, 24 * 3600)).ok();
            (v, set)
        }
    }
}

fn expired_page(p: &Provider, rid: Option<&str>) -> Response {
    error_page(p, 400, "This sign-in has expired", "This sign-in request has expired or was already used. Go back to the application and start again.", rid)
}

/// The policy of an interaction's pages: their forms end at `pending`'s redirect URI.
fn interaction_csp(pending: &Pending) -> String {
    pages::interaction_csp(&authorize::form_action_origin(&pending.redirect_uri))
}

fn login_page(p: &Provider, id: &str, csrf_cookie: &str, pending: &Pending, client_name: &str, username: &str, error: Option<&str>) -> Response {
    let action = format!("{}/login", interaction_url(p, id));
    let html = p.pages.login(&action, &p.csrf_token(csrf_cookie, id), client_name, username, error);
    html_page(StatusCode::OK, html, &interaction_csp(pending))
}

fn consent_page(p: &Provider, id: &str, csrf_cookie: &str, client: &Client, pending: &Pending, user: &User) -> Response {
    let action = format!("{}/consent", interaction_url(p, id));
    let scopes: Vec<String> = pending.scope.iter().map(|s| interaction::describe_scope(s)).collect();
    let m = &client.metadata;
    let links: Vec<(&str, &str)> = [("Privacy policy", &m.policy_uri), ("Terms of service", &m.tos_uri), ("Website", &m.client_uri)]
        .into_iter()
        .filter_map(|(label, url)| url.as_deref().map(|u| (label, u)))
        .collect();
    let username = user.username.as_str();
    let client_name = interaction::display_name(client);
    let html = p.pages.consent(&action, &p.csrf_token(csrf_cookie, id), (&client_name, m.logo_uri.as_deref()), username, &scopes, &links);
    html_page(StatusCode::OK, html, &interaction_csp(pending))
}

/// A form posted to an interaction: its fields, after the CSRF check against this browser's
/// cookie. A page when the interaction is gone or the check fails.
async fn interaction_form(p: &Provider, id: &str, req: Request) -> Result<(HeaderMap, Vec<(String, String)>, Pending, Arc<Client>), Response> {
    let headers = req.headers().clone();
    let rid = request_id(&headers);
    let body = Bytes::from_request(req, p).await.map_err(|_| error_page(p, 413, "Invalid request", "The form is too large.", rid.as_deref()))?;
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().take(16).collect();
    let (pending, client) = match p.interaction(id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(expired_page(p, rid.as_deref())),
        Err(e) => return Err(flow_error(p, e, rid.as_deref())),
    };
    let csrf_cookie = cookie(&headers, SessionCookie::for_issuer(&p.cfg.issuer).csrf_name()).unwrap_or("");
    let token = fields.iter().find(|(k, _)| k == "csrf").map_or("", |(_, v)| v.as_str());
    if !p.csrf_ok(csrf_cookie, id, token) {
        tracing::debug!(target: "audit", event = "csrf_refused", interaction = "login_or_consent");
        return Err(error_page(
            p,
            403,
            "This form cannot be accepted",
            "The form expired or was opened in another browser. Go back to the application and start again.",
            rid.as_deref(),
        ));
    }
    Ok((headers, fields, pending, client))
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

async fn login_post(State(p): Shared, Path(id): Path<String>, client_addr: Client_, req: Request) -> Response {
    let (headers, fields, pending, client) = match interaction_form(&p, &id, req).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let rid = request_id(&headers);
    let csrf_cookie = cookie(&headers, SessionCookie::for_issuer(&p.cfg.issuer).csrf_name()).unwrap_or("").to_owned();
    let username = field(&fields, "username").to_owned();
    let password = crate::secrets::password::Password::new(field(&fields, "password").to_owned());
    let name = interaction::display_name(&client);
    let user = match p.login(&username, password, client_ip(client_addr)).await {
        LoginOutcome::Success(u) => u,
        LoginOutcome::Invalid => {
            return login_page(&p, &id, &csrf_cookie, &pending, &name, &username, Some("The username or password is not right."));
        }
        LoginOutcome::Throttled(wait) => {
            let mut resp = error_page(&p, 429, "Too many attempts", "Too many sign-in attempts. Wait a while, then try again.", rid.as_deref());
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
            return resp;
        }
        LoginOutcome::Unavailable => {
            return error_page(&p, 503, "Temporarily unavailable", "Sign-in is temporarily unavailable. Please try again in a moment.", rid.as_deref());
        }
    };
    let (session, session_cookie) = match p.start_session(&user, &["pwd"]).await {
        Ok(s) => s,
        Err(e) => return flow_error(&p, e, rid.as_deref()),
    };
    tracing::debug!(target: "audit", event = "login", sub = %user.id.as_str());
    let step = match p.after_login(&id, pending, &client, &session, *user).await {
        Ok(step) => step,
        Err(e) => return flow_error(&p, e, rid.as_deref()),
    };
    let mut resp = step_response(&p, step);
    let cookies = SessionCookie::for_issuer(&p.cfg.issuer);
    let max_age = p.cfg.session_lifetime.as_secs() as i64;
    if let Ok(v) = HeaderValue::from_str(&cookies.set(cookies.name, &session_cookie, max_age)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

async fn consent_post(State(p): Shared, Path(id): Path<String>, req: Request) -> Response {
    let (headers, fields, pending, client) = match interaction_form(&p, &id, req).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let rid = request_id(&headers);
    let session = match browser_session(&p, &headers).await {
        Ok(s) => s,
        Err(e) => return flow_error(&p, e, rid.as_deref()),
    };
    let (Some(session), Ok(Some(user))) = (session.as_ref(), p.signed_in_user(session.as_ref(), &pending).await) else {
        // Signed out (or another user) meanwhile: sign in again.
        return see_other(&interaction_url(&p, &id));
    };
    let allow = field(&fields, "decision") == "allow";
    match p.after_consent(&id, &pending, &client, session, &user, allow).await {
        Ok(r) => authorization_response(&p, &r),
        Err(e) => flow_error(&p, e, rid.as_deref()),
    }
}

/// RP-Initiated Logout §2: GET and POST. A signed-in browser gets the confirmation page;
/// one that is not signed in goes straight on (nothing to end).
async fn logout(p: &Provider, headers: &HeaderMap, pairs: Vec<(String, String)>) -> Response {
    let rid = request_id(headers);
    let (request, client) = match p.check_logout(&pairs).await {
        Ok(r) => r,
        Err(LogoutError(why)) => return error_page(p, 400, "Cannot sign out here", why, rid.as_deref()),
    };
    let session = match browser_session(p, headers).await {
        Ok(s) => s,
        Err(e) => return flow_error(p, e, rid.as_deref()),
    };
    let user = match &session {
        Some(s) => p.store.catalog.user(&crate::model::UserId(s.sub.clone())).await.ok().flatten(),
        None => None,
    };
    let Some(user) = user else { return signed_out(p, &request) };
    let id = match p.save_logout(&request).await {
        Ok(id) => id,
        Err(e) => return flow_error(p, e, rid.as_deref()),
    };
    let (csrf_cookie, set_cookie) = browser_binding(p, headers);
    let action = format!("{}/logout/confirm", super::issuer_path(&p.cfg.issuer));
    let client_name = client.as_deref().map(interaction::display_name);
    let html = p.pages.logout(&action, &p.csrf_token(&csrf_cookie, &id), &id, user.username.as_str(), client_name.as_deref());
    // The confirmation's 303 goes to the client's post-logout URI: its form must be let lead there.
    let csp = match &request.post_logout_redirect_uri {
        Some(uri) => pages::interaction_csp(&authorize::form_action_origin(uri)),
        None => pages::CONTENT_SECURITY_POLICY.to_owned(),
    };
    let mut resp = html_page(StatusCode::OK, html, &csp);
    if let Some(c) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// After signing out: back to the client's registered URI with its `state`, or a page.
fn signed_out(p: &Provider, request: &LogoutRequest) -> Response {
    match request.return_to() {
        Some(to) => see_other(&to),
        None => html_page(StatusCode::OK, p.pages.message("You are signed out", "You can close this window."), pages::CONTENT_SECURITY_POLICY),
    }
}

async fn logout_get(State(p): Shared, req: Request) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().take(32).collect();
    logout(&p, req.headers(), pairs).await
}

async fn logout_post(State(p): Shared, req: Request) -> Response {
    let headers = req.headers().clone();
    let body = match Bytes::from_request(req, &p).await {
        Ok(b) => b,
        Err(_) => return error_page(&p, 413, "Invalid request", "The request is too large.", request_id(&headers).as_deref()),
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().take(32).collect();
    logout(&p, &headers, pairs).await
}

/// The confirmation: CSRF-checked against this browser, the request used once; ends the
/// session (store and cookie).
async fn logout_confirm(State(p): Shared, req: Request) -> Response {
    let headers = req.headers().clone();
    let rid = request_id(&headers);
    let body = match Bytes::from_request(req, &p).await {
        Ok(b) => b,
        Err(_) => return error_page(&p, 413, "Invalid request", "The request is too large.", rid.as_deref()),
    };
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().take(16).collect();
    let id = field(&fields, "logout");
    let cookies = SessionCookie::for_issuer(&p.cfg.issuer);
    let csrf_cookie = cookie(&headers, cookies.csrf_name()).unwrap_or("");
    if !p.csrf_ok(csrf_cookie, id, field(&fields, "csrf")) {
        return error_page(&p, 403, "This form cannot be accepted", "The form expired or was opened in another browser.", rid.as_deref());
    }
    let request = match p.take_logout(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(&p, 400, "This sign-out has expired", "Start signing out again from the application.", rid.as_deref()),
        Err(e) => return flow_error(&p, e, rid.as_deref()),
    };
    match browser_session(&p, &headers).await {
        Ok(Some(session)) => {
            if let Err(e) = p.end_session(&session).await {
                return flow_error(&p, e, rid.as_deref());
            }
            tracing::debug!(target: "audit", event = "logout", sub = %session.sub);
        }
        Ok(None) => {}
        Err(e) => return flow_error(&p, e, rid.as_deref()),
    }
    let mut resp = signed_out(&p, &request);
    if let Ok(v) = HeaderValue::from_str(&cookies.set(cookies.name, "", 0)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// OIDC Core §3.1.2.1: GET with the parameters in the query.
async fn authorize_get(State(p): Shared, req: Request) -> Response {
    let pairs = authorize::parse_pairs(req.uri().query().unwrap_or("").as_bytes());
    authorize(&p, req.headers(), pairs).await
}

/// OIDC Core §3.1.2.1: POST with the parameters form-encoded in the body.
async fn authorize_post(State(p): Shared, req: Request) -> Response {
    let rid = request_id(req.headers());
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form {
        return error_page(&p, 415, "Invalid request", "The request body must be a form (application/x-www-form-urlencoded).", rid.as_deref());
    }
    let headers = req.headers().clone();
    let pairs = match Bytes::from_request(req, &p).await {
        Ok(body) => authorize::parse_pairs(&body),
        Err(_) => return error_page(&p, 413, "Invalid request", "The request is too large.", rid.as_deref()),
    };
    authorize(&p, &headers, pairs).await
}

async fn stylesheet_get(State(p): Shared) -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        p.pages.css(),
    )
        .into_response()
}

/// RFC 9126 §2: 201 with the `request_uri`, or RFC 6749 §5.2 JSON.
async fn par_post(State(p): Shared, client: Client_, req: Request) -> Response {
    match form_request(&p, client_ip(client), req).await {
        Ok(form) => {
            let pairs = form.params.pairs().to_vec();
            match p.push_authorization_request(&form, pairs).await {
                Ok(pushed) => no_store((StatusCode::CREATED, Json(pushed)).into_response()),
                Err(e) => e.into_response(),
            }
        }
        Err(resp) => *resp,
    }
}

async fn introspect_post(State(p): Shared, client: Client_, req: Request) -> Response {
    match form_request(&p, client_ip(client), req).await {
        Ok(req) => json_no_store(p.introspect(&req).await),
        Err(resp) => *resp,
    }
}

async fn revoke_post(State(p): Shared, client: Client_, req: Request) -> Response {
    match form_request(&p, client_ip(client), req).await {
        Ok(req) => match p.revoke(&req).await {
            Ok(()) => no_store(StatusCode::OK.into_response()),
            Err(e) => e.into_response(),
        },
        Err(resp) => *resp,
    }
}

/// The parts of a userinfo request; the body is read only for POST.
async fn userinfo_request(p: &Provider, req: Request, post: bool) -> Result<UserinfoRequest, Box<Response>> {
    let token_in_query = req.uri().query().is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"));
    let authorization = req.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or_default().to_owned());
    let dpop = dpop_header(req.headers());
    let content_type = header_str(req.headers(), header::CONTENT_TYPE).map(str::to_owned);
    let form = if post {
        let body = Bytes::from_request(req, p).await.map_err(|r| Box::new(body_rejection(r)))?;
        match content_type {
            // RFC 6750 §2.2: a token in the body comes form-encoded; other bodies carry none.
            Some(ct) if ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded") => {
                Some(Params::parse_form(Some(&ct), &body).map_err(|e| Box::new(e.into_response()))?)
            }
            _ => None,
        }
    } else {
        None
    };
    let method = if post { "POST" } else { "GET" };
    Ok(UserinfoRequest { method, authorization, dpop, token_in_query, form })
}

async fn userinfo(p: &Provider, req: Request, post: bool) -> Response {
    match userinfo_request(p, req, post).await {
        Ok(req) => json_no_store(p.userinfo(&req).await),
        Err(resp) => *resp,
    }
}

/// OIDC Core §5.3.1: GET and POST both.
async fn userinfo_get(State(p): Shared, req: Request) -> Response {
    userinfo(&p, req, false).await
}

async fn userinfo_post(State(p): Shared, req: Request) -> Response {
    userinfo(&p, req, true).await
}

fn json_body(h: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Box<Response>> {
    let body = body.map_err(|r| Box::new(body_rejection(r)))?;
    let ct = header_str(h, header::CONTENT_TYPE).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return Err(Box::new(OAuthError::invalid_request("the body must be application/json").into_response()));
    }
    Ok(body)
}

fn registration_result(r: Result<serde_json::Value, OAuthError>, status: StatusCode) -> Response {
    match r {
        Ok(v) => no_store((status, Json(v)).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn register_post(State(p): Shared, client: Client_, h: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match json_body(&h, body) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    registration_result(p.register(header_str(&h, header::AUTHORIZATION), &body, client_ip(client)).await, StatusCode::CREATED)
}

/// A client id from the path; one that does not decode names no client (RFC 7592: 401).
fn path_id(id: Result<Path<String>, PathRejection>) -> String {
    id.map(|Path(id)| id).unwrap_or_default()
}

async fn registration_get(State(p): Shared, id: Result<Path<String>, PathRejection>, h: HeaderMap) -> Response {
    registration_result(p.registration_read(&path_id(id), header_str(&h, header::AUTHORIZATION)).await, StatusCode::OK)
}

async fn registration_put(State(p): Shared, id: Result<Path<String>, PathRejection>, h: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let id = path_id(id);
    let body = match json_body(&h, body) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    registration_result(p.registration_update(&id, header_str(&h, header::AUTHORIZATION), &body).await, StatusCode::OK)
}

async fn registration_delete(State(p): Shared, id: Result<Path<String>, PathRejection>, h: HeaderMap) -> Response {
    let id = path_id(id);
    match p.registration_delete(&id, header_str(&h, header::AUTHORIZATION)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_response_is_json_and_never_cached() {
        let t = TokenResponse { access_token: "a.b.c".into(), token_type: "Bearer", expires_in: 60, scope: Some("read".into()), id_token: None, refresh_token: None, dpop_nonce: None };
        let resp = token_response(&t);
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::PRAGMA], "no-cache");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        assert_eq!(body, serde_json::to_vec(&t).unwrap());
    }
}
