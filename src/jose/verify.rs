//! JWT verification, written once for introspection, client assertions and the gateway.

use super::JoseError;
use super::keys::Alg;
use crate::model::unix_now;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A trusted public key and the algorithms it may be used with.
pub struct VerificationKey {
    /// The key's `kid`, if it has one.
    pub kid: Option<String>,
    /// Algorithms allowed with this key: from its `alg` member, else implied by its type.
    pub algs: Vec<Alg>,
    key: DecodingKey,
}

/// Why a JWK is not used. Inside a client's JWK Set an unsupported key is skipped and an
/// invalid one refuses the whole set (see [`client_jwks`]).
enum JwkProblem {
    /// A key Warden does not verify with: encryption keys, other curves or algorithms.
    Unsupported(String),
    /// A key that is wrong in itself: private material, bad encoding, too small.
    Invalid(String),
}

impl JwkProblem {
    fn message(self) -> String {
        match self {
            Self::Unsupported(m) | Self::Invalid(m) => m,
        }
    }
}

/// Smallest and largest RSA modulus accepted, in bits: RFC 7518 §3.3 requires at least 2048;
/// aws-lc-rs verifies RSA signatures with moduli of at most 8192 bits.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// The size in bits of a big-endian unsigned integer (leading zero bytes and bits ignored).
fn bit_length(be: &[u8]) -> usize {
    let be = &be[be.iter().take_while(|b| **b == 0).count()..];
    match be.first() {
        None => 0,
        Some(top) => be.len() * 8 - top.leading_zeros() as usize,
    }
}

impl VerificationKey {
    /// Parses a public JWK. The checks, in order:
    /// 1. no private or symmetric key members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`;
    ///    RFC 7518 §6.2.2, §6.3.2, §6.4.1, RFC 8037 §2);
    /// 2. `use`, when present, is `sig` (RFC 7517 §4.2);
    /// 3. `key_ops`, when present, includes `verify` (RFC 7517 §4.3);
    /// 4. by `kty` (RFC 7517 §4.1): `EC` on curve P-256 with `x` and `y` of exactly 32 bytes
    ///    (RFC 7518 §6.2.1) forming a point on the curve; `RSA` with a modulus of 2048 to
    ///    8192 bits, counted in bits (RFC 7518 §3.3, §6.3.1); `OKP` on Ed25519 with a 32-byte
    ///    `x` (RFC 8037 §2); any other `kty` (`oct` included) is refused;
    /// 5. `alg`, when present, is one Warden verifies and fits the key type (RFC 7517 §4.4);
    /// 6. `kid`, when present, is a string (RFC 7517 §4.5).
    pub fn from_jwk(jwk: &Value) -> Result<Self, JoseError> {
        Self::parse(jwk).map_err(|p| JoseError::Key(p.message()))
    }

    fn parse(jwk: &Value) -> Result<Self, JwkProblem> {
        use JwkProblem::{Invalid, Unsupported};
        let invalid = |why: &str| Invalid(why.to_owned());
        let s = |k: &str| jwk[k].as_str().ok_or_else(|| Invalid(format!("JWK lacks \"{k}\"")));
        if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"].iter().any(|m| jwk.get(*m).is_some()) {
            return Err(invalid("JWK contains private key material"));
        }
        if jwk.get("use").is_some_and(|u| u != "sig") {
            return Err(Unsupported("JWK \"use\" is not \"sig\"".into()));
        }
        if let Some(ops) = jwk.get("key_ops") {
            let ops = ops.as_array().ok_or_else(|| invalid("JWK \"key_ops\" must be an array"))?;
            if !ops.iter().any(|op| op == "verify") {
                return Err(Unsupported("JWK \"key_ops\" does not include \"verify\"".into()));
            }
        }
        let (implied, key) = match s("kty")? {
            "EC" => {
                if s("crv")? != "P-256" {
                    return Err(Unsupported("only the P-256 curve is supported".into()));
                }
                let (x, y) = (s("x")?, s("y")?);
                let mut point = vec![0x04];
                for c in [x, y] {
                    match URL_SAFE_NO_PAD.decode(c) {
                        Ok(bytes) if bytes.len() == 32 => point.extend_from_slice(&bytes),
                        _ => return Err(invalid("P-256 coordinates must be 32 bytes")),
                    }
                }
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
                    .map_err(|_| invalid("the EC point is not on the P-256 curve"))?;
                let key = DecodingKey::from_ec_components(x, y).map_err(|_| invalid("bad EC key"))?;
                (vec![Alg::ES256], key)
            }
            "RSA" => {
                let n = URL_SAFE_NO_PAD.decode(s("n")?).map_err(|_| invalid("bad RSA modulus"))?;
                let bits = bit_length(&n);
                if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                    return Err(Invalid(format!(
                        "RSA keys must have 2048 to 8192 bits (this one has {bits})"
                    )));
                }
                let key = DecodingKey::from_rsa_components(s("n")?, s("e")?)
                    .map_err(|_| invalid("bad RSA key"))?;
                (vec![Alg::RS256, Alg::PS256], key)
            }
            "OKP" => {
                if s("crv")? != "Ed25519" {
                    return Err(Unsupported("only the Ed25519 curve is supported".into()));
                }
                let x = s("x")?;
                if URL_SAFE_NO_PAD.decode(x).map(|b| b.len()) != Ok(32) {
                    return Err(invalid("Ed25519 keys must be 32 bytes"));
                }
                (vec![Alg::EdDSA], DecodingKey::from_ed_components(x).map_err(|_| invalid("bad OKP key"))?)
            }
            "oct" => return Err(invalid("symmetric (\"oct\") keys are not accepted")),
            other => return Err(Unsupported(format!("unsupported key type \"{other}\""))),
        };
        let algs = match jwk.get("alg") {
            None => implied,
            Some(a) => match a.as_str().and_then(Alg::parse) {
                Some(alg) if implied.contains(&alg) => vec![alg],
                Some(_) => return Err(invalid("JWK \"alg\" does not fit its key type")),
                None => return Err(Unsupported("JWK \"alg\" is not one Warden verifies".into())),
            },
        };
        let kid = match jwk.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(invalid("JWK \"kid\" must be a string")),
        };
        Ok(Self { kid, algs, key })
    }
}

