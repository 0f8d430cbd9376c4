//! `GET` and `POST /userinfo` (OIDC Core §5.3): the signed-in user's claims for an access
//! token, as a protected resource (RFC 6750, RFC 9449 §7).

use super::claims::user_claims;
use super::{Challenge, DpopHeader, ErrorCode, OAuthError, Params, Provider};
use crate::jose::dpop::{self, ProofCheck};
use crate::model::{UserId, unix_now};
use serde_json::Value;

/// A userinfo request without HTTP types.
pub struct UserinfoRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `DPoP` header.
    pub dpop: DpopHeader,
    /// Whether the query string carries `access_token`.
    pub token_in_query: bool,
    /// The form body of a POST (RFC 6750 §2.2), if it had one.
    pub form: Option<Params>,
}

/// How the token came.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presented {
    Bearer,
    Dpop,
    Body,
}

/// An RFC 6750 §3 / RFC 9449 §7.1 error: `code` with the challenge of the scheme.
fn refuse(code: ErrorCode, dpop: bool, description: &'static str) -> OAuthError {
    let mut e = OAuthError::new(code, description);
    e.challenge = Some(Challenge::Resource { dpop, error: code });
    if code == ErrorCode::InvalidDpopProof {
        e.status = Some(401);
    }
    e
}

/// The token and how it came: exactly one way (RFC 6750 §2: "MUST NOT use more than one
/// method"), never the query.
fn presented(req: &UserinfoRequest) -> Result<(String, Presented), OAuthError> {
    if req.token_in_query {
        return Err(refuse(
            ErrorCode::InvalidRequest,
            false,
            "send the access token in the Authorization header (or the POST body), never in the URL",
        ));
    }
    let mut found: Vec<(String, Presented)> = Vec::new();
    if let Some(h) = req.authorization.as_deref() {
        let (scheme, token) = h.split_once(' ').unwrap_or((h, ""));
        let token = token.trim();
        let kind = if scheme.eq_ignore_ascii_case("bearer") {
            Presented::Bearer
        } else if scheme.eq_ignore_ascii_case("dpop") {
            Presented::Dpop
        } else {
            return Err(refuse(ErrorCode::InvalidRequest, false, "the Authorization header must use the Bearer or DPoP scheme"));
        };
        if token.is_empty() {
            return Err(refuse(ErrorCode::InvalidRequest, kind == Presented::Dpop, "the Authorization header carries no token"));
        }
        found.push((token.to_owned(), kind));
    }
    if let Some(token) = req.form.as_ref().and_then(|f| f.get("access_token")) {
        found.push((token.to_owned(), Presented::Body));
    }
    match found.len() {
        0 => {
            let mut e = OAuthError::new(ErrorCode::InvalidToken, "this endpoint needs an access token (Authorization: Bearer or DPoP)");
            e.challenge = Some(Challenge::AnyToken);
            Err(e)
        }
        1 => Ok(found.remove(0)),
        _ => Err(refuse(ErrorCode::InvalidRequest, false, "send the access token one way only (RFC 6750 §2)")),
    }
}

