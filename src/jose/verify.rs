//! JWT verification, written once for introspection, client assertions and the gateway.

use super::JoseError;
use super::keys::Alg;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// A trusted public key and the algorithms it may be used with.
pub struct VerificationKey {
    /// The key's `kid`, if it has one.
    pub kid: Option<String>,
    /// Algorithms allowed with this key: from its `alg` member, else implied by its type.
    pub algs: Vec<Alg>,
    key: DecodingKey,
}

impl VerificationKey {
    /// Parses a public JWK. Refuses private members, symmetric keys, curves other than P-256
    /// and Ed25519, and RSA moduli under 2048 bits.
    pub fn from_jwk(jwk: &Value) -> Result<Self, JoseError> {
        let bad = |why: &str| JoseError::Key(why.to_owned());
        let s = |k: &str| jwk[k].as_str().ok_or_else(|| bad(&format!("JWK lacks \"{k}\"")));
        if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|m| jwk.get(*m).is_some()) {
            return Err(bad("JWK contains private key material"));
        }
        if jwk.get("use").is_some_and(|u| u != "sig") {
            return Err(bad("JWK \"use\" is not \"sig\""));
        }
        let (implied, key) = match s("kty")? {
            "EC" => {
                if s("crv")? != "P-256" {
                    return Err(bad("only the P-256 curve is supported"));
                }
                let (x, y) = (s("x")?, s("y")?);
                for c in [x, y] {
                    if URL_SAFE_NO_PAD.decode(c).map(|b| b.len()) != Ok(32) {
                        return Err(bad("P-256 coordinates must be 32 bytes"));
                    }
                }
                (vec![Alg::ES256], DecodingKey::from_ec_components(x, y).map_err(|_| bad("bad EC key"))?)
            }
            "RSA" => {
                let n = URL_SAFE_NO_PAD.decode(s("n")?).map_err(|_| bad("bad RSA modulus"))?;
                let significant = n.iter().skip_while(|b| **b == 0).count();
                if significant < 256 {
                    return Err(bad("RSA keys must have at least 2048 bits"));
                }
                let key = DecodingKey::from_rsa_components(s("n")?, s("e")?)
                    .map_err(|_| bad("bad RSA key"))?;
                (vec![Alg::RS256, Alg::PS256], key)
            }
            "OKP" => {
                if s("crv")? != "Ed25519" {
                    return Err(bad("only the Ed25519 curve is supported"));
                }
                (vec![Alg::EdDSA], DecodingKey::from_ed_components(s("x")?).map_err(|_| bad("bad OKP key"))?)
            }
            other => return Err(bad(&format!("unsupported key type \"{other}\""))),
        };
        let algs = match jwk.get("alg") {
            None => implied,
            Some(a) => {
                let alg = a.as_str().and_then(Alg::parse).filter(|a| implied.contains(a));
                vec![alg.ok_or_else(|| bad("JWK \"alg\" does not fit its key type"))?]
            }
        };
        Ok(Self { kid: jwk["kid"].as_str().map(str::to_owned), algs, key })
    }
}

/// Where trusted keys come from: the key ring, a client's registered JWKS, later a trusted
/// issuer's JWKS. Looks up by `kid` only among trusted keys; never fetches anything a token
/// names (`jku`, `x5u`, `jwk` headers are ignored).
pub trait KeyLookup {
    /// The trusted key for this `kid` that allows `alg`.
    fn find(&self, kid: Option<&str>, alg: Alg) -> Option<Arc<VerificationKey>>;
}

impl KeyLookup for [Arc<VerificationKey>] {
    /// With a `kid`, the key with that id. Without one, the single key allowing `alg` (a client
    /// with one key need not set `kid`); ambiguity finds nothing.
    fn find(&self, kid: Option<&str>, alg: Alg) -> Option<Arc<VerificationKey>> {
        let mut candidates = self.iter().filter(|k| match kid {
            Some(kid) => k.kid.as_deref() == Some(kid),
            None => k.algs.contains(&alg),
        });
        let first = candidates.next()?;
        candidates.next().is_none().then(|| first.clone())
    }
}

