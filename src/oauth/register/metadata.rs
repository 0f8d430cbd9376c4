//! Client metadata checks (RFC 7591 §2, RFC 8252), shared by dynamic registration and the
//! CLI. Each `check_*` is pure and returns the error the registration endpoint sends.

use crate::jose;
use crate::model::{ApplicationType, AuthMethod, ClientMetadata, GrantType};
use crate::oauth::{OAuthError, is_loopback};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Client metadata as sent (RFC 7591 §2 names; unknown members are ignored as §2 requires).
/// Field meanings are those of RFC 7591 §2 and RFC 7592 §2.2.
/// It may carry a client secret, so it has no `Debug`.
#[allow(missing_docs)]
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct RegistrationRequest {
    pub redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub scope: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    /// Warden extension: audiences of the client's access tokens.
    pub audience: Option<Vec<String>>,
    /// Warden extension: access-token lifetime in seconds.
    pub access_token_lifetime: Option<u64>,
    /// Warden extension: audiences this client is the resource server of (operators only).
    pub resource_server_for: Option<Vec<String>>,
    /// RFC 9449 §5.2.
    pub dpop_bound_access_tokens: Option<bool>,
    /// OIDC Dynamic Client Registration 1.0 §2.
    pub id_token_signed_response_alg: Option<String>,
    /// Warden extension: skip the consent page (operators only).
    pub first_party: Option<bool>,
    /// RFC 9126 §6.
    pub require_pushed_authorization_requests: Option<bool>,
    /// OIDC RP-Initiated Logout §3.1.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// OIDC Dynamic Client Registration §2: `web` or `native`.
    pub application_type: Option<String>,
    /// RFC 7592 §2.2: the client id, required on update.
    pub client_id: Option<String>,
    /// RFC 7592 §2.2: if sent on update, must equal the current secret.
    pub client_secret: Option<String>,
    /// RFC 7592 §2.2: these must not be sent on update.
    pub registration_access_token: Option<Value>,
    pub registration_client_uri: Option<Value>,
    pub client_id_issued_at: Option<Value>,
    pub client_secret_expires_at: Option<Value>,
}

/// What the registering party may ask for.
pub struct Policy<'a> {
    /// Allowed scopes; `None` allows any well-formed scope (operators).
    pub scopes: Option<&'a [String]>,
    /// Allowed audiences; `None` allows any (operators).
    pub audiences: Option<&'a [String]>,
    /// Whether a per-client token lifetime may be set, and its upper bound.
    pub max_lifetime: Option<Duration>,
    /// The algorithms this server signs with (`KeysConfig::signing_algs`): the only ones a
    /// client may choose for its ID tokens.
    pub signing_algs: &'a [jose::Alg],
}

impl Policy<'_> {
    /// Whether the legacy grants (`implicit`, `password`) may be registered: by an operator
    /// only (an operator's policy is the one with no audience limit, as for `first_party`).
    /// Dynamic registration never gets them (RFC 9700 §2.1.2, §2.4).
    pub fn allows_legacy_grants(&self) -> bool {
        self.audiences.is_none()
    }
}