/// Where trusted keys come from: the key ring, a client's registered JWKS, later a trusted
/// issuer's JWKS. Looks up by `kid` only among trusted keys; never fetches anything a token
/// names (`jku`, `x5u`, `jwk` headers are ignored).
pub trait KeyLookup {
    /// The trusted key for this `kid` that allows `alg`.
    fn find(&self, kid: Option<&str>, alg: Alg) -> Option<Arc<VerificationKey>>;
}

/// The only item `keys` yields, if it yields exactly one.
fn single<'a>(mut keys: impl Iterator<Item = &'a Arc<VerificationKey>>) -> Option<Arc<VerificationKey>> {
    let first = keys.next()?;
    keys.next().is_none().then(|| first.clone())
}

impl KeyLookup for [Arc<VerificationKey>] {
    /// - With a `kid`: the one key with exactly that `kid`. When no key has it, a set of a
    ///   single key without `kid` still matches: many client libraries put a `kid` in the
    ///   header although the registered JWK has none, and with one key there is no doubt.
    /// - Without a `kid`: the single key allowing `alg` (a client with one key need not set
    ///   `kid`).
    ///
    /// Ambiguity (two keys with the same `kid`, or several allowing `alg`) finds nothing.
    fn find(&self, kid: Option<&str>, alg: Alg) -> Option<Arc<VerificationKey>> {
        match kid {
            Some(kid) if self.iter().any(|k| k.kid.as_deref() == Some(kid)) => {
                single(self.iter().filter(|k| k.kid.as_deref() == Some(kid)))
            }
            Some(_) => match self {
                [only] if only.kid.is_none() => Some(only.clone()),
                _ => None,
            },
            None => single(self.iter().filter(|k| k.algs.contains(&alg))),
        }
    }
}

/// Parses a client's registered JWK Set (`{"keys": [...]}`) for `private_key_jwt`:
/// 1. `keys` is an array (RFC 7517 §5);
/// 2. each key is read by [`VerificationKey::from_jwk`]; keys Warden does not verify with are
///    skipped: `"use": "enc"`, `key_ops` without `verify`, other curves (P-384, secp256k1,
///    X25519), other key types, and `alg` values Warden does not implement. RFC 7517 §5 says
///    a JWK Set's users SHOULD ignore keys they do not understand, and clients commonly
///    register one set for several servers, with encryption keys and keys for other
///    algorithms beside the one they sign assertions with; refusing those would force a
///    second, Warden-specific set on them, and a skipped key is never trusted, so skipping
///    costs no security;
/// 3. a key that is wrong in itself refuses the whole set, naming the key: private or
///    symmetric key material (the registrant is publishing a secret), bad encodings,
///    coordinates of the wrong size, a point off the curve, an RSA modulus outside 2048–8192
///    bits, an `alg` that contradicts the key type. These are mistakes the registrant must
///    hear about at registration, not as an unexplained `invalid_client` later;
/// 4. at least one usable signing key remains.
pub fn client_jwks(jwks: &Value) -> Result<Vec<Arc<VerificationKey>>, JoseError> {
    let keys = jwks["keys"]
        .as_array()
        .ok_or_else(|| JoseError::Key("a JWK Set needs a \"keys\" array".into()))?;
    let mut usable = Vec::new();
    for (i, jwk) in keys.iter().enumerate() {
        match VerificationKey::parse(jwk) {
            Ok(key) => usable.push(Arc::new(key)),
            Err(JwkProblem::Unsupported(_)) => {}
            Err(JwkProblem::Invalid(why)) => return Err(JoseError::Key(format!("keys[{i}]: {why}"))),
        }
    }
    if usable.is_empty() {
        return Err(JoseError::Key(
            "the JWK Set has no usable signing key (EC P-256, RSA of 2048 to 8192 bits or Ed25519)".into(),
        ));
    }
    Ok(usable)
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
    /// Claims that must be present and not null (`exp` always is, `iss` with `issuer`, `aud`
    /// with `audience`).
    pub required: &'a [&'a str],
    /// Allowed clock skew for `exp` and `nbf`, seconds.
    pub leeway: u64,
}

/// The JOSE header, read before any key is chosen (RFC 7515 §5.2 steps 1–4): three
/// base64url parts, the first a JSON object.
pub(super) fn header(token: &str) -> Result<Map<String, Value>, JoseError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| JoseError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JoseError::Malformed)
}

