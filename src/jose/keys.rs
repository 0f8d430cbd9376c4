//! Key generation and signing with parsed aws-lc-rs key pairs.
//!
//! Signing keeps the parsed key in memory: re-parsing PKCS#8 on every signature (what a
//! generic JWT crate's `encode` does) costs ~40 % of ES256 throughput.

use super::JoseError;
use crate::model::{Kid, SigningKeyRecord};
use crate::secrets::MasterKey;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::fmt;

/// Signature algorithms Warden signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    /// ECDSA P-256 SHA-256: the default for access tokens.
    ES256,
    /// RSASSA-PKCS1-v1_5 SHA-256 (2048-bit keys): OIDC's default for ID tokens.
    RS256,
    /// RSASSA-PSS SHA-256 (2048-bit keys).
    PS256,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// Every algorithm, in the order metadata lists them.
    pub const ALL: [Alg; 4] = [Alg::ES256, Alg::RS256, Alg::PS256, Alg::EdDSA];

    /// The JWA name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Parses a JWA name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub(super) fn jwt_alg(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::PS256 => jsonwebtoken::Algorithm::PS256,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

enum Pair {
    Ecdsa(signature::EcdsaKeyPair),
    Rsa(signature::RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ed25519(signature::Ed25519KeyPair),
}

/// A parsed private key ready to sign. `Debug` shows only the kid and algorithm.
pub struct SigningKey {
    /// Key id placed in the JWS header.
    pub kid: Kid,
    /// The algorithm this key signs with.
    pub alg: Alg,
    pair: Pair,
    /// Pre-encoded `{"alg","kid","typ":"at+jwt"}` header, base64url.
    at_jwt_header: String,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({} {})", self.alg.as_str(), self.kid)
    }
}

fn key_err(e: impl fmt::Display) -> JoseError {
    JoseError::Key(e.to_string())
}

impl SigningKey {
    /// Parses a PKCS#8 private key for `alg`.
    pub fn from_pkcs8(kid: Kid, alg: Alg, pkcs8: &[u8]) -> Result<Self, JoseError> {
        let pair = match alg {
            Alg::ES256 => Pair::Ecdsa(
                signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(key_err)?,
            ),
            Alg::RS256 | Alg::PS256 => {
                let pair = signature::RsaKeyPair::from_pkcs8(pkcs8).map_err(key_err)?;
                if pair.public_modulus_len() < 256 {
                    return Err(JoseError::Key("RSA keys must have at least 2048 bits".into()));
                }
                let enc: &'static dyn signature::RsaEncoding = if alg == Alg::RS256 {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PSS_SHA256
                };
                Pair::Rsa(pair, enc)
            }
            Alg::EdDSA => {
                Pair::Ed25519(signature::Ed25519KeyPair::from_pkcs8(pkcs8).map_err(key_err)?)
            }
        };
        let header = json!({"alg": alg.as_str(), "kid": kid.as_str(), "typ": "at+jwt"});
        Ok(Self {
            at_jwt_header: URL_SAFE_NO_PAD.encode(header.to_string()),
            kid,
            alg,
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// The raw JWS signature over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.pair {
            Pair::Ecdsa(p) => Ok(p.sign(&self.rng, message).map_err(key_err)?.as_ref().to_vec()),
            Pair::Rsa(p, enc) => {
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(*enc, &self.rng, message, &mut sig).map_err(key_err)?;
                Ok(sig)
            }
            Pair::Ed25519(p) => Ok(p.sign(message).as_ref().to_vec()),
        }
    }

    /// Signs `out` (the JWS signing input) and appends `.` and the base64url signature.
    fn append_signature(&self, out: &mut String) -> Result<(), JoseError> {
        match &self.pair {
            Pair::Ecdsa(p) => {
                let sig = p.sign(&self.rng, out.as_bytes()).map_err(key_err)?;
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(sig.as_ref(), out);
            }
            Pair::Rsa(..) => {
                let sig = self.sign(out.as_bytes())?;
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(sig, out);
            }
            Pair::Ed25519(p) => {
                let sig = p.sign(out.as_bytes());
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(sig.as_ref(), out);
            }
        }
        Ok(())
    }