/// Turns a request into validated metadata, checking in this order: auth method, grant and
/// response types, redirect URIs, keys, scope, audience, lifetime, informational URLs.
pub fn check_client_metadata(
    req: RegistrationRequest,
    policy: &Policy<'_>,
) -> Result<ClientMetadata, OAuthError> {
    let method = check_auth_method(req.token_endpoint_auth_method.as_deref())?;
    let grant_types = check_grant_types(req.grant_types.as_deref(), policy.allows_legacy_grants())?;
    let response_types = check_response_types(req.response_types.as_deref(), &grant_types)?;
    let redirect_uris = req.redirect_uris.unwrap_or_default();
    check_redirect_uris(&redirect_uris, &grant_types)?;
    let application_type = check_application_type(req.application_type.as_deref(), &redirect_uris)?;
    // The same rules as redirect URIs (absolute, https or loopback http or a private-use
    // scheme, no fragment, no user information), with no grant that requires one.
    let post_logout_redirect_uris = req.post_logout_redirect_uris.clone().unwrap_or_default();
    check_redirect_uris(&post_logout_redirect_uris, &[])
        .map_err(|e| OAuthError::invalid_client_metadata(format!("post_logout_redirect_uris: {}", e.description)))?;
    check_method_fits_grants(method, &grant_types)?;
    // RFC 9449 §5.2: such a client's access tokens are always key-bound, and the implicit
    // flow's come through a redirect, where no DPoP proof can be sent.
    if req.dpop_bound_access_tokens == Some(true) && response_types.iter().any(|t| t == "id_token token") {
        return Err(OAuthError::invalid_client_metadata(
            "dpop_bound_access_tokens cannot go with response type \"id_token token\": the implicit flow's access tokens cannot be DPoP-bound",
        ));
    }
    check_keys(method, req.jwks.as_ref(), req.jwks_uri.as_deref())?;
    let scope = check_scope(req.scope.as_deref(), policy.scopes)?;
    let audience = check_audience(req.audience.unwrap_or_default(), policy.audiences)?;
    let id_token_signed_response_alg =
        check_id_token_alg(req.id_token_signed_response_alg.as_deref(), policy.signing_algs)?;
    let resource_server_for = req.resource_server_for.unwrap_or_default();
    if !resource_server_for.is_empty() && policy.audiences.is_some() {
        return Err(OAuthError::invalid_client_metadata("resource_server_for can only be set by an operator"));
    }
    let resource_server_for = check_audience(resource_server_for, None)?;
    let first_party = req.first_party.unwrap_or(false);
    if first_party && policy.audiences.is_some() {
        return Err(OAuthError::invalid_client_metadata("first_party can only be set by an operator"));
    }
    let access_token_lifetime = match (req.access_token_lifetime, policy.max_lifetime) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(OAuthError::invalid_client_metadata(
                "access_token_lifetime can only be set by an operator",
            ));
        }
        (Some(s), Some(max)) if s == 0 || s > max.as_secs() => {
            return Err(OAuthError::invalid_client_metadata(format!(
                "access_token_lifetime must be between 1 and {} seconds",
                max.as_secs()
            )));
        }
        (Some(s), Some(_)) => Some(s),
    };
    for (name, value) in [
        ("client_uri", &req.client_uri),
        ("logo_uri", &req.logo_uri),
        ("tos_uri", &req.tos_uri),
        ("policy_uri", &req.policy_uri),
    ] {
        if let Some(v) = value {
            check_web_url(name, v)?;
        }
    }
    if let Some(name) = &req.client_name
        && (name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control)) {
            return Err(OAuthError::invalid_client_metadata(
                "client_name must be 1 to 200 printable characters",
            ));
        }
    Ok(ClientMetadata {
        client_name: req.client_name,
        redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method: method,
        scope,
        jwks: req.jwks,
        client_uri: req.client_uri,
        logo_uri: req.logo_uri,
        contacts: req.contacts.unwrap_or_default(),
        tos_uri: req.tos_uri,
        policy_uri: req.policy_uri,
        software_id: req.software_id,
        software_version: req.software_version,
        audience,
        access_token_lifetime,
        resource_server_for,
        dpop_bound_access_tokens: req.dpop_bound_access_tokens.unwrap_or(false),
        id_token_signed_response_alg,
        first_party,
        require_pushed_authorization_requests: req.require_pushed_authorization_requests.unwrap_or(false),
        post_logout_redirect_uris,
        application_type,
    })
}

/// OIDC Dynamic Client Registration §2 `id_token_signed_response_alg`: one of the algorithms
/// this server signs with; never `none` (an unsigned ID token proves nothing; OIDC Core §2
/// allows it only without the token endpoint, which Warden never does).
pub fn check_id_token_alg(alg: Option<&str>, signing_algs: &[jose::Alg]) -> Result<Option<String>, OAuthError> {
    let Some(name) = alg else { return Ok(None) };
    let names = || signing_algs.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
    if name == "none" {
        return Err(OAuthError::invalid_client_metadata(format!(
            "id_token_signed_response_alg \"none\" is not accepted: ID tokens are always signed; use one of {}",
            names()
        )));
    }
    match jose::Alg::parse(name) {
        Some(a) if signing_algs.contains(&a) => Ok(Some(a.as_str().to_owned())),
        _ => Err(OAuthError::invalid_client_metadata(format!(
            "id_token_signed_response_alg \"{}\" is not one this server signs with; use one of {}",
            name.chars().take(32).collect::<String>(),
            names()
        ))),
    }
}