/// Parses a client's registered JWK Set (`{"keys": [...]}`) for `private_key_jwt`.
pub fn client_jwks(jwks: &Value) -> Result<Vec<Arc<VerificationKey>>, JoseError> {
    let keys = jwks["keys"]
        .as_array()
        .ok_or_else(|| JoseError::Key("a JWK Set needs a \"keys\" array".into()))?;
    if keys.is_empty() {
        return Err(JoseError::Key("the JWK Set has no keys".into()));
    }
    keys.iter().map(|k| VerificationKey::from_jwk(k).map(Arc::new)).collect()
}

/// What a token must satisfy besides its signature.
#[derive(Clone, Debug, Default)]
pub struct Expectations<'a> {
    /// Required `iss`.
    pub issuer: Option<&'a str>,
    /// `aud` must contain one of these (unchecked when empty).
    pub audience: &'a [&'a str],
    /// Accepted `typ` header values (unchecked when empty); compared case-insensitively.
    pub typ: &'a [&'a str],
    /// Claims that must be present (`exp` always is).
    pub required: &'a [&'a str],
    /// Allowed clock skew for `exp` and `nbf`, seconds.
    pub leeway: u64,
}

fn map_err(e: jsonwebtoken::errors::Error) -> JoseError {
    match e.into_kind() {
        ErrorKind::InvalidSignature => JoseError::BadSignature,
        ErrorKind::ExpiredSignature => JoseError::Expired,
        ErrorKind::ImmatureSignature => JoseError::NotYetValid,
        ErrorKind::InvalidIssuer => JoseError::WrongIssuer,
        ErrorKind::InvalidAudience => JoseError::WrongAudience,
        ErrorKind::InvalidAlgorithm => JoseError::AlgNotAllowed,
        ErrorKind::MissingRequiredClaim(c) => JoseError::MissingClaim(c),
        _ => JoseError::Malformed,
    }
}

/// Verifies a compact JWS and returns its claims.
///
/// - the header's `alg` must be one the looked-up key is registered for (no `none`, no HMAC
///   with a public key as secret);
/// - `kid` is looked up in `keys` only; a `crit` header is refused (we understand no
///   extensions);
/// - signature, then `exp` (always required), `nbf`, `iss`, `aud` and required claims, with
///   `leeway` seconds of skew.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    keys: &(impl KeyLookup + ?Sized),
    exp: &Expectations<'_>,
) -> Result<T, JoseError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| JoseError::Malformed)?;
    if header.crit.is_some() {
        return Err(JoseError::Malformed);
    }
    if !exp.typ.is_empty() {
        let typ = header.typ.as_deref().unwrap_or("");
        if !exp.typ.iter().any(|t| t.eq_ignore_ascii_case(typ)) {
            return Err(JoseError::AlgNotAllowed);
        }
    }
    let alg = Alg::ALL
        .into_iter()
        .find(|a| a.jwt_alg() == header.alg)
        .ok_or(JoseError::AlgNotAllowed)?;
    let key = keys.find(header.kid.as_deref(), alg).ok_or(JoseError::UnknownKid)?;
    if !key.algs.contains(&alg) {
        return Err(JoseError::AlgNotAllowed);
    }
    let mut v = Validation::new(alg.jwt_alg());
    v.leeway = exp.leeway;
    v.validate_nbf = true;
    let mut required = vec!["exp"];
    required.extend_from_slice(exp.required);
    v.set_required_spec_claims(&required);
    if let Some(iss) = exp.issuer {
        v.set_issuer(&[iss]);
    }
    if exp.audience.is_empty() {
        v.validate_aud = false;
    } else {
        v.set_audience(exp.audience);
    }
    jsonwebtoken::decode::<T>(token, &key.key, &v).map(|d| d.claims).map_err(map_err)
}