    /// A compact JWS of `claims` with header `typ` (`at+jwt` uses a pre-encoded header),
    /// built in one buffer sized up front. The result is base64url text and dots only.
    pub fn sign_jwt(&self, typ: &str, claims: &impl serde::Serialize) -> Result<String, JoseError> {
        let other;
        let header = if typ == "at+jwt" {
            self.at_jwt_header.as_str()
        } else {
            other = URL_SAFE_NO_PAD
                .encode(json!({"alg": self.alg.as_str(), "kid": self.kid.as_str(), "typ": typ}).to_string());
            other.as_str()
        };
        let mut payload = Vec::with_capacity(512);
        serde_json::to_writer(&mut payload, claims).map_err(key_err)?;
        let sig_len = match &self.pair {
            Pair::Rsa(p, _) => p.public_modulus_len(),
            Pair::Ecdsa(_) | Pair::Ed25519(_) => 64,
        };
        let mut out = String::with_capacity(header.len() + 2 + (payload.len() + sig_len).div_ceil(3) * 4 + 4);
        out.push_str(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        self.append_signature(&mut out)?;
        Ok(out)
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of a public EC, RSA or OKP key: the required
/// members in lexicographic order, no whitespace.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, JoseError> {
    let s = |k: &str| {
        jwk[k].as_str().map(str::to_owned).ok_or_else(|| JoseError::Key(format!("JWK lacks {k}")))
    };
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => json!({"crv": s("crv")?, "kty": "EC", "x": s("x")?, "y": s("y")?}),
        Some("RSA") => json!({"e": s("e")?, "kty": "RSA", "n": s("n")?}),
        Some("OKP") => json!({"crv": s("crv")?, "kty": "OKP", "x": s("x")?}),
        _ => return Err(JoseError::Key("unsupported kty".into())),
    };
    // serde_json's map is ordered by key (no `preserve_order`), which is what RFC 7638 wants.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.to_string().as_bytes());
    Ok(b64(digest.as_ref()))
}

/// Generates a key for `alg` and returns `(pkcs8, public JWK with kid/use/alg)`.
fn generate(alg: Alg) -> Result<(Vec<u8>, Value), JoseError> {
    let (pkcs8, mut jwk) = match alg {
        Alg::ES256 => {
            let pair = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(key_err)?;
            let point = pair.public_key().as_ref(); // 0x04 || x || y
            let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
            (pair.to_pkcs8v1().map_err(key_err)?.as_ref().to_vec(), jwk)
        }
        Alg::RS256 | Alg::PS256 => {
            let pair = signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(key_err)?;
            let public = pair.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            });
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = pair.as_der().map_err(key_err)?;
            (der.as_ref().to_vec(), jwk)
        }
        Alg::EdDSA => {
            let pair = signature::Ed25519KeyPair::generate().map_err(key_err)?;
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
            (pair.to_pkcs8().map_err(key_err)?.as_ref().to_vec(), jwk)
        }
    };
    let kid = jwk_thumbprint(&jwk)?;
    jwk["kid"] = kid.into();
    jwk["use"] = "sig".into();
    jwk["alg"] = alg.as_str().into();
    Ok((pkcs8, jwk))
}