/// - defaults to `client_secret_basic` (RFC 7591 §2);
/// - `client_secret_basic`, `client_secret_post`, `private_key_jwt` and `none` are known;
///   anything else (including `client_secret_jwt`) is refused.
pub fn check_auth_method(m: Option<&str>) -> Result<AuthMethod, OAuthError> {
    let m = m.unwrap_or("client_secret_basic");
    AuthMethod::parse(m).ok_or_else(|| {
        OAuthError::invalid_client_metadata(format!(
            "token_endpoint_auth_method \"{m}\" is not supported; use one of client_secret_basic, \
             client_secret_post, private_key_jwt, none"
        ))
    })
}

/// - defaults to `authorization_code` (RFC 7591 §2);
/// - `authorization_code`, `client_credentials`, `refresh_token`; anything unknown is
///   refused; duplicates are dropped;
/// - the legacy `implicit` and `password` grants only when `legacy` (an operator registers
///   the client): RFC 9700 §2.1.2 says the implicit grant SHOULD NOT be used and §2.4 that the
///   password grant MUST NOT, so a dynamically registered client never gets them.
pub fn check_grant_types(g: Option<&[String]>, legacy: bool) -> Result<Vec<GrantType>, OAuthError> {
    let names: Vec<&str> = match g {
        None => vec!["authorization_code"],
        Some(list) => list.iter().map(String::as_str).collect(),
    };
    if names.is_empty() {
        return Err(OAuthError::invalid_client_metadata("grant_types must not be empty"));
    }
    let mut out = Vec::new();
    for n in names {
        let g = GrantType::parse(n).ok_or_else(|| {
            OAuthError::invalid_client_metadata(format!(
                "grant type \"{n}\" is not supported; use authorization_code, client_credentials \
                 or refresh_token"
            ))
        })?;
        if matches!(g, GrantType::Implicit | GrantType::Password) && !legacy {
            return Err(OAuthError::invalid_client_metadata(format!(
                "grant type \"{n}\" is a legacy grant (RFC 9700 §2.1.2, §2.4) and cannot be registered \
                 dynamically; an operator can enable it for one client with `warden client create \
                 --grant-type {n}`"
            )));
        }
        if !out.contains(&g) {
            out.push(g);
        }
    }
    if out == [GrantType::RefreshToken] {
        return Err(OAuthError::invalid_client_metadata(
            "refresh_token needs a grant that issues refresh tokens (authorization_code)",
        ));
    }
    Ok(out)
}

/// Response types Warden knows, in canonical form: `code`, and the implicit flow's
/// `id_token` and `id_token token` (OIDC Core §3.2; only for clients registered for the
/// `implicit` grant, which only an operator can do).
pub const RESPONSE_TYPES: &[&str] = &["code", "id_token", "id_token token"];

/// The canonical form of a response type Warden knows (values in any order, OAuth 2.0
/// Multiple Response Type Encoding Practices §2), or `None`.
pub fn canonical_response_type(t: &str) -> Option<&'static str> {
    let set = crate::model::response_type_set(t);
    RESPONSE_TYPES.iter().copied().find(|k| crate::model::response_type_set(k) == set)
}

/// RFC 7591 §2.1: `code` ⇔ `authorization_code`, `id_token` / `id_token token` ⇔
/// `implicit`. Defaults: `code` with `authorization_code`, plus both implicit types with
/// `implicit`. Values are stored in canonical form, each once. (`token` alone and the hybrid
/// types are not supported.)
pub fn check_response_types(r: Option<&[String]>, grants: &[GrantType]) -> Result<Vec<String>, OAuthError> {
    let wants_code = grants.contains(&GrantType::AuthorizationCode);
    let wants_implicit = grants.contains(&GrantType::Implicit);
    let given: Vec<String> = match r {
        Some(l) => l.to_vec(),
        None => {
            let mut d: Vec<String> = Vec::new();
            if wants_code {
                d.push("code".into());
            }
            if wants_implicit {
                d.extend(["id_token".into(), "id_token token".into()]);
            }
            d
        }
    };
    let mut list: Vec<String> = Vec::new();
    for t in &given {
        let Some(c) = canonical_response_type(t) else {
            return Err(OAuthError::invalid_client_metadata(format!(
                "response type \"{}\" is not supported; use \"code\" (or, for clients an operator \
                 registers for the implicit grant, \"id_token\" or \"id_token token\")",
                t.chars().take(64).collect::<String>()
            )));
        };
        if !list.iter().any(|l| l == c) {
            list.push(c.to_owned());
        }
    }
    if wants_code != list.iter().any(|t| t == "code") {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types and response_types disagree: authorization_code goes with response type \"code\"",
        ));
    }
    if wants_implicit != list.iter().any(|t| t != "code") {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types and response_types disagree: implicit goes with response types \"id_token\" and/or \"id_token token\"",
        ));
    }
    Ok(list)
}

