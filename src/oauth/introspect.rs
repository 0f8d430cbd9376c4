//! `POST /introspect` (RFC 7662).

use super::{FormRequest, IntrospectionPolicy, OAuthError, Provider};
use crate::jose::{self, Expectations};
use crate::model::{AccessTokenClaims, unix_now};
use crate::store::ArtifactKind;
use serde::Serialize;

/// RFC 7662 §2.2 response. Inactive tokens say only `{"active": false}`.
#[derive(Debug, Default, Serialize)]
pub struct IntrospectionResponse {
    /// Whether the token is valid now.
    pub active: bool,
    /// The token's claims, when active.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub claims: Option<AccessTokenClaims>,
    /// `Bearer`, or `DPoP` for a DPoP-bound token (RFC 9449 §6.2), when active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// RFC 9068 §2.1 `typ` values.
pub(super) const AT_JWT: &[&str] = &["at+jwt", "application/at+jwt"];

impl Provider {
    /// Verifies one of our access tokens: signature by a published key, `typ`, issuer,
    /// expiry, RFC 9068 claims, its client still registered, and not revoked. `Ok(None)` for
    /// any token that is not valid.
    pub(super) async fn active_access_token(&self, token: &str) -> Result<Option<AccessTokenClaims>, OAuthError> {
        let ring = self.ring.current();
        let expect = Expectations {
            issuer: Some(&self.cfg.issuer),
            typ: AT_JWT,
            required: &["iss", "sub", "aud", "iat", "jti", "client_id"],
            leeway: self.cfg.clock_skew.as_secs(),
            ..Default::default()
        };
        let Ok(claims) = jose::verify::<AccessTokenClaims>(token, ring.as_ref(), &expect) else {
            return Ok(None);
        };
        // A deleted client's tokens die with it (RFC 7592 §2.3).
        if self.load_client(&claims.client_id).await?.is_none() {
            return Ok(None);
        }
        let revoked = self.store.artifacts.get(ArtifactKind::RevokedJti, &claims.jti, unix_now()).await?;
        Ok(revoked.is_none().then_some(claims))
    }

    /// RFC 7662 §2.1, §4: the caller authenticates as a client; under the `restricted`
    /// policy (the default) a token is described only to its own client and to clients
    /// registered as the resource server of an audience it carries. Anyone else learns only
    /// `{"active": false}`, as if the token did not exist (§4: no token scanning).
    pub async fn introspect(&self, req: &FormRequest) -> Result<IntrospectionResponse, OAuthError> {
        let caller = self.authenticate_client(req).await?;
        let token = req.params.require("token")?;
        Ok(match self.active_access_token(token).await? {
            Some(claims) if self.may_introspect(&caller, &claims) => {
                let token_type = if claims.cnf.is_some() { "DPoP" } else { "Bearer" };
                IntrospectionResponse { active: true, claims: Some(claims), token_type: Some(token_type) }
            }
            _ => IntrospectionResponse::default(),
        })
    }

    fn may_introspect(&self, caller: &crate::model::Client, claims: &AccessTokenClaims) -> bool {
        match self.cfg.introspection {
            IntrospectionPolicy::AnyClient => true,
            IntrospectionPolicy::Restricted => {
                caller.client_id.as_str() == claims.client_id
                    || caller.metadata.resource_server_for.iter().any(|a| claims.aud.contains(a))
            }
        }
    }
}