/// A new key for `alg`, sealed under `master`, that may sign from `activate_at`.
pub fn generate_key_record(
    alg: Alg,
    master: &MasterKey,
    now: i64,
    activate_at: i64,
) -> Result<SigningKeyRecord, JoseError> {
    let (pkcs8, jwk) = generate(alg)?;
    let kid = Kid(jwk["kid"].as_str().unwrap_or_default().to_owned());
    let sealed_private = master.seal(&pkcs8, kid.as_str().as_bytes()).map_err(key_err)?;
    Ok(SigningKeyRecord {
        kid,
        alg: alg.as_str().to_owned(),
        sealed_private,
        public_jwk: jwk,
        created_at: now,
        activate_at,
        publish_until: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(jwk_thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn every_algorithm_generates_signs_and_has_no_private_members() {
        let master = MasterKey::from_bytes(&[4; 32]);
        for alg in Alg::ALL {
            let rec = generate_key_record(alg, &master, 1, 1).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(rec.public_jwk.get(private).is_none(), "{alg:?} leaks {private}");
            }
            assert_eq!(rec.public_jwk["alg"], alg.as_str());
            let pkcs8 = master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
            let key = SigningKey::from_pkcs8(rec.kid.clone(), alg, &pkcs8).unwrap();
            let jwt = key.sign_jwt("at+jwt", &json!({"sub": "x"})).unwrap();
            assert_eq!(jwt.split('.').count(), 3);
        }
    }

    /// Every algorithm's JWT, with the pre-encoded `at+jwt` header and with another `typ`,
    /// verifies with jsonwebtoken against the published JWK alone, under the algorithm the
    /// JWK names and no other (RS256 is PKCS#1 v1.5, PS256 is PSS: never each other's).
    #[test]
    fn every_signature_verifies_against_the_published_jwk_and_its_algorithm_only() {
        use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};
        // Only the signature and the algorithm: these claims have no exp.
        let only = |alg: Alg| {
            let mut v = Validation::new(alg.jwt_alg());
            v.required_spec_claims.clear();
            v.validate_exp = false;
            v
        };
        let master = MasterKey::from_bytes(&[5; 32]);
        for alg in Alg::ALL {
            let rec = generate_key_record(alg, &master, 1, 1).unwrap();
            let pkcs8 = master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
            let key = SigningKey::from_pkcs8(rec.kid.clone(), alg, &pkcs8).unwrap();
            let jwk: Jwk = serde_json::from_value(rec.public_jwk.clone()).unwrap();
            let public = DecodingKey::from_jwk(&jwk).unwrap();
            for typ in ["at+jwt", "JWT"] {
                let jwt = key.sign_jwt(typ, &json!({"sub": "x", "n": 7})).unwrap();
                let header = jsonwebtoken::decode_header(&jwt).unwrap();
                assert_eq!((header.alg, header.kid.as_deref(), header.typ.as_deref()), (alg.jwt_alg(), Some(rec.kid.as_str()), Some(typ)));
                let data = jsonwebtoken::decode::<Value>(&jwt, &public, &only(alg)).unwrap_or_else(|e| panic!("{alg:?} {typ}: {e}"));
                assert_eq!(data.claims, json!({"sub": "x", "n": 7}));
                let other = if alg == Alg::RS256 { Alg::PS256 } else { Alg::RS256 };
                if matches!(alg, Alg::RS256 | Alg::PS256) {
                    let forged = format!("{}.{}", URL_SAFE_NO_PAD.encode(json!({"alg": other.as_str(), "kid": rec.kid.as_str()}).to_string()), jwt.split_once('.').unwrap().1);
                    assert!(jsonwebtoken::decode::<Value>(&forged, &public, &only(other)).is_err(), "{alg:?} is not {other:?}");
                }
            }
            // The raw signature is the JWS one: over the signing input, verifiable alone.
            let sig = key.sign(b"message").unwrap();
            let expected_len = if matches!(alg, Alg::RS256 | Alg::PS256) { 256 } else { 64 };
            assert_eq!(sig.len(), expected_len, "{alg:?}");
            assert!(jsonwebtoken::crypto::verify(&URL_SAFE_NO_PAD.encode(&sig), b"message", &public, alg.jwt_alg()).unwrap(), "{alg:?}");
        }
    }

    /// RFC 7518 §3.3: an RSA key under 2048 bits never signs, even if a record held one.
    #[test]
    fn a_1024_bit_rsa_key_is_refused() {
        // A throwaway key made for this test: `openssl genpkey -algorithm RSA
        // -pkeyopt rsa_keygen_bits:1024`, then `openssl pkcs8 -topk8 -nocrypt`.
        let b64 = [
            "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAMBYCOnmCzkeF8C15d41WkKoGkoPYq3M78w2HtzzIHnWSKJb",
            "oQEajsOSvkj5VDukaG/qweLKCBsgU/6GjvZO9L8YvL7vBUMlBKRaAodp8bbjEUkndsG8af6QAZ7ujtAu04R0QPKeit3U7QFW",
            "Y0YWlARJPJmISzNJyXWbgGdK/MCvAgMBAAECgYAY9JMbfcxg+cWNLEyJuxRd55+Zkkt0T02hijgQ5L6G8EV2QzstgHubZlOn",
            "9il2n4spUiUbvqi0lEoxkNXFoVLhqlUbHePR8VydT9+1pbgeyOy0cWGgsaUmiLr3dIv/jeQ77kGEZ1miMAS64LSKHYX/jCxm",
            "VNjwX6USnF1E88nfyQJBAPtppcvclF5i+ledVp+oae0sbxqk8hPA9b+dOI3b+4B9Q8ixFADPnbRbOpMpvq746f/ZxCGtqMiY",
            "xWxg8yZcV80CQQDD2nnXWfFd/iml/wWS3cX1lADa/YY4NxqkFvWFalwyLpOwyYEysypmgrIoAq3o4cq1aWG448YowJ9H55DF",
            "6kZrAkEAl/WXXM0KcLJqliJnhUEKJWzCCty/5OiwoQyqbjQUo+kS228MpCDZNXYexWxp8OBKr3Y0chbA+d49FfDThtAx0QJA",
            "KWhnmkBJ57V02MOySfrZf7Jq++HeHsSHvWmdPzfdhj6Suy3fQvjeXg4D3LG0Uyhp0zEUmCKQIs2W33z1/uIpQQJAaqR8Zf54",
            "ME5Cb7YrDGBInDgzaRK0yOJcUq3linV9v5yjA9T6FtS5eaSaURx7OQm3A27zGAb7fAjXTPhoLjp5bw==",
        ]
        .concat();
        let pkcs8 = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        for alg in [Alg::RS256, Alg::PS256] {
            // aws-lc-rs refuses it as `TooSmall` before our own check does.
            let refused = SigningKey::from_pkcs8(Kid("small".into()), alg, &pkcs8);
            assert!(matches!(refused, Err(JoseError::Key(_))), "{alg:?}: {:?}", refused.map(|_| ()));
        }
    }
}