/// The payload of `token` once its signature verifies with `key` under `alg` (which the
/// caller has checked the key allows): `BadSignature`, or `Malformed` for anything that is
/// not a JSON object. jsonwebtoken checks the signature only; callers check the claims.
pub(super) fn signed_claims(token: &str, key: &VerificationKey, alg: Alg) -> Result<Map<String, Value>, JoseError> {
    let mut v = Validation::new(alg.jwt_alg());
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &v)
        .map(|d| d.claims)
        .map_err(|e| match e.into_kind() {
            ErrorKind::InvalidSignature => JoseError::BadSignature,
            _ => JoseError::Malformed,
        })
}

/// An integer NumericDate claim (RFC 7519 §2), if present.
pub(super) fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, JoseError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(JoseError::Malformed),
    }
}

/// Verifies a compact JWS and returns its claims. The checks, in order:
/// 1. three base64url parts, the header a JSON object (RFC 7515 §5.2) — else `Malformed`;
/// 2. no `crit` header: we understand no extensions (RFC 7515 §4.1.11) —
///    `UnsupportedCritical`;
/// 3. `typ` is one of `exp.typ`, compared case-insensitively (RFC 7515 §4.1.9, RFC 8725
///    §3.11), when any are given — `WrongType`;
/// 4. `alg` names, case-sensitively, an algorithm Warden verifies: never `none` or HMAC
///    (RFC 7515 §4.1.1, RFC 8725 §3.1) — `AlgNotAllowed`;
/// 5. `kid` is looked up among the trusted `keys` only; `jku`, `x5u` and `jwk` headers are
///    never followed (RFC 8725 §3.10) — `UnknownKid`;
/// 6. `alg` is one the found key is registered for, so the header cannot choose the
///    algorithm (RFC 8725 §2.1, §3.1) — `AlgNotAllowed`;
/// 7. the signature (RFC 7515 §5.2 step 8) — `BadSignature`;
/// 8. the payload is a JSON object (RFC 7519 §7.2 step 10) — `Malformed`;
/// 9. required claims are present and not null, in this order: `exp` always, `iss` when
///    `exp.issuer` is set, `aud` when `exp.audience` is not empty, then `exp.required` —
///    `MissingClaim(name)`;
/// 10. `exp` (an integer) has not passed: accepted while `now <= exp + leeway` (RFC 7519
///     §4.1.4) — `Expired`;
/// 11. `nbf`, when present (an integer), has come: accepted while `nbf <= now + leeway`
///     (RFC 7519 §4.1.5) — `NotYetValid`;
/// 12. `iss` is exactly `exp.issuer` (RFC 7519 §4.1.1) — `WrongIssuer`;
/// 13. `aud`, a string or an array of strings, contains one of `exp.audience` (RFC 7519
///     §4.1.3) — `WrongAudience`;
/// 14. the claims have the shape of `T` — `Malformed`.
///
/// A claim of the wrong JSON type in steps 10–13 is `Malformed`.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    keys: &(impl KeyLookup + ?Sized),
    exp: &Expectations<'_>,
) -> Result<T, JoseError> {
    verify_at(token, keys, exp, unix_now())
}

