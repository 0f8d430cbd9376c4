//! DPoP proofs (RFC 9449): the one checker the provider's token endpoint and userinfo, and the
//! gateway, use; and the server-provided nonces of §8, stateless so that every node accepts
//! the nonces of every other.
//!
//! The caller keeps what needs storage: a proof's `jti` must be recorded (single use, every
//! node) for as long as [`ProofCheck::max_age`] plus the leeway lets the proof pass.

use super::JoseError;
use super::keys::{Alg, jwk_thumbprint};
use super::verify::{VerificationKey, header, numeric_date, signed_claims};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// RFC 9449 §4.2: the `typ` of a proof.
const DPOP_TYP: &str = "dpop+jwt";

/// Longest `jti` accepted: a proof's id is random and short; anything longer is not one.
const MAX_JTI_LEN: usize = 256;

/// What the request a proof came with looks like.
pub struct ProofCheck<'a> {
    /// The request's method (`htm`), compared case-sensitively (RFC 9110 §9.1).
    pub method: &'a str,
    /// The URI the server publishes for the resource (`htu`); query and fragment of either
    /// side are ignored.
    pub uri: &'a str,
    /// Now, unix seconds.
    pub now: i64,
    /// How old (`iat`) a proof may be, seconds.
    pub max_age: u64,
    /// Allowed clock skew, seconds: a proof may be this far in the future, and this much
    /// older than `max_age`.
    pub leeway: u64,
    /// The access token presented with the proof: `ath` is then required and must be its
    /// hash (§4.3 step 12).
    pub access_token: Option<&'a str>,
    /// When the server requires nonces: the verifier of the `nonce` claim (§8).
    pub nonces: Option<&'a Nonces>,
}

/// A proof that passed every check.
#[derive(Debug, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint (SHA-256, base64url) of the proof's key: `cnf.jkt`.
    pub jkt: String,
    /// The proof's `jti`: record it; a second use is a replay.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: i64,
}

impl Proof {
    /// The key under which to record this proof against replay: its key's thumbprint and its
    /// `jti` (two keys may pick the same `jti` without harm).
    pub fn replay_key(&self) -> String {
        format!("{}:{}", self.jkt, self.jti)
    }
}

/// Why a proof is refused. Every variant but [`DpopError::UseNonce`] is `invalid_dpop_proof`
/// on the wire (RFC 9449 §5, §7.1); the text says which check failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// The proof failed a check.
    #[error("{0}")]
    Invalid(&'static str),
    /// The server requires a nonce and the proof has none, or a stale one (§8): `use_dpop_nonce`.
    #[error("the DPoP proof must carry a fresh server nonce")]
    UseNonce,
}

