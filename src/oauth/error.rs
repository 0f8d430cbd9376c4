//! RFC 6749 errors: one closed code enum, one error type with a client-safe description and
//! a hidden cause for logs.

use crate::store::StoreError;
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// Every OAuth error code Warden returns (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 6750 §3.1,
/// RFC 8707 §2, RFC 9449 §5, §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The grant (code, refresh token, assertion) is invalid.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The response type is not supported (RFC 9126 §2.3 reports authorization-request
    /// errors on the back channel).
    UnsupportedResponseType,
    /// The requested scope is invalid or exceeds what the client may ask for.
    InvalidScope,
    /// The requested resource (audience) is not allowed (RFC 8707).
    InvalidTarget,
    /// A bearer token (initial access or registration access token) is invalid (RFC 6750).
    InvalidToken,
    /// A redirect URI in registration metadata is invalid (RFC 7591).
    InvalidRedirectUri,
    /// Other registration metadata is invalid (RFC 7591).
    InvalidClientMetadata,
    /// Too many failed attempts; retry later. RFC 6749 has no code for this, so the wire code
    /// is `temporarily_unavailable`, with status 429 and `Retry-After`.
    RateLimited,
    /// Something failed on our side.
    ServerError,
    /// A dependency (the database) is unavailable.
    TemporarilyUnavailable,
    /// The DPoP proof is invalid (RFC 9449 §5, §7.1).
    InvalidDpopProof,
    /// The DPoP proof lacks a fresh server nonce (RFC 9449 §8); the response names one.
    UseDpopNonce,
    /// The access token lacks a scope the resource needs (RFC 6750 §3.1).
    InsufficientScope,
}

impl ErrorCode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidToken => "invalid_token",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::RateLimited => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
            Self::RateLimited => 429,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

type Cause = Box<dyn std::error::Error + Send + Sync>;

/// `WWW-Authenticate` challenges (RFC 6749 §5.2, RFC 6750 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic`: client authentication failed.
    Basic,
    /// `Bearer` without an error code: the request carried no token (RFC 6750 §3.1).
    Bearer,
    /// `Bearer error="invalid_token"`: the token was wrong.
    BearerInvalidToken,
    /// A protected resource's answer (RFC 6750 §3, RFC 9449 §7.1): the scheme the token
    /// needs (`DPoP` or `Bearer`) with this error code.
    Resource {
        /// `DPoP` rather than `Bearer`.
        dpop: bool,
        /// The `error` attribute.
        error: ErrorCode,
    },
    /// No token was presented to a protected resource: both schemes, no error code
    /// (RFC 6750 §3.1, RFC 9449 §7.1).
    AnyToken,
}

/// An OAuth error. `description` goes on the wire; `source` only to logs.
pub struct OAuthError {
    /// The RFC error code.
    pub code: ErrorCode,
    /// Client-safe text for `error_description`.
    pub description: Cow<'static, str>,
    /// The hidden cause.
    pub source: Option<Cause>,
    /// The `WWW-Authenticate` challenge to send, if any.
    pub challenge: Option<Challenge>,
    /// When to retry (`Retry-After`): rate limiting and an unavailable store.
    pub retry_after: Option<Duration>,
    /// A DPoP nonce to send (`DPoP-Nonce`, RFC 9449 §8) with `use_dpop_nonce`.
    pub dpop_nonce: Option<String>,
    /// An HTTP status other than the code's usual one (a protected resource answers a bad
    /// DPoP proof with 401, the token endpoint with 400).
    pub status: Option<u16>,
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)?;
        if let Some(s) = &self.source {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

macro_rules! constructors {
    ($($name:ident => $code:ident),* $(,)?) => {
        $(
            #[doc = concat!("An `", stringify!($name), "` error with a client-safe description.")]
            pub fn $name(description: impl Into<Cow<'static, str>>) -> Self {
                Self::new(ErrorCode::$code, description)
            }
        )*
    };
}

impl OAuthError {
    /// An error with a code and a description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        // RFC 9110 §15.5.2: every 401 carries a challenge. Failed client authentication
        // offers Basic whatever method the client tried (RFC 6749 §5.2).
        let challenge = match code {
            ErrorCode::InvalidToken => Some(Challenge::BearerInvalidToken),
            ErrorCode::InvalidClient => Some(Challenge::Basic),
            _ => None,
        };
        Self { code, description: description.into(), source: None, challenge, retry_after: None, dpop_nonce: None, status: None }
    }

    constructors! {
        invalid_request => InvalidRequest,
        invalid_client => InvalidClient,
        invalid_grant => InvalidGrant,
        unauthorized_client => UnauthorizedClient,
        unsupported_grant_type => UnsupportedGrantType,
        invalid_scope => InvalidScope,
        invalid_target => InvalidTarget,
        invalid_token => InvalidToken,
        invalid_redirect_uri => InvalidRedirectUri,
        invalid_client_metadata => InvalidClientMetadata,
        invalid_dpop_proof => InvalidDpopProof,
    }

    /// A `server_error` whose cause is logged, never sent.
    pub fn server_error(cause: impl Into<Cause>) -> Self {
        let mut e = Self::new(ErrorCode::ServerError, "the server could not complete the request");
        e.source = Some(cause.into());
        e
    }

    /// Attaches a hidden cause.
    pub fn with_source(mut self, cause: impl Into<Cause>) -> Self {
        self.source = Some(cause.into());
        self
    }
}

/// `Retry-After` of a 503 caused by the store: long enough not to hammer a database that is
/// coming back, short against the probe that notices it did (about a second).
pub const STORE_RETRY_AFTER: Duration = Duration::from_secs(2);

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                let mut err = OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable, retry later",
                );
                err.source = Some(Box::new(e));
                err.retry_after = Some(STORE_RETRY_AFTER);
                err
            }
            other => OAuthError::server_error(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_has_its_status_and_the_cause_reaches_only_the_debug_form() {
        for (code, status) in [
            (ErrorCode::ServerError, 500),
            (ErrorCode::TemporarilyUnavailable, 503),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::InvalidClient, 401),
            (ErrorCode::InvalidToken, 401),
            (ErrorCode::InsufficientScope, 403),
            (ErrorCode::InvalidGrant, 400),
        ] {
            assert_eq!(code.status(), status, "{}", code.as_str());
        }
        let e = OAuthError::server_error("disk on fire");
        assert_eq!(e.to_string(), "server_error: the server could not complete the request");
        assert_eq!(format!("{e:?}"), "server_error: the server could not complete the request (disk on fire)");
    }
}
