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
    /// A refresh token's description, when active (its own client asking).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshTokenDescription>,
    /// `Bearer`, or `DPoP` for a DPoP-bound token (RFC 9449 §6.2), or `refresh_token` for a
    /// refresh token, when active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// RFC 7662 §2.2 members describing an active refresh token.
#[derive(Debug, Serialize)]
pub struct RefreshTokenDescription {
    /// Issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The scope the grant holds (what a refresh may ask for at most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the token stops working unless rotated first: its idle expiry, capped by the
    /// family's end.
    pub exp: i64,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The DPoP key a public client's token is bound to (RFC 9449 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::model::Confirmation>,
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
    /// registered as the resource server of an audience it carries. A refresh token (RFC 7662
    /// §2.1 allows them) is described to its own client only. Anyone else learns only
    /// `{"active": false}`, as if the token did not exist (§4: no token scanning).
    pub async fn introspect(&self, req: &FormRequest) -> Result<IntrospectionResponse, OAuthError> {
        let caller = self.authenticate_client(req).await?;
        let token = req.params.require("token")?;
        if let Some(rec) = self.active_refresh_token(token).await? {
            // A refresh token is described to its own client only, whatever the policy: no
            // resource server ever receives one.
            if rec.grant.client_id != caller.client_id.as_str() {
                return Ok(IntrospectionResponse::default());
            }
            let g = rec.grant;
            let refresh = RefreshTokenDescription {
                iss: self.cfg.issuer.clone(),
                sub: g.sub,
                client_id: g.client_id,
                scope: (!g.scope.is_empty()).then(|| g.scope.join(" ")),
                exp: rec.expires_at,
                auth_time: g.auth_time,
                cnf: rec.jkt.map(|jkt| crate::model::Confirmation { jkt }),
            };
            return Ok(IntrospectionResponse { active: true, claims: None, refresh: Some(refresh), token_type: Some("refresh_token") });
        }
        Ok(match self.active_access_token(token).await? {
            Some(claims) if self.may_introspect(&caller, &claims) => {
                let token_type = if claims.cnf.is_some() { "DPoP" } else { "Bearer" };
                IntrospectionResponse { active: true, claims: Some(claims), refresh: None, token_type: Some(token_type) }
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