/// Checks a DPoP proof, in the order of RFC 9449 §4.3:
/// 1. a compact JWS whose header is a JSON object (step 2);
/// 2. `typ` is `dpop+jwt` (step 4);
/// 3. no `crit` header: we understand no extensions (RFC 7515 §4.1.11);
/// 4. `alg` is an asymmetric algorithm Warden verifies — never `none` or HMAC (step 5);
/// 5. `jwk` is a public key (no private members), of a type and curve Warden verifies, that
///    fits `alg` (steps 6, 7);
/// 6. the signature verifies with that key (step 6);
/// 7. the payload has `jti` (a string of printable ASCII, at most 256), `htm` and `htu`
///    (strings) and `iat` (an integer) (step 3);
/// 8. `htm` is the request's method (step 8);
/// 9. `htu` is the request's URI: same scheme, host, port and path after RFC 3986
///    normalisation, query and fragment ignored (step 9);
/// 10. `iat` lies between `now - max_age - leeway` and `now + leeway` (step 11);
/// 11. with an access token: `ath` is the base64url SHA-256 of it (step 12);
/// 12. with server nonces: `nonce` is one this server (any node) issued recently (step 10) —
///     else [`DpopError::UseNonce`].
///
/// The `jti` is not checked against earlier proofs here: that needs the store (the caller).
pub fn check_proof(proof: &str, check: &ProofCheck<'_>) -> Result<Proof, DpopError> {
    use DpopError::Invalid;
    let header = header(proof).map_err(|_| Invalid("the DPoP proof is not a well-formed JWT"))?;
    if !header.get("typ").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(DPOP_TYP)) {
        return Err(Invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    if header.contains_key("crit") {
        return Err(Invalid("the DPoP proof has a critical header Warden does not understand"));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .ok_or(Invalid("the DPoP proof's alg is not an asymmetric algorithm Warden accepts"))?;
    let jwk = header.get("jwk").filter(|j| j.is_object()).ok_or(Invalid("the DPoP proof has no jwk header"))?;
    let key = VerificationKey::from_jwk(jwk).map_err(|_| Invalid("the DPoP proof's jwk is not a usable public key"))?;
    if !key.algs.contains(&alg) {
        return Err(Invalid("the DPoP proof's alg does not fit its jwk"));
    }
    let claims = signed_claims(proof, &key, alg).map_err(|e| match e {
        JoseError::BadSignature => Invalid("the DPoP proof's signature does not verify"),
        _ => Invalid("the DPoP proof is not a well-formed JWT"),
    })?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| j.len() <= MAX_JTI_LEN && crate::model::is_vschar_id(j))
        .ok_or(Invalid("the DPoP proof needs a jti"))?;
    let htm = text("htm").ok_or(Invalid("the DPoP proof needs htm"))?;
    let htu = text("htu").ok_or(Invalid("the DPoP proof needs htu"))?;
    let iat = match numeric_date(&claims, "iat") {
        Ok(Some(iat)) => iat,
        _ => return Err(Invalid("the DPoP proof needs iat (a number of seconds)")),
    };
    if htm != check.method {
        return Err(Invalid("the DPoP proof's htm is not this request's method"));
    }
    if !same_resource(htu, check.uri) {
        return Err(Invalid("the DPoP proof's htu is not this request's URI"));
    }
    let (iat_w, now, max_age, leeway) =
        (i128::from(iat), i128::from(check.now), i128::from(check.max_age), i128::from(check.leeway));
    if iat_w > now + leeway {
        return Err(Invalid("the DPoP proof is issued in the future"));
    }
    if iat_w < now - max_age - leeway {
        return Err(Invalid("the DPoP proof is too old"));
    }
    if let Some(token) = check.access_token {
        let expected = super::sha256_b64url(token.as_bytes());
        if text("ath") != Some(expected.as_str()) {
            return Err(Invalid("the DPoP proof's ath does not match the access token"));
        }
    }
    if let Some(nonces) = check.nonces
        && !text("nonce").is_some_and(|n| nonces.accepts(n, check.now))
    {
        return Err(DpopError::UseNonce);
    }
    let jkt = jwk_thumbprint(jwk).map_err(|_| Invalid("the DPoP proof's jwk is not a usable public key"))?;
    Ok(Proof { jkt, jti: jti.to_owned(), iat })
}

/// Whether two URIs name the same resource for `htu` (RFC 9449 §4.3 step 9): equal scheme,
/// host, port (default ports made explicit) and path after the syntax- and scheme-based
/// normalisation of RFC 3986 §6.2.2–6.2.3 that URL parsing applies (case of scheme and host,
/// default port, dot segments, an empty path as `/`); query and fragment ignored.
fn same_resource(htu: &str, expected: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(expected)) else { return false };
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
        && a.username().is_empty()
        && a.password().is_none()
}

/// Server-provided DPoP nonces (RFC 9449 §8) that need no storage: a nonce is the number of
/// the period it was issued in and an HMAC of that number, so every node holding the same key
/// issues and accepts the same nonces. A nonce is accepted during its period and the next.
pub struct Nonces {
    key: hmac::Key,
    period: u64,
}