/// - required (at least one) for `authorization_code` and `implicit`;
/// - each absolute, without fragment (RFC 6749 §3.1.2), userinfo or wildcard;
/// - `https`; `http` only on loopback IP literals (RFC 8252 §7.3, §8.3 — not `localhost`);
///   or a private-use scheme in reverse-domain form such as `com.example.app:/cb`
///   (RFC 8252 §7.1).
pub fn check_redirect_uris(uris: &[String], grants: &[GrantType]) -> Result<(), OAuthError> {
    for g in [GrantType::AuthorizationCode, GrantType::Implicit] {
        if grants.contains(&g) && uris.is_empty() {
            return Err(OAuthError::invalid_redirect_uri(format!("redirect_uris is required for the {} grant", g.as_str())));
        }
    }
    for u in uris {
        let bad = |why: &str| OAuthError::invalid_redirect_uri(format!("redirect URI \"{u}\": {why}"));
        if u.contains('*') {
            return Err(bad("wildcards are not allowed"));
        }
        let url = url::Url::parse(u).map_err(|_| bad("not an absolute URI"))?;
        // Checked and stored in the same form: what the checks below see is what later exact
        // matching compares (no "https:host" without slashes, no hex or dotless IPs).
        if url.as_str() != u {
            return Err(bad(&format!("write it in normalized form: {url}")));
        }
        if url.fragment().is_some() || u.contains('#') {
            return Err(bad("must not contain a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not contain user information"));
        }
        match url.scheme() {
            "https" => {}
            "http" => match url.host() {
                Some(url::Host::Ipv4(ip)) if ip.is_loopback() => {}
                Some(url::Host::Ipv6(ip)) if ip.is_loopback() => {}
                Some(url::Host::Domain("localhost")) => {
                    return Err(bad("use 127.0.0.1 or [::1] instead of localhost (RFC 8252 §8.3)"));
                }
                _ => return Err(bad("http is allowed only for loopback addresses; use https")),
            },
            s if s.contains('.') && !matches!(s, "javascript" | "data" | "file") => {}
            _ => {
                return Err(bad(
                    "use https, http on a loopback address, or a private-use scheme such as \
                     com.example.app:/callback",
                ));
            }
        }
    }
    Ok(())
}

/// OIDC Dynamic Client Registration §2: a `web` application's redirect URIs are https (no
/// loopback, no private-use scheme); a `native` one's may be loopback http or a private-use
/// scheme (RFC 8252 §7). Left out, it follows from the URIs: native if any is loopback or
/// private-use, else web. (`check_redirect_uris` has already refused everything else.)
pub fn check_application_type(t: Option<&str>, redirect_uris: &[String]) -> Result<ApplicationType, OAuthError> {
    let app_like = redirect_uris.iter().any(|u| !u.starts_with("https://"));
    match t {
        None => Ok(if app_like { ApplicationType::Native } else { ApplicationType::Web }),
        Some("native") => Ok(ApplicationType::Native),
        Some("web") if app_like => Err(OAuthError::invalid_redirect_uri(
            "a web application's redirect URIs must use https; register loopback or private-use URIs with application_type native",
        )),
        Some("web") => Ok(ApplicationType::Web),
        Some(_) => Err(OAuthError::invalid_client_metadata("application_type must be web or native")),
    }
}

/// Public clients (`none`) cannot use `client_credentials` or `password`: nothing proves who
/// they are (RFC 6749 §4.3.2 asks the password grant to authenticate confidential clients).
pub fn check_method_fits_grants(m: AuthMethod, grants: &[GrantType]) -> Result<(), OAuthError> {
    for g in [GrantType::ClientCredentials, GrantType::Password] {
        if m == AuthMethod::None && grants.contains(&g) {
            return Err(OAuthError::invalid_client_metadata(format!(
                "a public client (token_endpoint_auth_method none) cannot use {}",
                g.as_str()
            )));
        }
    }
    Ok(())
}

