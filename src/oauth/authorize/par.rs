//! Pushed authorization requests (RFC 9126): the client posts the authorization request's
//! parameters on the back channel, authenticated, and gets a short-lived, single-use
//! `request_uri` to send the browser with instead.

use super::{AuthorizeError, AuthzErrorCode};
use crate::model::unix_now;
use crate::oauth::interaction::artifact_id;
use crate::oauth::{ErrorCode, FormRequest, OAuthError, Provider};
use crate::store::ArtifactKind;
use serde::{Deserialize, Serialize};

/// RFC 9126 §2.2: the URN prefix of the `request_uri` values handed out.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request stays usable (RFC 9126 §2.2 suggests 5 to 600 seconds).
pub const PAR_LIFETIME_SECS: i64 = 60;

/// RFC 9126 §2.2 success response.
#[derive(Serialize)]
pub struct PushedRequest {
    /// The reference to send in the authorization request.
    pub request_uri: String,
    /// Its lifetime, seconds.
    pub expires_in: i64,
}

/// What is stored for a pushed request: its client and its parameters as sent.
#[derive(Serialize, Deserialize)]
struct Stored {
    client_id: String,
    pairs: Vec<(String, String)>,
}

impl Provider {
    /// `POST /par` (RFC 9126 §2), in order:
    /// 1. client authentication as at the token endpoint — `invalid_client`;
    /// 2. a `client_id` parameter, when sent, is the authenticated client (§2.1) —
    ///    `invalid_request`;
    /// 3. no `request_uri` parameter (§2.1) — `invalid_request`;
    /// 4. the parameters pass every check of the authorization endpoint, which then answers
    ///    here as RFC 6749 §5.2 JSON instead of a page or a redirect (§2.3) — that check's code;
    /// 5. stored under a new random `request_uri` for 60 seconds, single use.
    pub async fn push_authorization_request(&self, req: &FormRequest, pairs: Vec<(String, String)>) -> Result<PushedRequest, OAuthError> {
        let client = self.authenticate_client(req).await?;
        let id = client.client_id.as_str();
        let mut sent_ids = pairs.iter().filter(|(k, _)| k == "client_id");
        if sent_ids.any(|(_, v)| v != id) {
            return Err(OAuthError::invalid_request("client_id is not the authenticated client"));
        }
        if pairs.iter().any(|(k, _)| k == "request_uri") {
            return Err(OAuthError::invalid_request("request_uri must not be pushed (RFC 9126 §2.1)"));
        }
        // The checks read client_id from the parameters; a client authenticating by HTTP Basic
        // need not repeat it in the body.
        let mut pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(k, _)| !matches!(k.as_str(), "client_id" | "client_secret" | "client_assertion" | "client_assertion_type")).collect();
        pairs.push(("client_id".into(), id.to_owned()));
        if let Err(e) = self.check_authorization_request(pairs.clone()).await {
            return Err(as_back_channel_error(e));
        }
        let random = crate::secrets::random_text(32).map_err(OAuthError::server_error)?;
        let payload = serde_json::to_vec(&Stored { client_id: id.to_owned(), pairs }).map_err(OAuthError::server_error)?;
        self.store.artifacts.put(ArtifactKind::PushedRequest, &artifact_id(&random), &payload, unix_now() + PAR_LIFETIME_SECS, None).await?;
        Ok(PushedRequest { request_uri: format!("{REQUEST_URI_PREFIX}{random}"), expires_in: PAR_LIFETIME_SECS })
    }

    /// The parameters an authorization request stands for: its own, or — with a
    /// `request_uri` from `/par` — the pushed ones, used once (RFC 9126 §4). The request must
    /// name the same `client_id`; other parameters sent beside `request_uri` are ignored, so
    /// nothing unauthenticated is mixed in. Without `request_uri`, a client (or a server) that
    /// requires pushed requests is refused (§5, §6).
    pub async fn resolve_pushed(&self, pairs: Vec<(String, String)>) -> Result<Vec<(String, String)>, AuthorizeError> {
        let value = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let Some(request_uri) = value("request_uri") else {
            return self.refuse_unpushed(pairs).await;
        };
        let page = |msg: &str| AuthorizeError::Page { status: 400, title: "Invalid request", message: msg.to_owned() };
        let Some(random) = request_uri.strip_prefix(REQUEST_URI_PREFIX) else {
            // Not one of ours: request objects by reference are not supported.
            return Ok(pairs);
        };
        let consumed = self.store.artifacts.consume(ArtifactKind::PushedRequest, &artifact_id(random), unix_now()).await;
        let stored = match consumed {
            Ok(Some(bytes)) => serde_json::from_slice::<Stored>(&bytes).map_err(|_| page("The pushed request could not be read."))?,
            Ok(None) | Err(crate::store::StoreError::AlreadyConsumed { .. }) => {
                return Err(page("The request has expired or was already used (request_uri). Go back to the application and start again."));
            }
            Err(crate::store::StoreError::Unavailable(_)) => {
                return Err(AuthorizeError::Page { status: 503, title: "Temporarily unavailable", message: "Sign-in is temporarily unavailable. Please try again in a moment.".into() });
            }
            Err(e) => {
                tracing::error!(error = %e, "reading a pushed authorization request failed");
                return Err(AuthorizeError::Page { status: 500, title: "Something went wrong", message: "The request could not be processed.".into() });
            }
        };
        if value("client_id").as_deref() != Some(stored.client_id.as_str()) {
            return Err(page("The request_uri belongs to another application (client_id does not match)."));
        }
        Ok(stored.pairs)
    }

    async fn refuse_unpushed(&self, pairs: Vec<(String, String)>) -> Result<Vec<(String, String)>, AuthorizeError> {
        let client_id = pairs.iter().find(|(k, _)| k == "client_id").map(|(_, v)| v.as_str()).unwrap_or("");
        let required = self.cfg.require_pushed_authorization_requests
            || matches!(self.load_client(client_id).await, Ok(Some(c)) if c.metadata.require_pushed_authorization_requests);
        if !required {
            return Ok(pairs);
        }
        // Run the ordinary checks first, so errors before the redirect URI is verified stay
        // pages; then refuse at the (verified) redirect URI.
        match self.check_authorization_request(pairs).await {
            Err(e) => Err(e),
            Ok(r) => Err(AuthorizeError::Redirect(super::RedirectResponse::error(
                r.redirect,
                AuthzErrorCode::InvalidRequest,
                "this client must use pushed authorization requests (RFC 9126): POST the parameters to the pushed_authorization_request_endpoint first",
            ))),
        }
    }
}

/// RFC 9126 §2.3: the authorization endpoint's refusal, as a back-channel error.
fn as_back_channel_error(e: AuthorizeError) -> OAuthError {
    match e {
        AuthorizeError::Page { status, message, .. } if status >= 500 => {
            let mut err = OAuthError::new(ErrorCode::TemporarilyUnavailable, message);
            err.retry_after = Some(crate::oauth::error::STORE_RETRY_AFTER);
            err
        }
        AuthorizeError::Page { message, .. } => OAuthError::invalid_request(message),
        AuthorizeError::Redirect(r) => {
            let code = r.params.iter().find(|(k, _)| *k == "error").map_or("invalid_request", |(_, v)| v.as_str());
            let description = r.params.iter().find(|(k, _)| *k == "error_description").map_or(String::new(), |(_, v)| v.clone());
            let code = match code {
                "unauthorized_client" => ErrorCode::UnauthorizedClient,
                "invalid_scope" => ErrorCode::InvalidScope,
                "invalid_target" => ErrorCode::InvalidTarget,
                "unsupported_response_type" => ErrorCode::UnsupportedResponseType,
                _ => ErrorCode::InvalidRequest,
            };
            OAuthError::new(code, description)
        }
    }
}