impl Nonces {
    /// Nonces keyed by `key` (32 secret bytes every node shares), changing every `period`
    /// seconds (at least 1).
    pub fn new(key: &[u8; 32], period: u64) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, key), period: period.max(1) }
    }

    fn window(&self, now: i64) -> u64 {
        u64::try_from(now).unwrap_or(0) / self.period
    }

    fn for_window(&self, window: u64) -> String {
        let tag = hmac::sign(&self.key, &window.to_be_bytes());
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The nonce to hand out now (`DPoP-Nonce`).
    pub fn current(&self, now: i64) -> String {
        self.for_window(self.window(now))
    }

    /// Whether `nonce` was issued by a holder of the key in this period or the previous one.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else { return false };
        if bytes.len() != 8 + 32 {
            return false;
        }
        let (window, tag) = bytes.split_at(8);
        let window = u64::from_be_bytes(window.try_into().unwrap_or_default());
        let current = self.window(now);
        (window == current || window.checked_add(1) == Some(current))
            && hmac::verify(&self.key, &window.to_be_bytes(), tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{SigningKey, generate_key_record};
    use crate::secrets::MasterKey;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const URI: &str = "https://as.example/token";

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    struct Holder {
        key: SigningKey,
        jwk: Value,
    }

    fn holder(alg: Alg) -> Holder {
        let master = MasterKey::from_bytes(&[9; 32]);
        let rec = generate_key_record(alg, &master, NOW, NOW).unwrap();
        let pkcs8 = master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
        let key = SigningKey::from_pkcs8(rec.kid.clone(), alg, &pkcs8).unwrap();
        let mut jwk = rec.public_jwk;
        for m in ["kid", "use", "alg"] {
            jwk.as_object_mut().unwrap().remove(m);
        }
        Holder { key, jwk }
    }

    fn sign(h: &Holder, header: &Value, claims: &Value) -> String {
        let mut out = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = h.key.sign(out.as_bytes()).unwrap();
        out.push('.');
        out.push_str(&b64(sig));
        out
    }

    fn good_header(h: &Holder) -> Value {
        json!({"typ": "dpop+jwt", "alg": h.key.alg.as_str(), "jwk": h.jwk})
    }

    fn good_claims() -> Value {
        json!({"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": URI, "iat": NOW})
    }

    fn check() -> ProofCheck<'static> {
        ProofCheck { method: "POST", uri: URI, now: NOW, max_age: 60, leeway: 5, access_token: None, nonces: None }
    }

    fn with_claims(h: &Holder, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut c = good_claims();
        edit(c.as_object_mut().unwrap());
        sign(h, &good_header(h), &c)
    }

    fn with_header(h: &Holder, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut hd = good_header(h);
        edit(hd.as_object_mut().unwrap());
        sign(h, &hd, &good_claims())
    }

    fn refused(proof: &str, c: &ProofCheck<'_>) -> &'static str {
        match check_proof(proof, c) {
            Err(DpopError::Invalid(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_good_proof_gives_its_key_thumbprint_for_every_algorithm() {
        for alg in Alg::ALL {
            let h = holder(alg);
            let p = check_proof(&sign(&h, &good_header(&h), &good_claims()), &check()).unwrap();
            assert_eq!(p.jkt, jwk_thumbprint(&h.jwk).unwrap(), "{alg:?}");
            assert_eq!(p.jti, "e1j3V_bKic8-LAEB");
            assert_eq!(p.iat, NOW);
            assert_eq!(p.replay_key(), format!("{}:e1j3V_bKic8-LAEB", p.jkt));
        }
    }

    #[test]
    fn each_header_check_has_its_own_error() {
        let h = holder(Alg::ES256);
        let c = check();
        assert_eq!(refused("a.b", &c), "the DPoP proof is not a well-formed JWT");
        assert_eq!(refused("!!.b.c", &c), "the DPoP proof is not a well-formed JWT");
        let typ = |t: Value| with_header(&h, |m| { m.insert("typ".into(), t); });
        assert_eq!(refused(&typ(json!("jwt")), &c), "the DPoP proof's typ must be dpop+jwt");
        assert_eq!(refused(&with_header(&h, |m| { m.remove("typ"); }), &c), "the DPoP proof's typ must be dpop+jwt");
        assert!(check_proof(&typ(json!("DPoP+JWT")), &c).is_ok(), "media types compare case-insensitively");
        assert_eq!(
            refused(&with_header(&h, |m| { m.insert("crit".into(), json!(["exp"])); }), &c),
            "the DPoP proof has a critical header Warden does not understand"
        );
        for alg in ["none", "HS256", "es256", "ES384"] {
            assert_eq!(
                refused(&with_header(&h, |m| { m.insert("alg".into(), json!(alg)); }), &c),
                "the DPoP proof's alg is not an asymmetric algorithm Warden accepts",
                "{alg}"
            );
        }
        assert_eq!(refused(&with_header(&h, |m| { m.remove("jwk"); }), &c), "the DPoP proof has no jwk header");
        assert_eq!(
            refused(&with_header(&h, |m| { m.insert("jwk".into(), json!("x")); }), &c),
            "the DPoP proof has no jwk header"
        );
        // A private key in the header (RFC 9449 §4.3 step 7), and a symmetric one.
        let mut private = h.jwk.clone();
        private["d"] = json!(b64([1u8; 32]));
        assert_eq!(
            refused(&with_header(&h, |m| { m.insert("jwk".into(), private); }), &c),
            "the DPoP proof's jwk is not a usable public key"
        );
        assert_eq!(
            refused(&with_header(&h, |m| { m.insert("jwk".into(), json!({"kty": "oct", "k": b64([1u8; 32])})); }), &c),
            "the DPoP proof's jwk is not a usable public key"
        );
        // The key says EC, the header says RSA: the header cannot pick the algorithm.
        assert_eq!(
            refused(&with_header(&h, |m| { m.insert("alg".into(), json!("RS256")); }), &c),
            "the DPoP proof's alg does not fit its jwk"
        );
    }

    #[test]
    fn the_signature_must_be_by_the_key_in_the_header() {
        let h = holder(Alg::ES256);
        let other = holder(Alg::ES256);
        // Signed by `other`, naming `h`'s key.
        let forged = sign(&other, &good_header(&h), &good_claims());
        assert_eq!(refused(&forged, &check()), "the DPoP proof's signature does not verify");
        let good = sign(&h, &good_header(&h), &good_claims());
        let (head, _) = good.rsplit_once('.').unwrap();
        assert_eq!(refused(&format!("{head}.{}", b64([0u8; 64])), &check()), "the DPoP proof's signature does not verify");
    }

    #[test]
    fn each_claim_check_has_its_own_error() {
        let h = holder(Alg::EdDSA);
        let c = check();
        for name in ["jti", "htm", "htu", "iat"] {
            let why = refused(&with_claims(&h, |m| { m.remove(name); }), &c);
            assert!(why.contains(name), "{name}: {why}");
        }
        assert_eq!(refused(&with_claims(&h, |m| { m.insert("jti".into(), json!("")); }), &c), "the DPoP proof needs a jti");
        assert_eq!(refused(&with_claims(&h, |m| { m.insert("jti".into(), json!("x".repeat(257))); }), &c), "the DPoP proof needs a jti");
        assert_eq!(refused(&with_claims(&h, |m| { m.insert("jti".into(), json!(7)); }), &c), "the DPoP proof needs a jti");
        assert_eq!(
            refused(&with_claims(&h, |m| { m.insert("iat".into(), json!("1700000000")); }), &c),
            "the DPoP proof needs iat (a number of seconds)"
        );
        assert_eq!(
            refused(&with_claims(&h, |m| { m.insert("htm".into(), json!("GET")); }), &c),
            "the DPoP proof's htm is not this request's method"
        );
        assert_eq!(
            refused(&with_claims(&h, |m| { m.insert("htm".into(), json!("post")); }), &c),
            "the DPoP proof's htm is not this request's method"
        );
    }

    #[test]
    fn htu_is_compared_after_normalisation_without_query_or_fragment() {
        let h = holder(Alg::ES256);
        let c = check();
        for same in [URI, "HTTPS://AS.example:443/token", "https://as.example/./token", "https://as.example/token?x=1#f"] {
            assert!(check_proof(&with_claims(&h, |m| { m.insert("htu".into(), json!(same)); }), &c).is_ok(), "{same}");
        }
        for other in [
            "http://as.example/token",
            "https://as.example:8443/token",
            "https://as.example/token/",
            "https://as.example/Token",
            "https://other.example/token",
            "https://user@as.example/token",
            "/token",
            "not a url",
        ] {
            assert_eq!(
                refused(&with_claims(&h, |m| { m.insert("htu".into(), json!(other)); }), &c),
                "the DPoP proof's htu is not this request's URI",
                "{other}"
            );
        }
    }

    #[test]
    fn iat_must_be_recent_within_the_bounds_inclusive() {
        let h = holder(Alg::ES256);
        let c = check();
        let at = |iat: i64| with_claims(&h, |m| { m.insert("iat".into(), json!(iat)); });
        assert!(check_proof(&at(NOW + 5), &c).is_ok());
        assert_eq!(refused(&at(NOW + 6), &c), "the DPoP proof is issued in the future");
        assert!(check_proof(&at(NOW - 65), &c).is_ok());
        assert_eq!(refused(&at(NOW - 66), &c), "the DPoP proof is too old");
    }

    #[test]
    fn with_an_access_token_ath_is_required_and_must_match() {
        let h = holder(Alg::ES256);
        let token = "eyJ.token.value";
        let c = ProofCheck { access_token: Some(token), ..check() };
        let ath = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()));
        assert!(check_proof(&with_claims(&h, |m| { m.insert("ath".into(), json!(ath)); }), &c).is_ok());
        let why = "the DPoP proof's ath does not match the access token";
        assert_eq!(refused(&with_claims(&h, |_| {}), &c), why);
        let other = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"another token"));
        assert_eq!(refused(&with_claims(&h, |m| { m.insert("ath".into(), json!(other)); }), &c), why);
    }

    #[test]
    fn nonces_are_required_when_configured_and_expire_after_the_next_period() {
        let h = holder(Alg::ES256);
        let nonces = Nonces::new(&[3; 32], 300);
        let c = ProofCheck { nonces: Some(&nonces), ..check() };
        assert_eq!(check_proof(&with_claims(&h, |_| {}), &c), Err(DpopError::UseNonce));
        let nonce = nonces.current(NOW);
        assert!(check_proof(&with_claims(&h, |m| { m.insert("nonce".into(), json!(nonce)); }), &c).is_ok());
        // Accepted for the rest of its period and the next one, not after.
        let start = NOW - NOW.rem_euclid(300);
        assert!(nonces.accepts(&nonce, start + 599));
        assert!(!nonces.accepts(&nonce, start + 600));
        // Another key's nonce, a tampered one, garbage.
        assert!(!Nonces::new(&[4; 32], 300).accepts(&nonce, NOW));
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        bytes[7] ^= 1;
        assert!(!nonces.accepts(&b64(&bytes), NOW));
        assert!(!nonces.accepts("garbage", NOW));
        assert!(!nonces.accepts("", NOW));
        // Every node with the same key agrees.
        assert!(Nonces::new(&[3; 32], 300).accepts(&nonce, NOW));
    }
}