/// - `jwks` and `jwks_uri` are mutually exclusive (RFC 7591 §2);
/// - `private_key_jwt` needs `jwks` (fetching `jwks_uri` is not supported yet);
/// - every key must be a usable public signing key.
pub fn check_keys(m: AuthMethod, jwks: Option<&Value>, jwks_uri: Option<&str>) -> Result<(), OAuthError> {
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(OAuthError::invalid_client_metadata("send jwks or jwks_uri, not both"));
    }
    if jwks_uri.is_some() {
        return Err(OAuthError::invalid_client_metadata(
            "jwks_uri is not supported; register the public keys inline with jwks",
        ));
    }
    if let Some(set) = jwks {
        jose::client_jwks(set)
            .map_err(|e| OAuthError::invalid_client_metadata(format!("jwks: {e}")))?;
    } else if m == AuthMethod::PrivateKeyJwt {
        return Err(OAuthError::invalid_client_metadata("private_key_jwt needs jwks"));
    }
    Ok(())
}

/// RFC 6749 §3.3 scope tokens (`%x21 / %x23-5B / %x5D-7E`), each at most once, and within
/// `allowed` when given.
pub fn check_scope(scope: Option<&str>, allowed: Option<&[String]>) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if !is_scope_token(s) {
            return Err(OAuthError::invalid_client_metadata(format!("scope \"{s}\" has characters not allowed in a scope")));
        }
        if let Some(allowed) = allowed
            && !allowed.iter().any(|a| a == s) {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "scope \"{s}\" may not be registered dynamically; allowed: {}",
                    allowed.join(" ")
                )));
            }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// RFC 6749 §3.3 `scope-token`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn check_audience(list: Vec<String>, allowed: Option<&[String]>) -> Result<Vec<String>, OAuthError> {
    for a in &list {
        if a.is_empty() || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(OAuthError::invalid_client_metadata("audience values must be non-empty and contain no spaces"));
        }
        if let Some(allowed) = allowed
            && !allowed.contains(a) {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "audience \"{a}\" may not be registered dynamically"
                )));
            }
    }
    Ok(list)
}

