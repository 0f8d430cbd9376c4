//! The credentials a request carries, and the refusals of the authentication and
//! authorization policies (RFC 6750 §3, RFC 9449 §7.1).
//!
//! Reading the `Authorization` header, in order:
//! 1. an `access_token` query parameter is refused (400 `invalid_request`): a token in a URL
//!    ends up in logs and `Referer`s (RFC 6750 §2.3, RFC 9700 §4.3.2);
//! 2. more than one `Authorization` header is refused (400 `invalid_request`): which one
//!    would the upstream read?
//! 3. none: no credentials;
//! 4. a value over the size limit is refused (401 `invalid_token`) before any parsing;
//! 5. `<scheme> <token>` with the scheme `Bearer` or `DPoP`, case-insensitively (RFC 9110
//!    §11.1), and the token in `token68` syntax; any other scheme or shape is 401
//!    `invalid_request`.
//!
//! Every refusal is problem+json with `Cache-Control: no-store`; a 401 challenges with the
//! route's schemes (`Bearer`, and `DPoP` where DPoP-bound tokens are accepted), with
//! `error="invalid_token"` once a token was sent.

use super::context::Denial;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::http::request::Parts;

/// An authentication scheme of `Authorization`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750.
    Bearer,
    /// RFC 9449.
    Dpop,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

/// A credential read from the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No `Authorization` header.
    None,
    /// A token with its scheme.
    Token(Scheme, &'a str),
}

/// The characters of `token68` (RFC 9110 §11.2) before its trailing `=`s, as a table: a
/// token is checked on every request, byte by byte.
const TOKEN68: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        i += 1;
    }
    table
};

fn token68(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| TOKEN68[usize::from(b)])
}

/// Reads the request's credential (the module doc lists the checks). `schemes` are the
/// route's, for the challenge of a refusal.
pub fn presented<'a>(head: &'a Parts, max: usize, schemes: &'static [Scheme]) -> Result<Presented<'a>, Denial> {
    if let Some(q) = head.uri.query()
        && form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
    {
        return Err(bad_request("access tokens are not accepted in the URL; send them in the Authorization header"));
    }
    let mut values = head.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(Presented::None) };
    if values.next().is_some() {
        return Err(bad_request("more than one Authorization header"));
    }
    if value.len() > max {
        return Err(unauthorized(schemes, Some("invalid_token"), "the access token is too large"));
    }
    let malformed = || unauthorized(schemes, Some("invalid_request"), "the Authorization header must be \"Bearer <token>\" or \"DPoP <token>\"");
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim_start_matches(' ');
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(malformed());
    };
    if !token68(token) {
        return Err(malformed());
    }
    Ok(Presented::Token(scheme, token))
}

fn quoted(text: &str) -> String {
    text.chars().filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c)).collect()
}

fn no_store(d: Denial) -> Denial {
    d.with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

fn challenge(scheme: Scheme, error: Option<&str>, description: Option<&str>, scope: Option<&str>) -> HeaderValue {
    let mut v = scheme.name().to_owned();
    let mut params = Vec::new();
    if let Some(e) = error {
        params.push(format!("error=\"{e}\""));
    }
    if let Some(d) = description {
        params.push(format!("error_description=\"{}\"", quoted(d)));
    }
    if let Some(s) = scope {
        params.push(format!("scope=\"{}\"", quoted(s)));
    }
    if scheme == Scheme::Dpop {
        params.push("algs=\"ES256 RS256 PS256 EdDSA\"".into());
    }
    if !params.is_empty() {
        v.push(' ');
        v.push_str(&params.join(", "));
    }
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("Bearer"))
}

/// 401: one challenge per scheme; `error` once a token was sent (RFC 6750 §3.1).
pub fn unauthorized(schemes: &[Scheme], error: Option<&str>, detail: &str) -> Denial {
    let mut d = Denial::new(401, "urn:warden:problem:unauthorized", "Unauthorized", detail);
    for s in schemes {
        d = d.with_header(header::WWW_AUTHENTICATE, challenge(*s, error, error.map(|_| detail), None));
    }
    no_store(d)
}

/// 401 `invalid_token` in the scheme the caller used.
pub fn invalid_token(scheme: Scheme, detail: &str) -> Denial {
    let d = Denial::new(401, "urn:warden:problem:unauthorized", "Unauthorized", detail)
        .with_header(header::WWW_AUTHENTICATE, challenge(scheme, Some("invalid_token"), Some(detail), None));
    no_store(d)
}