impl Provider {
    /// OIDC Core §5.3, checking in this order:
    /// 1. the token comes in the `Authorization` header (`Bearer` or `DPoP`) or, on POST, as
    ///    `access_token` in a form body (RFC 6750 §2.1, §2.2); in the query — `invalid_request`
    ///    (400; RFC 9700 §4.3.2 forbids it); more than one way — `invalid_request`; none —
    ///    401 with a challenge and no error code (RFC 6750 §3.1);
    /// 2. the token verifies as introspection verifies it (`active_access_token`: signature,
    ///    issuer, expiry, client still registered, not revoked) — `invalid_token` (401);
    /// 3. a DPoP-bound token (`cnf.jkt`) needs the `DPoP` scheme and exactly one proof for
    ///    this request, with `ath`, made with the bound key, never seen before (RFC 9449 §7) —
    ///    `invalid_token` for the wrong scheme, `invalid_dpop_proof` (401) for the proof; an
    ///    unbound token sent with the `DPoP` scheme — `invalid_token`;
    /// 4. the token was issued to a user (`grants.rs`), with `openid` in its scope —
    ///    `invalid_token`, `insufficient_scope` (403);
    /// 5. the user still exists and is not disabled — `invalid_token`.
    ///
    /// The claims: `sub` (as in the ID token), those of the granted scopes, and those the
    /// `claims` request's `userinfo` member names (`claims.rs`).
    pub async fn userinfo(&self, req: &UserinfoRequest) -> Result<Value, OAuthError> {
        let (token, how) = presented(req)?;
        let dpop_scheme = how == Presented::Dpop;
        let invalid = |dpop: bool, why: &'static str| refuse(ErrorCode::InvalidToken, dpop, why);
        let Some(claims) = self.active_access_token(&token).await? else {
            return Err(invalid(dpop_scheme, "the access token is invalid, expired or revoked"));
        };
        match (&claims.cnf, how) {
            (Some(cnf), Presented::Dpop) => self.userinfo_proof(req, &token, &cnf.jkt).await?,
            (Some(_), _) => return Err(invalid(true, "this access token is DPoP-bound: send it with the DPoP scheme and a proof")),
            (None, Presented::Dpop) => return Err(invalid(true, "this access token is not DPoP-bound: send it with the Bearer scheme")),
            (None, _) => {}
        }
        let bound = claims.cnf.is_some();
        let Some(grant) = self.token_grant(&claims.jti).await? else {
            return Err(invalid(bound, "this access token was not issued to a user"));
        };
        let scopes: Vec<&str> = claims.scope.as_deref().unwrap_or("").split(' ').filter(|s| !s.is_empty()).collect();
        if !scopes.contains(&"openid") {
            return Err(refuse(ErrorCode::InsufficientScope, bound, "userinfo needs a token with the openid scope"));
        }
        let user = match self.store.catalog.user(&UserId(claims.sub.clone())).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(invalid(bound, "the user of this access token no longer exists or is disabled")),
        };
        let mut out = user_claims(&user, &scopes, grant.userinfo_claims.as_ref());
        out.insert("sub".into(), user.id.as_str().into());
        Ok(Value::Object(out))
    }

    /// Step 3: the proof of possession for a DPoP-bound token.
    async fn userinfo_proof(&self, req: &UserinfoRequest, token: &str, jkt: &str) -> Result<(), OAuthError> {
        let bad = |why: &'static str| refuse(ErrorCode::InvalidDpopProof, true, why);
        let proof = match &req.dpop {
            DpopHeader::One(p) => p,
            DpopHeader::Absent => return Err(bad("a DPoP-bound access token needs a DPoP proof")),
            DpopHeader::Many => return Err(bad("send exactly one DPoP header")),
        };
        let now = unix_now();
        let uri = self.cfg.endpoint("/userinfo");
        let (max_age, leeway) = (self.cfg.dpop_proof_max_age.as_secs(), self.cfg.clock_skew.as_secs());
        let check = ProofCheck { method: req.method, uri: &uri, now, max_age, leeway, access_token: Some(token), nonces: self.dpop_nonces.as_ref() };
        let proof = dpop::check_proof(proof, &check).map_err(|e| {
            let mut err = self.dpop_error(e, now);
            err.challenge = Some(Challenge::Resource { dpop: true, error: err.code });
            err.status = Some(401);
            err
        })?;
        if aws_lc_rs::constant_time::verify_slices_are_equal(proof.jkt.as_bytes(), jkt.as_bytes()).is_err() {
            return Err(bad("the DPoP proof is not made with the key the access token is bound to"));
        }
        if !self.first_use_of(&proof, now).await? {
            return Err(bad("this DPoP proof was already used; make a new one per request"));
        }
        Ok(())
    }
}
