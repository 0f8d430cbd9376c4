//! Authorization responses to the client: where they go and how they are encoded.

use super::AuthzErrorCode;

/// How the response parameters travel (OAuth 2.0 Multiple Response Type Encoding Practices
/// §2.1, OAuth 2.0 Form Post Response Mode §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// In the redirect URI's query (the default for `code`).
    Query,
    /// In the redirect URI's fragment.
    Fragment,
    /// In an auto-submitted HTML form posted to the redirect URI.
    FormPost,
}

impl ResponseMode {
    /// Parses `response_mode`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "query" => Some(Self::Query),
            "fragment" => Some(Self::Fragment),
            "form_post" => Some(Self::FormPost),
            _ => None,
        }
    }
}

/// A verified place to send a response: the client's registered redirect URI (as the request
/// gave it), the response mode and the request's `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The redirect URI, exactly as registered (or, for a loopback URI, as requested).
    pub uri: String,
    /// How to deliver the parameters.
    pub mode: ResponseMode,
    /// The client's `state`, echoed byte for byte.
    pub state: Option<String>,
    /// Our issuer, sent as `iss` (RFC 9207 §2).
    pub issuer: String,
}

/// A response for the client: where, and which parameters (`state` and `iss` are added).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectResponse {
    /// Where it goes.
    pub to: Redirect,
    /// The response's own parameters, in order.
    pub params: Vec<(&'static str, String)>,
}

impl RedirectResponse {
    /// An error response (RFC 6749 §4.1.2.1).
    pub fn error(to: Redirect, code: AuthzErrorCode, description: impl Into<String>) -> Self {
        Self { to, params: vec![("error", code.as_str().to_owned()), ("error_description", description.into())] }
    }

    /// Every parameter on the wire: the response's, then `state` (when sent) and `iss`.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let mut out: Vec<(&'static str, &str)> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(state) = &self.to.state {
            out.push(("state", state));
        }
        out.push(("iss", &self.to.issuer));
        out
    }

    /// The `Location` for the query and fragment modes. A query the redirect URI already has
    /// is kept (RFC 6749 §3.1.2), the parameters appended form-encoded.
    pub fn location(&self) -> String {
        let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(self.fields()).finish();
        let uri = &self.to.uri;
        match self.to.mode {
            ResponseMode::Fragment => format!("{uri}#{encoded}"),
            ResponseMode::Query | ResponseMode::FormPost => {
                let sep = if uri.contains('?') { if uri.ends_with('?') || uri.ends_with('&') { "" } else { "&" } } else { "?" };
                format!("{uri}{sep}{encoded}")
            }
        }
    }

    /// The origin a `form_post` page posts to, for its `form-action` policy (see
    /// [`form_action_origin`]).
    pub fn form_action_origin(&self) -> String {
        form_action_origin(&self.to.uri)
    }
}

/// A redirect URI as a `form-action` source: scheme, host and port of an http(s) URI, the
/// scheme of a private-use one; `'none'` for anything else, or for a host with characters that
/// could end the source (`;`, `,`: the URL parser lets them through in a host).
pub fn form_action_origin(redirect_uri: &str) -> String {
    let origin = match url::Url::parse(redirect_uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => return "'none'".to_owned(),
    };
    let safe = origin.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.:/[]".contains(&b));
    if safe { origin } else { "'none'".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(uri: &str, mode: ResponseMode, state: Option<&str>) -> Redirect {
        Redirect { uri: uri.into(), mode, state: state.map(str::to_owned), issuer: "https://as.example".into() }
    }

    #[test]
    fn query_responses_keep_the_redirect_uris_own_query_and_encode_everything() {
        let r = RedirectResponse::error(
            to("https://app.example/cb?tenant=a b", ResponseMode::Query, Some("s&t=1 ü")),
            AuthzErrorCode::InvalidScope,
            "scope \"x\" is not allowed",
        );
        let loc = r.location();
        assert!(loc.starts_with("https://app.example/cb?tenant=a b&error=invalid_scope&"), "{loc}");
        let parsed = url::Url::parse(&loc).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(pairs[0], ("tenant".into(), "a b".into()));
        assert!(pairs.contains(&("state".into(), "s&t=1 ü".into())), "state comes back byte for byte");
        assert!(pairs.contains(&("iss".into(), "https://as.example".into())));
        assert!(pairs.contains(&("error_description".into(), "scope \"x\" is not allowed".into())));
        // A query that ends in a separator gets no second one; none gets "?".
        for (uri, sep) in [("https://app.example/cb?", ""), ("https://app.example/cb?a=1&", ""), ("https://app.example/cb?a=1", "&"), ("https://app.example/cb", "?")] {
            let r = RedirectResponse { to: to(uri, ResponseMode::Query, None), params: vec![("code", "c1".into())] };
            assert_eq!(r.location(), format!("{uri}{sep}code=c1&iss=https%3A%2F%2Fas.example"));
        }
    }

    #[test]
    fn fragment_responses_go_after_a_hash_and_state_is_left_out_when_not_sent() {
        let r = RedirectResponse { to: to("com.example.app:/cb", ResponseMode::Fragment, None), params: vec![("code", "c1".into())] };
        assert_eq!(r.location(), "com.example.app:/cb#code=c1&iss=https%3A%2F%2Fas.example");
        assert_eq!(r.form_action_origin(), "com.example.app:");
        let r = RedirectResponse { to: to("https://app.example:8443/cb", ResponseMode::FormPost, None), params: vec![] };
        assert_eq!(r.form_action_origin(), "https://app.example:8443");
        assert_eq!(form_action_origin("http://127.0.0.1:4000/cb?x=1"), "http://127.0.0.1:4000");
        assert_eq!(form_action_origin("http://[::1]:4000/cb"), "http://[::1]:4000");
        // Nothing that could add a directive to the policy.
        for bad in ["https://a;script-src/cb", "https://a,b/cb", "not a url"] {
            assert_eq!(form_action_origin(bad), "'none'", "{bad}");
        }
    }
}