/// [`verify`] at the given time.
fn verify_at<T: DeserializeOwned>(
    token: &str,
    keys: &(impl KeyLookup + ?Sized),
    exp: &Expectations<'_>,
    now: i64,
) -> Result<T, JoseError> {
    let header = header(token)?;
    if header.contains_key("crit") {
        return Err(JoseError::UnsupportedCritical);
    }
    if !exp.typ.is_empty() {
        let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
        if !exp.typ.iter().any(|t| t.eq_ignore_ascii_case(typ)) {
            return Err(JoseError::WrongType);
        }
    }
    let alg = header.get("alg").and_then(Value::as_str).and_then(Alg::parse).ok_or(JoseError::AlgNotAllowed)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(JoseError::Malformed),
    };
    let key = keys.find(kid, alg).ok_or(JoseError::UnknownKid)?;
    if !key.algs.contains(&alg) {
        return Err(JoseError::AlgNotAllowed);
    }
    let claims = signed_claims(token, &key, alg)?;
    let implied = [exp.issuer.map(|_| "iss"), (!exp.audience.is_empty()).then_some("aud")];
    let required = std::iter::once("exp").chain(implied.into_iter().flatten()).chain(exp.required.iter().copied());
    for name in required {
        if claims.get(name).is_none_or(Value::is_null) {
            return Err(JoseError::MissingClaim(name.to_owned()));
        }
    }
    let leeway = i128::from(exp.leeway);
    if let Some(expiry) = numeric_date(&claims, "exp")?
        && i128::from(now) > i128::from(expiry) + leeway
    {
        return Err(JoseError::Expired);
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")?
        && i128::from(nbf) > i128::from(now) + leeway
    {
        return Err(JoseError::NotYetValid);
    }
    if let Some(issuer) = exp.issuer {
        let iss = claims.get("iss").and_then(Value::as_str).ok_or(JoseError::Malformed)?;
        if iss != issuer {
            return Err(JoseError::WrongIssuer);
        }
    }
    if !exp.audience.is_empty() {
        let listed = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(auds)) => {
                auds.iter().map(|a| a.as_str().ok_or(JoseError::Malformed)).collect::<Result<_, _>>()?
            }
            _ => return Err(JoseError::Malformed),
        };
        if !listed.iter().any(|a| exp.audience.contains(a)) {
            return Err(JoseError::WrongAudience);
        }
    }
    serde_json::from_value(Value::Object(claims)).map_err(|_| JoseError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{SigningKey, generate_key_record};
    use crate::secrets::MasterKey;
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://warden.example";
    const AUD: &str = "https://api.example";

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A private key and its public JWK (with `kid`, `use` and `alg`).
    struct Signer {
        key: SigningKey,
        jwk: Value,
        pkcs8: Vec<u8>,
    }

    fn signer(alg: Alg) -> Signer {
        let master = MasterKey::from_bytes(&[7; 32]);
        let rec = generate_key_record(alg, &master, NOW, NOW).unwrap();
        let pkcs8 = master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
        let key = SigningKey::from_pkcs8(rec.kid.clone(), alg, &pkcs8).unwrap();
        Signer { key, jwk: rec.public_jwk, pkcs8 }
    }

    fn trusted(jwks: &[&Value]) -> Vec<Arc<VerificationKey>> {
        jwks.iter().map(|j| Arc::new(VerificationKey::from_jwk(j).unwrap())).collect()
    }

    fn good_claims() -> Value {
        json!({"iss": ISS, "sub": "client-1", "aud": AUD, "exp": NOW + 300, "nbf": NOW - 10, "iat": NOW, "jti": "j1"})
    }

    fn expect() -> Expectations<'static> {
        Expectations { issuer: Some(ISS), audience: &[AUD], typ: &["at+jwt"], required: &["sub", "iat", "jti"], leeway: 60 }
    }

    fn header_of(key: &SigningKey) -> Value {
        json!({"alg": key.alg.as_str(), "kid": key.kid.as_str(), "typ": "at+jwt"})
    }

    /// A compact JWS with exactly this header and these claims, signed by `key`.
    fn jws(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let mut out = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = key.sign(out.as_bytes()).unwrap();
        out.push('.');
        out.push_str(&b64(sig));
        out
    }

    fn check(token: &str, keys: &[Arc<VerificationKey>], e: &Expectations<'_>) -> Result<Value, JoseError> {
        verify_at::<Value>(token, keys, e, NOW)
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    #[test]
    fn a_token_meeting_every_expectation_verifies() {
        for alg in Alg::ALL {
            let s = signer(alg);
            let token = s.key.sign_jwt("at+jwt", &good_claims()).unwrap();
            assert_eq!(check(&token, &trusted(&[&s.jwk]), &expect()), Ok(good_claims()), "{alg:?}");
        }
    }

    #[test]
    fn rfc7519_4_1_1_a_foreign_issuer_signed_with_a_trusted_key_is_wrong_issuer() {
        let s = signer(Alg::ES256);
        let token = s.key.sign_jwt("at+jwt", &with(good_claims(), "iss", "https://evil.example".into())).unwrap();
        assert_eq!(check(&token, &trusted(&[&s.jwk]), &expect()), Err(JoseError::WrongIssuer));
        let token = s.key.sign_jwt("at+jwt", &with(good_claims(), "iss", json!([ISS]))).unwrap();
        assert_eq!(check(&token, &trusted(&[&s.jwk]), &expect()), Err(JoseError::Malformed), "iss is a string");
    }

    #[test]
    fn rfc8725_3_11_typ_must_be_an_expected_one() {
        let s = signer(Alg::ES256);
        let keys = trusted(&[&s.jwk]);
        let jwt = s.key.sign_jwt("JWT", &good_claims()).unwrap();
        assert_eq!(check(&jwt, &keys, &expect()), Err(JoseError::WrongType));
        let no_typ = jws(&s.key, &json!({"alg": "ES256", "kid": s.key.kid.as_str()}), &good_claims());
        assert_eq!(check(&no_typ, &keys, &expect()), Err(JoseError::WrongType));
        let upper = s.key.sign_jwt("AT+JWT", &good_claims()).unwrap();
        assert!(check(&upper, &keys, &expect()).is_ok(), "RFC 7515 §4.1.9: compared case-insensitively");
        let unchecked = Expectations { typ: &[], ..expect() };
        assert!(check(&jwt, &keys, &unchecked).is_ok(), "no typ expected: any goes");
    }

    #[test]
    fn rfc7515_4_1_11_a_crit_header_is_refused() {
        let s = signer(Alg::ES256);
        let mut header = header_of(&s.key);
        header["crit"] = json!(["exp"]);
        header["exp"] = json!(NOW);
        let token = jws(&s.key, &header, &good_claims());
        assert_eq!(check(&token, &trusted(&[&s.jwk]), &expect()), Err(JoseError::UnsupportedCritical));
    }

    #[test]
    fn rfc7519_4_1_5_nbf_in_the_future_is_refused_beyond_the_leeway() {
        let s = signer(Alg::ES256);
        let keys = trusted(&[&s.jwk]);
        let at = |nbf: i64, leeway: u64| {
            let token = s.key.sign_jwt("at+jwt", &with(good_claims(), "nbf", nbf.into())).unwrap();
            check(&token, &keys, &Expectations { leeway, ..expect() }).map(|_| ())
        };
        assert_eq!(at(NOW + 61, 60), Err(JoseError::NotYetValid));
        assert_eq!(at(NOW + 60, 60), Ok(()), "within the leeway");
        assert_eq!(at(NOW + 1, 0), Err(JoseError::NotYetValid));
        assert_eq!(at(NOW, 0), Ok(()), "RFC 7519 §4.1.5: valid on or after nbf");
        let token = s.key.sign_jwt("at+jwt", &with(good_claims(), "nbf", "soon".into())).unwrap();
        assert_eq!(check(&token, &keys, &expect()), Err(JoseError::Malformed));
    }

    #[test]
    fn rfc7519_4_1_4_exp_passed_is_refused_beyond_the_leeway() {
        let s = signer(Alg::ES256);
        let keys = trusted(&[&s.jwk]);
        let at = |exp: i64, leeway: u64| {
            let token = s.key.sign_jwt("at+jwt", &with(good_claims(), "exp", exp.into())).unwrap();
            check(&token, &keys, &Expectations { leeway, ..expect() }).map(|_| ())
        };
        assert_eq!(at(NOW - 61, 60), Err(JoseError::Expired));
        assert_eq!(at(NOW - 60, 60), Ok(()), "within the leeway");
        assert_eq!(at(NOW - 1, 0), Err(JoseError::Expired));
        assert_eq!(at(NOW, 0), Ok(()), "the last second");
        assert_eq!(at(i64::MAX, u64::MAX), Ok(()), "no overflow");
        let token = s.key.sign_jwt("at+jwt", &with(good_claims(), "exp", (NOW as f64 + 0.5).into())).unwrap();
        assert_eq!(check(&token, &keys, &expect()), Err(JoseError::Malformed));
    }

    #[test]
    fn verify_uses_the_clock() {
        let s = signer(Alg::ES256);
        let keys = trusted(&[&s.jwk]);
        let now = unix_now();
        let live = s.key.sign_jwt("at+jwt", &with(good_claims(), "exp", (now + 30).into())).unwrap();
        assert!(verify::<Value>(&live, keys.as_slice(), &expect()).is_ok());
        let dead = s.key.sign_jwt("at+jwt", &with(good_claims(), "exp", (now - 100).into())).unwrap();
        assert_eq!(verify::<Value>(&dead, keys.as_slice(), &expect()), Err(JoseError::Expired));
    }

    #[test]
    fn rfc8725_3_1_the_header_cannot_choose_another_algorithm() {
        // An RS256 key signing validly with PS256: the signature is good, the algorithm is not
        // the one the key is registered for.
        let rsa = signer(Alg::RS256);
        let pss = SigningKey::from_pkcs8(rsa.key.kid.clone(), Alg::PS256, &rsa.pkcs8).unwrap();
        let token = pss.sign_jwt("at+jwt", &good_claims()).unwrap();
        assert_eq!(check(&token, &trusted(&[&rsa.jwk]), &expect()), Err(JoseError::AlgNotAllowed));

        // HS256 "signed" with the ES256 public key as the secret.
        let ec = signer(Alg::ES256);
        let keys = trusted(&[&ec.jwk]);
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header {
                kid: Some(ec.key.kid.to_string()),
                typ: Some("at+jwt".into()),
                ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
            },
            &good_claims(),
            &jsonwebtoken::EncodingKey::from_secret(ec.jwk.to_string().as_bytes()),
        )
        .unwrap();
        assert_eq!(check(&hs, &keys, &expect()), Err(JoseError::AlgNotAllowed));

        // Unsigned, whatever the case of "none"; lower-case names of real algorithms; no alg.
        let body = b64(good_claims().to_string());
        for alg in ["none", "None", "NONE", "nOnE", "es256"] {
            let header = b64(json!({"alg": alg, "kid": ec.key.kid.as_str(), "typ": "at+jwt"}).to_string());
            for sig in ["", "AAAA"] {
                let token = format!("{header}.{body}.{sig}");
                assert_eq!(check(&token, &keys, &expect()), Err(JoseError::AlgNotAllowed), "{alg}");
            }
        }
        let no_alg = jws(&ec.key, &json!({"kid": ec.key.kid.as_str(), "typ": "at+jwt"}), &good_claims());
        assert_eq!(check(&no_alg, &keys, &expect()), Err(JoseError::AlgNotAllowed));
    }

    #[test]
    fn rfc7519_4_1_3_the_audience_must_be_listed() {
        let s = signer(Alg::ES256);
        let keys = trusted(&[&s.jwk]);
        let run = |aud: Value| check(&s.key.sign_jwt("at+jwt", &with(good_claims(), "aud", aud)).unwrap(), &keys, &expect());
        assert_eq!(run("https://other.example".into()), Err(JoseError::WrongAudience));
        assert_eq!(run(json!(["https://other.example"])), Err(JoseError::WrongAudience));
        assert_eq!(run(json!([])), Err(JoseError::WrongAudience));
        assert!(run(json!(["https://other.example", AUD])).is_ok(), "one of several");
        assert_eq!(run(json!(7)), Err(JoseError::Malformed));
        assert_eq!(run(json!([AUD, 7])), Err(JoseError::Malformed));
        let any = Expectations { audience: &[], ..expect() };
        let token = s.key.sign_jwt("at+jwt", &with(good_claims(), "aud", "https://other.example".into())).unwrap();
        assert!(check(&token, &keys, &any).is_ok(), "no audience expected: unchecked");
    }

    #[test]
    fn each_required_claim_must_be_present_and_not_null() {
        let s = signer(Alg::ES256);
        let keys = trusted(&[&s.jwk]);
        // exp always; iss and aud because an issuer and an audience are expected; the rest listed.
        for name in ["exp", "iss", "aud", "sub", "iat", "jti"] {
            for claims in [without(good_claims(), name), with(good_claims(), name, Value::Null)] {
                let token = s.key.sign_jwt("at+jwt", &claims).unwrap();
                assert_eq!(check(&token, &keys, &expect()), Err(JoseError::MissingClaim(name.into())), "{name}");
            }
        }
        let lax = Expectations { issuer: None, audience: &[], required: &[], ..expect() };
        let bare = s.key.sign_jwt("at+jwt", &json!({"exp": NOW})).unwrap();
        assert_eq!(check(&bare, &keys, &lax), Ok(json!({"exp": NOW})));
    }

    #[test]
    fn rfc7515_4_1_4_an_unknown_kid_finds_no_key() {
        let (a, b) = (signer(Alg::ES256), signer(Alg::ES256));
        let token = jws(&a.key, &json!({"alg": "ES256", "kid": "other", "typ": "at+jwt"}), &good_claims());
        assert_eq!(check(&token, &trusted(&[&a.jwk, &b.jwk]), &expect()), Err(JoseError::UnknownKid));
        assert_eq!(check(&token, &trusted(&[&a.jwk]), &expect()), Err(JoseError::UnknownKid), "a key with another kid");
    }

    #[test]
    fn rfc7515_5_2_a_signature_by_another_key_does_not_verify() {
        let (a, b) = (signer(Alg::ES256), signer(Alg::ES256));
        let forged = jws(&b.key, &header_of(&a.key), &good_claims());
        assert_eq!(check(&forged, &trusted(&[&a.jwk]), &expect()), Err(JoseError::BadSignature));
        let good = a.key.sign_jwt("at+jwt", &good_claims()).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let other = b64(with(good_claims(), "sub", "client-2".into()).to_string());
        let tampered = format!("{}.{other}.{}", parts[0], parts[2]);
        assert_eq!(check(&tampered, &trusted(&[&a.jwk]), &expect()), Err(JoseError::BadSignature));
    }

    #[test]
    fn rfc7515_5_2_malformed_serializations_are_malformed() {
        let s = signer(Alg::ES256);
        let keys = trusted(&[&s.jwk]);
        let good = s.key.sign_jwt("at+jwt", &good_claims()).unwrap();
        let body = b64(good_claims().to_string());
        let cases = [
            "".to_owned(),
            "abc".to_owned(),
            good.rsplit_once('.').unwrap().0.to_owned(),
            format!("{good}.x"),
            format!("!!!.{body}.sig"),
            format!("{}.{body}.sig", b64("[1]")),
            format!("{}.{body}.sig", b64("not json")),
            jws(&s.key, &json!({"alg": "ES256", "kid": 5, "typ": "at+jwt"}), &good_claims()),
            jws(&s.key, &header_of(&s.key), &json!([1, 2])),
        ];
        for token in cases {
            assert_eq!(check(&token, &keys, &expect()), Err(JoseError::Malformed), "{token}");
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Typed {
            sub: u32,
        }
        assert_eq!(verify_at::<Typed>(&good, keys.as_slice(), &expect(), NOW).map(|_| ()), Err(JoseError::Malformed));
    }

    // --- client JWK Sets and the lookup -------------------------------------------------

    fn kidless(s: &Signer) -> Value {
        let mut jwk = s.jwk.clone();
        jwk.as_object_mut().unwrap().remove("kid");
        jwk
    }

    #[test]
    fn a_single_kidless_client_key_matches_a_header_kid() {
        let s = signer(Alg::ES256);
        let keys = client_jwks(&json!({"keys": [kidless(&s)]})).unwrap();
        let token = s.key.sign_jwt("at+jwt", &good_claims()).unwrap(); // header carries a kid
        assert_eq!(check(&token, &keys, &expect()), Ok(good_claims()));
    }

    #[test]
    fn with_several_keys_the_kid_must_match_exactly_and_ambiguity_finds_nothing() {
        let (a, b) = (signer(Alg::ES256), signer(Alg::ES256));
        let token = a.key.sign_jwt("at+jwt", &good_claims()).unwrap();
        let two_kidless = client_jwks(&json!({"keys": [kidless(&a), kidless(&b)]})).unwrap();
        assert_eq!(check(&token, &two_kidless, &expect()), Err(JoseError::UnknownKid));
        let kidless_and_other = client_jwks(&json!({"keys": [kidless(&a), b.jwk]})).unwrap();
        assert_eq!(check(&token, &kidless_and_other, &expect()), Err(JoseError::UnknownKid));
        let exact = client_jwks(&json!({"keys": [b.jwk, a.jwk]})).unwrap();
        assert_eq!(check(&token, &exact, &expect()), Ok(good_claims()));
        let mut twin = b.jwk.clone();
        twin["kid"] = a.jwk["kid"].clone();
        let duplicate = client_jwks(&json!({"keys": [a.jwk, twin]})).unwrap();
        assert_eq!(check(&token, &duplicate, &expect()), Err(JoseError::UnknownKid));
        let mut case = a.jwk.clone();
        case["kid"] = a.jwk["kid"].as_str().unwrap().to_uppercase().into();
        let case = client_jwks(&json!({"keys": [case, b.jwk]})).unwrap();
        assert_eq!(check(&token, &case, &expect()), Err(JoseError::UnknownKid), "kids compare exactly");
    }

    #[test]
    fn without_a_header_kid_the_single_key_for_the_algorithm_is_used() {
        let (ec, ec2, ed) = (signer(Alg::ES256), signer(Alg::ES256), signer(Alg::EdDSA));
        let token = jws(&ec.key, &json!({"alg": "ES256", "typ": "at+jwt"}), &good_claims());
        let mixed = client_jwks(&json!({"keys": [ed.jwk, ec.jwk]})).unwrap();
        assert_eq!(check(&token, &mixed, &expect()), Ok(good_claims()));
        let two = client_jwks(&json!({"keys": [ec.jwk, ec2.jwk]})).unwrap();
        assert_eq!(check(&token, &two, &expect()), Err(JoseError::UnknownKid));
        let none = client_jwks(&json!({"keys": [ed.jwk]})).unwrap();
        assert_eq!(check(&token, &none, &expect()), Err(JoseError::UnknownKid));
    }

    #[test]
    fn client_jwks_skip_keys_that_are_not_for_verifying_signatures() {
        let (sig, rsa) = (signer(Alg::ES256), signer(Alg::RS256));
        let mut enc = kidless(&rsa);
        enc["use"] = "enc".into();
        enc.as_object_mut().unwrap().remove("alg");
        let mut wrap = kidless(&rsa);
        wrap.as_object_mut().unwrap().remove("use");
        wrap["key_ops"] = json!(["wrapKey", "encrypt"]);
        let mut verify_ops = kidless(&sig);
        verify_ops.as_object_mut().unwrap().remove("use");
        verify_ops["key_ops"] = json!(["verify"]);
        let keys = client_jwks(&json!({"keys": [enc, wrap, verify_ops]})).unwrap();
        assert_eq!(keys.len(), 1);
        let token = sig.key.sign_jwt("at+jwt", &good_claims()).unwrap();
        assert_eq!(check(&token, &keys, &expect()), Ok(good_claims()), "the only signing key, kid in header");

        let only_enc = json!({"keys": [enc_of(&rsa)]});
        assert_eq!(
            client_jwks(&only_enc).map(|_| ()),
            Err(JoseError::Key(
                "the JWK Set has no usable signing key (EC P-256, RSA of 2048 to 8192 bits or Ed25519)".into()
            ))
        );
        assert_eq!(client_jwks(&json!({"keys": []})).map(|_| ()), client_jwks(&only_enc).map(|_| ()));
        assert_eq!(
            client_jwks(&json!({"kty": "EC"})).map(|_| ()),
            Err(JoseError::Key("a JWK Set needs a \"keys\" array".into()))
        );
    }

    fn enc_of(s: &Signer) -> Value {
        let mut jwk = s.jwk.clone();
        jwk["use"] = "enc".into();
        jwk.as_object_mut().unwrap().remove("alg");
        jwk
    }

    #[test]
    fn client_jwks_skip_unsupported_curves_and_types_but_refuse_broken_keys() {
        let s = signer(Alg::ES256);
        let p384 = p384_jwk();
        let k1 = json!({"kty": "EC", "crv": "secp256k1", "x": b64([1; 32]), "y": b64([2; 32])});
        let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": b64([3; 32])});
        let future = json!({"kty": "ML-DSA", "pub": "AAAA"});
        let rs512 = with(signer(Alg::RS256).jwk, "alg", "RS512".into());
        let keys = client_jwks(&json!({"keys": [p384, k1, x25519, future, rs512, s.jwk]})).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), s.jwk["kid"].as_str());

        let mut private = s.jwk.clone();
        private["d"] = b64([9; 32]).into();
        let mut short = s.jwk.clone();
        short["x"] = b64([1; 31]).into();
        for (bad, why) in [
            (private, "keys[1]: JWK contains private key material"),
            (short, "keys[1]: P-256 coordinates must be 32 bytes"),
            (json!({"kty": "oct", "k": b64([1; 32])}), "keys[1]: JWK contains private key material"),
            (with(s.jwk.clone(), "alg", "RS256".into()), "keys[1]: JWK \"alg\" does not fit its key type"),
        ] {
            let set = json!({"keys": [s.jwk, bad]});
            assert_eq!(client_jwks(&set).map(|_| ()), Err(JoseError::Key(why.into())));
        }
    }

    fn p384_jwk() -> Value {
        let pair = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-384", "x": b64(&point[1..49]), "y": b64(&point[49..97])})
    }

    // --- JWK import ---------------------------------------------------------------------

    fn import_err(jwk: &Value) -> JoseError {
        match VerificationKey::from_jwk(jwk) {
            Ok(_) => panic!("accepted {jwk}"),
            Err(e) => e,
        }
    }

    fn key_err(why: &str) -> JoseError {
        JoseError::Key(why.into())
    }

    #[test]
    fn jwk_import_refuses_other_curves_and_bad_coordinates() {
        let ec = signer(Alg::ES256).jwk;
        let curve = key_err("only the P-256 curve is supported");
        assert_eq!(import_err(&p384_jwk()), curve);
        assert_eq!(import_err(&with(ec.clone(), "crv", "secp256k1".into())), curve);
        let size = key_err("P-256 coordinates must be 32 bytes");
        for (member, len) in [("x", 31), ("x", 33), ("y", 31), ("y", 33), ("x", 0)] {
            assert_eq!(import_err(&with(ec.clone(), member, b64(vec![1; len]).into())), size, "{member} {len}");
        }
        assert_eq!(import_err(&with(ec.clone(), "x", "not base64!".into())), size);
        assert_eq!(
            import_err(&with(with(ec.clone(), "x", b64([1; 32]).into()), "y", b64([1; 32]).into())),
            key_err("the EC point is not on the P-256 curve")
        );
        assert_eq!(import_err(&without(ec.clone(), "y")), key_err("JWK lacks \"y\""));
        let ed = signer(Alg::EdDSA).jwk;
        assert_eq!(import_err(&with(ed.clone(), "crv", "Ed448".into())), key_err("only the Ed25519 curve is supported"));
        assert_eq!(import_err(&with(ed, "x", b64([1; 31]).into())), key_err("Ed25519 keys must be 32 bytes"));
    }

    #[test]
    fn jwk_import_refuses_symmetric_keys_and_private_members() {
        let private = key_err("JWK contains private key material");
        assert_eq!(import_err(&json!({"kty": "oct", "k": b64([1; 32])})), private);
        assert_eq!(import_err(&json!({"kty": "oct"})), key_err("symmetric (\"oct\") keys are not accepted"));
        let (ec, rsa, ed) = (signer(Alg::ES256).jwk, signer(Alg::RS256).jwk, signer(Alg::EdDSA).jwk);
        for (jwk, member) in [
            (&ec, "d"),
            (&rsa, "d"),
            (&rsa, "p"),
            (&rsa, "q"),
            (&rsa, "dp"),
            (&rsa, "dq"),
            (&rsa, "qi"),
            (&rsa, "oth"),
            (&ed, "d"),
        ] {
            assert_eq!(import_err(&with(jwk.clone(), member, b64([5; 32]).into())), private, "{member}");
        }
    }

    /// An RSA JWK whose modulus is `bytes` (no private key exists for it: import only).
    fn rsa_jwk(modulus: &[u8]) -> Value {
        json!({"kty": "RSA", "n": b64(modulus), "e": "AQAB"})
    }

    /// A modulus of exactly `bits` bits.
    fn modulus(bits: usize) -> Vec<u8> {
        let mut n = vec![0xff; bits.div_ceil(8)];
        n[0] = 0xff >> ((8 - bits % 8) % 8);
        n
    }

    #[test]
    fn rsa_moduli_are_counted_in_bits() {
        assert_eq!(bit_length(&modulus(2041)), 2041);
        assert_eq!(bit_length(&modulus(2048)), 2048);
        assert_eq!(bit_length(&[0, 0, 1]), 1);
        assert_eq!(bit_length(&[0]), 0);
        assert_eq!(bit_length(&[]), 0);
        for bits in [2041, 2047, 1024, 8193] {
            assert_eq!(
                import_err(&rsa_jwk(&modulus(bits))),
                JoseError::Key(format!("RSA keys must have 2048 to 8192 bits (this one has {bits})")),
            );
        }
        for bits in [2048, 3072, 8192] {
            assert!(VerificationKey::from_jwk(&rsa_jwk(&modulus(bits))).is_ok(), "{bits}");
        }
        let mut padded = vec![0];
        padded.extend(modulus(2048));
        assert!(VerificationKey::from_jwk(&rsa_jwk(&padded)).is_ok(), "a leading zero byte is not a bit");
        let mut padded = vec![0];
        padded.extend(modulus(2041));
        assert_eq!(import_err(&rsa_jwk(&padded)), key_err("RSA keys must have 2048 to 8192 bits (this one has 2041)"));
        assert!(VerificationKey::from_jwk(&signer(Alg::RS256).jwk).is_ok());
    }

    #[test]
    fn jwk_alg_must_fit_the_key_type_and_use_must_be_sig() {
        let (ec, rsa, ed) = (signer(Alg::ES256).jwk, signer(Alg::RS256).jwk, signer(Alg::EdDSA).jwk);
        let misfit = key_err("JWK \"alg\" does not fit its key type");
        for (jwk, alg) in [(&ec, "RS256"), (&ec, "EdDSA"), (&rsa, "ES256"), (&rsa, "EdDSA"), (&ed, "ES256"), (&ed, "PS256")] {
            assert_eq!(import_err(&with(jwk.clone(), "alg", alg.into())), misfit, "{alg}");
        }
        let unknown = key_err("JWK \"alg\" is not one Warden verifies");
        for alg in [json!("RS512"), json!("HS256"), json!("none"), json!(256)] {
            assert_eq!(import_err(&with(rsa.clone(), "alg", alg.clone())), unknown, "{alg}");
        }
        let rsa_any = VerificationKey::from_jwk(&without(rsa.clone(), "alg")).unwrap();
        assert_eq!(rsa_any.algs, [Alg::RS256, Alg::PS256]);
        let ps = VerificationKey::from_jwk(&with(rsa.clone(), "alg", "PS256".into())).unwrap();
        assert_eq!(ps.algs, [Alg::PS256]);
        assert_eq!(import_err(&with(ec.clone(), "use", "enc".into())), key_err("JWK \"use\" is not \"sig\""));
        assert_eq!(
            import_err(&with(without(ec.clone(), "use"), "key_ops", json!(["sign"]))),
            key_err("JWK \"key_ops\" does not include \"verify\"")
        );
        assert_eq!(import_err(&with(ec.clone(), "kid", json!(1))), key_err("JWK \"kid\" must be a string"));
        assert_eq!(import_err(&json!({"kty": "RSA2"})), key_err("unsupported key type \"RSA2\""));
        assert_eq!(import_err(&json!({"n": "AQAB"})), key_err("JWK lacks \"kty\""));
    }
}
