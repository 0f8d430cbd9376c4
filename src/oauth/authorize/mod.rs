//! The authorization endpoint (RFC 6749 §3.1, §4.1.1; OIDC Core §3.1.2), GET and POST.
//!
//! - `request.rs`: the request's checks, in the order they must run. Until the client and
//!   its redirect URI are verified, an error is a page for the user ([`AuthorizeError::Page`]),
//!   never a redirect (RFC 6749 §4.1.2.1, RFC 9700 §4.11); after, it goes back to the client
//!   ([`AuthorizeError::Redirect`]).
//! - `response.rs`: responses to the client in its response mode (query, fragment,
//!   form_post), each with `iss` (RFC 9207) and the `state` it sent.
//!
//! - `code.rs`: the codes a decided request ends with.
//! - `implicit.rs`: the tokens a decided implicit request ends with instead (legacy, for
//!   clients an operator registered for the `implicit` grant only).
//!
//! What happens between a checked request and its code (session, login, consent) is
//! `oauth/interaction/`.

pub mod code;
pub mod par;
mod request;
mod response;

pub use request::{AuthorizationRequest, Prompt, ResponseType};
mod implicit;
pub use request::parse_pairs;
pub use response::{Redirect, RedirectResponse, ResponseMode, form_action_origin};

/// Error codes of authorization responses (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6, RFC 8707
/// §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthzErrorCode {
    /// A parameter is missing, repeated, malformed or unsupported.
    InvalidRequest,
    /// The server serves this response type, but the client is not registered for it.
    UnauthorizedClient,
    /// The user or the server refused.
    AccessDenied,
    /// A response type this server never serves (not `code`, `id_token`, `id_token token`).
    UnsupportedResponseType,
    /// A scope the client may not ask for.
    InvalidScope,
    /// A `resource` the client may not ask for.
    InvalidTarget,
    /// Request objects by value are not supported.
    RequestNotSupported,
    /// Request objects by reference are not supported.
    RequestUriNotSupported,
    /// `prompt=none` and no usable session (OIDC Core §3.1.2.6).
    LoginRequired,
    /// `prompt=none` and no consent on record (OIDC Core §3.1.2.6).
    ConsentRequired,
    /// Our fault.
    ServerError,
    /// The store is unavailable.
    TemporarilyUnavailable,
}

impl AuthzErrorCode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// Why an authorization request failed, and where the answer goes.
pub enum AuthorizeError {
    /// Shown to the user as an HTML page with this status: the client or its redirect URI
    /// could not be verified, so nothing may be sent to the URI the request names.
    Page {
        /// HTTP status of the page.
        status: u16,
        /// Page title.
        title: &'static str,
        /// The reason, for the user and the app's developers.
        message: String,
    },
    /// Sent back to the verified redirect URI.
    Redirect(RedirectResponse),
}

impl AuthorizeError {
    fn page(status: u16, title: &'static str, message: impl Into<String>) -> Self {
        Self::Page { status, title, message: message.into() }
    }
}