/// 401 `invalid_dpop_proof` (RFC 9449 §7.1).
pub fn invalid_proof(detail: &str) -> Denial {
    let d = Denial::new(401, "urn:warden:problem:unauthorized", "Unauthorized", detail)
        .with_header(header::WWW_AUTHENTICATE, challenge(Scheme::Dpop, Some("invalid_dpop_proof"), Some(detail), None));
    no_store(d)
}

/// 403 `insufficient_scope` naming the scopes needed (RFC 6750 §3.1).
pub fn insufficient_scope(scope: &str) -> Denial {
    let d = Denial::new(403, "urn:warden:problem:insufficient-scope", "Forbidden", format!("the access token lacks the scope this request needs: {scope}"))
        .with_header(header::WWW_AUTHENTICATE, challenge(Scheme::Bearer, Some("insufficient_scope"), None, Some(scope)));
    no_store(d)
}

/// 403 for a claim condition or object rule.
pub fn forbidden(detail: String) -> Denial {
    no_store(Denial::new(403, "urn:warden:problem:forbidden", "Forbidden", detail))
}

/// 400 `invalid_request`.
pub fn bad_request(detail: &str) -> Denial {
    let d = Denial::new(400, "urn:warden:problem:bad-request", "Bad Request", detail)
        .with_header(header::WWW_AUTHENTICATE, challenge(Scheme::Bearer, Some("invalid_request"), Some(detail), None));
    no_store(d)
}

/// 503 while a dependency (the revocation list) is not loaded.
pub fn unavailable(detail: &str) -> Denial {
    no_store(Denial::new(503, "urn:warden:problem:unavailable", "Service Unavailable", detail).with_header(header::RETRY_AFTER, HeaderValue::from_static("1")))
}

/// The default names of the headers the gateway sets from the caller's identity (sub,
/// client id, scope: `[gateway.identity_headers]`; and `x-warden-consumer`, set by
/// `consumers.rs`); incoming copies are always removed.
pub const IDENTITY_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-warden-sub"),
    HeaderName::from_static("x-warden-client-id"),
    HeaderName::from_static("x-warden-scope"),
    HeaderName::from_static("x-warden-consumer"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, auth: &[&str]) -> Parts {
        let mut b = hyper::Request::get(uri);
        for a in auth {
            b = b.header("authorization", *a);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn status(r: Result<Presented<'_>, Denial>) -> u16 {
        r.map_or_else(|d| d.problem.status, |_| 200)
    }

    #[test]
    fn one_authorization_header_with_a_known_scheme_in_any_case() {
        const S: &[Scheme] = &[Scheme::Bearer];
        for (value, scheme) in [("Bearer abc.def-_~+/=", Scheme::Bearer), ("bearer x", Scheme::Bearer), ("BEARER x", Scheme::Bearer), ("dpop x", Scheme::Dpop), ("DPoP x", Scheme::Dpop)] {
            let h = head("/", &[value]);
            let p = presented(&h, 8192, S).unwrap();
            assert!(matches!(p, Presented::Token(s, _) if s == scheme), "{value}");
        }
        assert_eq!(presented(&head("/", &[]), 8192, S).unwrap(), Presented::None);
        assert_eq!(status(presented(&head("/", &["Bearer a", "Bearer b"]), 8192, S)), 400);
        assert_eq!(status(presented(&head("/?access_token=x", &[]), 8192, S)), 400);
        assert_eq!(status(presented(&head("/?a=1&access_token=x", &["Bearer a"]), 8192, S)), 400);
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "Bearer a\"b", "Token abc"] {
            assert_eq!(status(presented(&head("/", &[bad]), 8192, S)), 401, "{bad}");
        }
        let big = format!("Bearer {}", "a".repeat(9000));
        let d = presented(&head("/", &[&big]), 8192, S).unwrap_err();
        assert_eq!(d.problem.status, 401);
        assert!(d.headers.iter().any(|(n, v)| n == "www-authenticate" && v.to_str().unwrap().contains("invalid_token")));
        assert!(d.headers.iter().any(|(n, v)| n == "cache-control" && v == "no-store"));
    }
}