fn check_web_url(name: &str, v: &str) -> Result<(), OAuthError> {
    let ok = url::Url::parse(v)
        .map(|u| u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)))
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(OAuthError::invalid_client_metadata(format!("{name} must be an https URL")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    fn req(v: Value) -> RegistrationRequest {
        serde_json::from_value(v).unwrap()
    }
    const ALGS: &[jose::Alg] = &[jose::Alg::ES256, jose::Alg::RS256];
    const OPEN: Policy<'static> = Policy { scopes: None, audiences: None, max_lifetime: None, signing_algs: ALGS };

    fn code(v: Value) -> ErrorCode {
        check_client_metadata(req(v), &OPEN).unwrap_err().code
    }

    #[test]
    fn defaults_follow_rfc7591() {
        let m = check_client_metadata(req(serde_json::json!({"redirect_uris": ["https://a.example/cb"]})), &OPEN).unwrap();
        assert_eq!(m.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(m.response_types, ["code"]);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn redirect_uri_rules() {
        let ok = |u: &str| check_redirect_uris(&[u.to_owned()], &[]).is_ok();
        assert!(ok("https://app.example/cb?x=1"));
        assert!(ok("http://127.0.0.1:4000/cb"));
        assert!(ok("http://[::1]/cb"));
        assert!(ok("com.example.app:/oauth2redirect"));
        let localhost = check_redirect_uris(&["http://localhost:3000/cb".to_owned()], &[]).unwrap_err();
        assert!(localhost.description.contains("use 127.0.0.1 or [::1]"), "{}", localhost.description);
        assert!(!ok("http://app.example/cb"));
        assert!(!ok("http://10.0.0.1/cb"), "http only on loopback literals");
        assert!(!ok("http://[2001:db8::1]/cb"));
        assert!(!ok("https://app.example/cb#frag"));
        assert!(!ok("https://*.example/cb"));
        assert!(!ok("/relative"));
        assert!(!ok("javascript:alert(1)"));
        assert!(!ok("myapp:/cb"));
        assert!(!ok("https://user:pw@app.example/cb"));
        assert!(!ok("https://app.example@evil.example/cb"), "user information alone");
        assert!(!ok("https://:pw@app.example/cb"), "a password alone");
        assert!(!ok("https:evil.example/cb"), "no authority");
        assert!(!ok("http://0x7f.1/cb"), "only canonical loopback literals");
        assert!(!ok("https://App.Example/cb"), "not normalized");
        assert_eq!(code(serde_json::json!({"grant_types": ["authorization_code"]})), ErrorCode::InvalidRedirectUri);
    }

    #[test]
    fn metadata_consistency() {
        use serde_json::json;
        assert_eq!(code(json!({"grant_types": ["implicit"]})), ErrorCode::InvalidRedirectUri);
        assert_eq!(code(json!({"grant_types": ["password"], "token_endpoint_auth_method": "none"})), ErrorCode::InvalidClientMetadata);
        assert_eq!(code(json!({"grant_types": ["client_credentials"], "response_types": ["code"]})), ErrorCode::InvalidClientMetadata);
        assert_eq!(code(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"})), ErrorCode::InvalidClientMetadata);
        assert_eq!(code(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_jwt"})), ErrorCode::InvalidClientMetadata);
        assert_eq!(code(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"})), ErrorCode::InvalidClientMetadata);
        assert_eq!(code(json!({"grant_types": ["client_credentials"], "jwks_uri": "https://a.example/jwks"})), ErrorCode::InvalidClientMetadata);
        assert_eq!(code(json!({"grant_types": ["client_credentials"], "scope": "a\"b"})), ErrorCode::InvalidClientMetadata);
        assert_eq!(code(json!({"grant_types": ["client_credentials"], "logo_uri": "javascript:x"})), ErrorCode::InvalidClientMetadata);
        assert_eq!(code(json!({"grant_types": ["refresh_token"]})), ErrorCode::InvalidClientMetadata);
    }

    #[test]
    fn legacy_grants_are_for_operators_only_and_implicit_goes_with_the_id_token_types() {
        use serde_json::json;
        let cb = "https://a.example/cb";
        let op = |v| check_client_metadata(req(v), &OPEN);
        let m = op(json!({"grant_types": ["implicit"], "redirect_uris": [cb]})).unwrap();
        assert_eq!(m.grant_types, [GrantType::Implicit]);
        assert_eq!(m.response_types, ["id_token", "id_token token"]);
        let m = op(json!({"grant_types": ["implicit", "authorization_code"], "redirect_uris": [cb], "response_types": ["token id_token", "code"]})).unwrap();
        assert_eq!(m.response_types, ["id_token token", "code"], "stored in canonical form");
        assert!(op(json!({"grant_types": ["password"], "scope": "openid"})).is_ok());
        for bad in [
            json!({"grant_types": ["implicit"], "redirect_uris": [cb], "response_types": ["code"]}),
            json!({"grant_types": ["authorization_code"], "redirect_uris": [cb], "response_types": ["code", "id_token"]}),
            json!({"grant_types": ["implicit"], "redirect_uris": [cb], "response_types": ["token"]}),
            json!({"grant_types": ["implicit"], "redirect_uris": [cb], "response_types": ["code id_token"]}),
        ] {
            assert_eq!(op(bad.clone()).unwrap_err().code, ErrorCode::InvalidClientMetadata, "{bad}");
        }
        assert_eq!(
            op(json!({"grant_types": ["implicit"], "redirect_uris": [cb], "dpop_bound_access_tokens": true})).unwrap_err().code,
            ErrorCode::InvalidClientMetadata
        );
        assert!(op(json!({"grant_types": ["implicit"], "redirect_uris": [cb], "response_types": ["id_token"], "dpop_bound_access_tokens": true})).is_ok());
        let scopes = vec!["openid".to_owned()];
        let dynamic = Policy { scopes: Some(&scopes), audiences: Some(&[]), max_lifetime: None, signing_algs: ALGS };
        for g in ["implicit", "password"] {
            let e = check_client_metadata(req(json!({"grant_types": [g], "redirect_uris": [cb]})), &dynamic).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClientMetadata, "{g}");
            assert!(e.description.contains("RFC 9700") && e.description.contains("warden client create"), "{}", e.description);
        }
    }

    #[test]
    fn id_token_alg_is_one_the_server_signs_with_and_never_none() {
        use serde_json::json;
        let m = |alg: &str| check_client_metadata(req(json!({"redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": alg})), &OPEN);
        assert_eq!(m("ES256").unwrap().id_token_signed_response_alg.as_deref(), Some("ES256"));
        assert_eq!(m("RS256").unwrap().id_token_signed_response_alg.as_deref(), Some("RS256"));
        for bad in ["none", "PS256", "HS256", "es256", ""] {
            let e = m(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClientMetadata, "{bad}");
            assert!(e.description.contains("ES256, RS256"), "{bad}: {}", e.description);
        }
        let none = check_client_metadata(req(json!({"redirect_uris": ["https://a.example/cb"]})), &OPEN).unwrap();
        assert_eq!(none.id_token_signed_response_alg, None);
    }

    #[test]
    fn an_operator_sets_a_lifetime_between_one_second_and_the_maximum() {
        let max = Policy { max_lifetime: Some(Duration::from_secs(3600)), ..OPEN };
        let lifetime = |s: u64| {
            check_client_metadata(req(serde_json::json!({"grant_types": ["client_credentials"], "access_token_lifetime": s})), &max)
                .map(|m| m.access_token_lifetime)
        };
        assert_eq!(lifetime(1).unwrap(), Some(1));
        assert_eq!(lifetime(3600).unwrap(), Some(3600));
        for bad in [0, 3601, u64::MAX] {
            let e = lifetime(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClientMetadata);
            assert!(e.description.contains("between 1 and 3600"), "{bad}: {}", e.description);
        }
    }

    #[test]
    fn a_client_name_is_1_to_200_printable_characters() {
        let name = |n: &str| check_client_metadata(req(serde_json::json!({"grant_types": ["client_credentials"], "client_name": n})), &OPEN);
        assert_eq!(name("Backend").unwrap().client_name.as_deref(), Some("Backend"));
        assert!(name(&"é".repeat(200)).is_ok(), "200 characters, counted as characters");
        for bad in [String::new(), "  ".into(), "é".repeat(201), "tab\tname".into(), "nl\n".into()] {
            assert_eq!(name(&bad).unwrap_err().code, ErrorCode::InvalidClientMetadata, "{bad:?}");
        }
    }

    #[test]
    fn scope_tokens_audiences_and_web_urls_are_well_formed() {
        for good in ["!", "#", "[", "]", "~", "read:all", "openid"] {
            assert!(is_scope_token(good), "{good}");
        }
        for bad in ["", "\"", "\\", "a b", "\u{7f}", "é"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
        assert_eq!(check_scope(Some(" read  write read "), None).unwrap(), ["read", "write"], "each once, in order");
        assert_eq!(check_audience(vec!["https://api.example".into()], None).unwrap(), ["https://api.example"]);
        for bad in ["", "two words", "ctl\u{1}", "tab\t"] {
            assert!(check_audience(vec![bad.into()], None).is_err(), "{bad:?}");
        }
        for good in ["https://app.example/tos", "http://127.0.0.1:8080/logo.png", "http://[::1]/"] {
            assert!(check_web_url("tos_uri", good).is_ok(), "{good}");
        }
        for bad in ["http://app.example/tos", "ftp://app.example/tos", "javascript:alert(1)", "tos"] {
            let e = check_web_url("tos_uri", bad).unwrap_err();
            assert_eq!(e.description, "tos_uri must be an https URL", "{bad}");
        }
    }

    #[test]
    fn policy_limits_scopes_audiences_and_lifetime() {
        use serde_json::json;
        let scopes = vec!["read".to_owned()];
        let p = Policy { scopes: Some(&scopes), audiences: Some(&[]), max_lifetime: None, signing_algs: ALGS };
        let r = |v| check_client_metadata(req(v), &p);
        assert!(r(json!({"grant_types": ["client_credentials"], "scope": "read"})).is_ok());
        assert!(r(json!({"grant_types": ["client_credentials"], "scope": "read admin"})).is_err());
        assert!(r(json!({"grant_types": ["client_credentials"], "audience": ["https://api"]})).is_err());
        assert!(r(json!({"grant_types": ["client_credentials"], "access_token_lifetime": 60})).is_err());
    }
}
