//! JWS/JWT/JWK for every module that signs or verifies: the provider signs access tokens,
//! introspection and (later) the gateway verify them, client authentication verifies
//! `private_key_jwt` assertions.
//!
//! - `keys`: key generation, parsed signing keys (kept in memory, signing with aws-lc-rs
//!   directly), public JWKs and RFC 7638 thumbprints.
//! - `ring`: the [`KeyRing`] built from stored keys: which key signs now, which are published.
//! - `verify`: the one JWT verification routine. The token's header never chooses the key or
//!   the algorithm: `kid` is looked up only among keys we trust, and the algorithm must be the
//!   one that key is registered for.

pub mod dpop;
mod keys;
mod ring;
mod verify;

pub use keys::{Alg, SigningKey, generate_key_record, jwk_thumbprint};
pub use ring::{KeyRing, RingState, is_published, signing_record};
pub use verify::{Expectations, KeyLookup, VerificationKey, client_jwks, verify};

/// base64url (no padding) of the SHA-256 of `data`: PKCE's S256 challenge (RFC 7636 §4.2),
/// DPoP's and attestations' `ath` (RFC 9449 §4.2), and the stored ids of secrets handed out.
pub fn sha256_b64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

/// Errors of signing and verification. The variants name what is wrong; none carries key
/// material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    /// Not a well-formed JWS compact serialization, or claims of the wrong shape.
    #[error("malformed token")]
    Malformed,
    /// The header has a `crit` member: we understand no extensions (RFC 7515 §4.1.11).
    #[error("critical header extension not understood")]
    UnsupportedCritical,
    /// The header's `typ` is not one of the accepted types (RFC 8725 §3.11).
    #[error("wrong token type")]
    WrongType,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// No trusted key has this `kid` (or none was given where one is needed).
    #[error("unknown key id")]
    UnknownKid,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not include the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// The header names no algorithm Warden verifies (`none`, HMAC, unknown), or one the key
    /// is not registered for.
    #[error("algorithm not allowed")]
    AlgNotAllowed,
    /// A required claim is missing.
    #[error("missing claim {0}")]
    MissingClaim(String),
    /// A key could not be generated, parsed or used.
    #[error("key error: {0}")]
    Key(String),
}
