//! Form parameters of OAuth requests (`application/x-www-form-urlencoded`, RFC 6749 §3.2).

use super::OAuthError;
use std::net::IpAddr;

/// Parameters that may legitimately repeat (RFC 8707 `resource`).
const MULTI_VALUED: &[&str] = &["resource", "audience"];

/// More parameters than any OAuth request needs; a body past it is refused before any work.
const MAX_PARAMS: usize = 64;

/// Parsed form parameters, in order. Parameters other than [`MULTI_VALUED`] appear at most
/// once ("Request and response parameters MUST NOT be included more than once").
#[derive(Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses a form body. Refuses other content types, repeated parameters and parameter
    /// names that are empty.
    pub fn parse_form(content_type: Option<&str>, body: &[u8]) -> Result<Params, OAuthError> {
        let media = content_type.unwrap_or("").split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in form_urlencoded::parse(body) {
            if k.is_empty() {
                return Err(OAuthError::invalid_request("malformed form body"));
            }
            if pairs.len() == MAX_PARAMS {
                return Err(OAuthError::invalid_request(format!("more than {MAX_PARAMS} parameters")));
            }
            if !MULTI_VALUED.contains(&k.as_ref()) && !seen.insert(k.clone()) {
                let name: String = k.chars().take(64).collect();
                return Err(OAuthError::invalid_request(format!("parameter \"{name}\" is repeated")));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params { pairs })
    }

    /// The single value of `name`; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// `name`, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter \"{name}\"")))
    }

    /// Every parameter, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Every value of a multi-valued parameter.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str()).collect()
    }
}

/// What the token, introspection and revocation endpoints receive, without HTTP types.
pub struct FormRequest {
    /// Body parameters.
    pub params: Params,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The peer address (for throttling).
    pub peer: IpAddr,
    /// The `DPoP` header (RFC 9449 §4.1).
    pub dpop: DpopHeader,
}

/// The `DPoP` request header: RFC 9449 §4.3 step 1 allows exactly one.
pub enum DpopHeader {
    /// None was sent.
    Absent,
    /// One was sent (a value that is not visible ASCII arrives empty and fails as malformed).
    One(String),
    /// More than one was sent.
    Many,
}

#[cfg(test)]
mod tests {
    use super::*;
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=UTF-8");

    #[test]
    fn parses_and_decodes() {
        let p = Params::parse_form(FORM, b"grant_type=client_credentials&scope=a%20b+c&x=").unwrap();
        assert_eq!(p.get("grant_type"), Some("client_credentials"));
        assert_eq!(p.get("scope"), Some("a b c"));
        assert_eq!(p.get("x"), None);
        assert!(p.require("x").is_err());
    }

    #[test]
    fn refuses_repeats_and_other_content_types() {
        assert!(Params::parse_form(FORM, b"scope=a&scope=b").is_err());
        assert!(Params::parse_form(Some("application/json"), b"{}").is_err());
        assert!(Params::parse_form(None, b"a=b").is_err());
        let p = Params::parse_form(FORM, b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap();
        assert_eq!(p.all("resource"), ["https://a", "https://b"]);
        let many: String = (0..65).map(|i| format!("p{i}=x&")).collect();
        assert!(Params::parse_form(FORM, many.as_bytes()).is_err(), "parameter count is capped");
    }
}
