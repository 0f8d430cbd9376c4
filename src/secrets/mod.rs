//! The master key and what it protects: sealed private keys at rest, keyed hashes of client
//! secrets and tokens, and generation of new high-entropy secrets.
//!
//! The master key (key-encryption key) comes from `WARDEN_MASTER_KEY` (32 bytes, base64) or,
//! failing that, from `<data_dir>/master.key`, created on first start with mode 0600.
//! Two sub-keys are derived from it with HKDF-SHA-256: an AES-256-GCM sealing key and an
//! HMAC-SHA-256 key for secret hashes. Every node of a cluster needs the same master key.

use crate::model::SecretHash;
use aws_lc_rs::{aead, hkdf, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `WARDEN_MASTER_KEY` or the key file does not hold 32 base64 bytes.
    #[error("the master key must be 32 bytes, base64-encoded ({0})")]
    BadMasterKey(String),
    /// The key file could not be read or created.
    #[error("master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file can be read by other users.
    #[error("{path} is readable by other users (mode {mode:o}): run `chmod 600 {path}`, or set WARDEN_MASTER_KEY instead")]
    KeyFileExposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Sealed data did not open: wrong master key or tampered data.
    #[error("sealed data does not open with this master key")]
    Unseal,
    /// The system random generator failed.
    #[error("random generator failure")]
    Random,
}

/// Where the master key came from, to tell the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// The `WARDEN_MASTER_KEY` environment variable.
    Environment,
    /// An existing key file.
    File(PathBuf),
    /// A key file created just now.
    Created(PathBuf),
}

/// The derived keys. Never printed: `Debug` is redacted.
pub struct MasterKey {
    seal: aead::LessSafeKey,
    mac: hmac::Key,
    check: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// The environment variable that carries the master key.
pub const MASTER_KEY_ENV: &str = "WARDEN_MASTER_KEY";
const KEY_FILE: &str = "master.key";

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl MasterKey {
    /// Derives the sub-keys from 32 bytes of key material.
    pub fn from_bytes(ikm: &[u8; 32]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"warden master key v1").extract(ikm);
        let mut seal_key = [0u8; 32];
        prk.expand(&[b"seal"], Len(32))
            .and_then(|okm| okm.fill(&mut seal_key))
            .expect("HKDF-SHA-256 can produce 32 bytes");
        let seal = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, &seal_key).expect("32-byte AES key"),
        );
        let mac = hmac::Key::from(
            prk.expand(&[b"secret-hash"], hmac::HMAC_SHA256).expect("HKDF for HMAC key"),
        );
        let mut check = [0u8; 32];
        prk.expand(&[b"key-check"], Len(32))
            .and_then(|okm| okm.fill(&mut check))
            .expect("HKDF-SHA-256 can produce 32 bytes");
        Self { seal, mac, check }
    }

    /// Parses base64 (standard or URL-safe, padded or not) into a key.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(text))
            .map_err(|e| SecretError::BadMasterKey(e.to_string()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| SecretError::BadMasterKey(format!("got {} bytes", b.len())))?;
        Ok(Self::from_bytes(&arr))
    }

    /// Loads the master key from the environment value if given, else from the data dir's key
    /// file, creating that file (mode 0600) when it does not exist. `app::Core::open` uses
    /// [`load`](Self::load) and [`create`](Self::create) separately, so that it never creates
    /// a key for a store that already holds data.
    pub fn load_or_create(
        env_value: Option<&str>,
        data_dir: &Path,
    ) -> Result<(Self, KeySource), SecretError> {
        match Self::load(env_value, data_dir)? {
            Some(found) => Ok(found),
            None => Self::create(data_dir),
        }
    }

    /// The key from the environment value if given, else from `<data_dir>/master.key`;
    /// `None` when neither exists. A key file that other users can read is refused: whoever
    /// reads it can unseal every signing key.
    pub fn load(env_value: Option<&str>, data_dir: &Path) -> Result<Option<(Self, KeySource)>, SecretError> {
        if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
            return Ok(Some((Self::from_base64(v)?, KeySource::Environment)));
        }
        let path = data_dir.join(KEY_FILE);
        let io_err = |source| SecretError::KeyFile { path: path.clone(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                check_private(&path)?;
                Ok(Some((Self::from_base64(&text)?, KeySource::File(path))))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Creates `<data_dir>/master.key` (mode 0600) with a new random key. When another
    /// process creates it at the same moment, both end up with the one that won.
    pub fn create(data_dir: &Path) -> Result<(Self, KeySource), SecretError> {
        let path = data_dir.join(KEY_FILE);
        let io_err = |source| SecretError::KeyFile { path: path.clone(), source };
        create_private_dir(data_dir).map_err(io_err)?;
        let mut ikm = [0u8; 32];
        rand::fill(&mut ikm).map_err(|_| SecretError::Random)?;
        // Written whole to a private temporary file, then linked into place: a process that
        // starts at the same moment (a CLI command beside a starting server) either finds no
        // key file or a complete one, never a half-written one, and only one key wins.
        let tmp = data_dir.join(format!("{KEY_FILE}.{}.tmp", random_text(6)?));
        let tmp_err = |source| SecretError::KeyFile { path: tmp.clone(), source };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(tmp_err)?;
        let written = f.write_all(URL_SAFE_NO_PAD.encode(ikm).as_bytes()).and_then(|()| f.sync_all());
        drop(f);
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, &path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok((Self::from_bytes(&ikm), KeySource::Created(path))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path).map_err(io_err)?;
                Ok((Self::from_base64(&text)?, KeySource::File(path)))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// A value that identifies this master key without revealing it (HKDF-SHA-256 output
    /// under its own label): stored in the catalog so that every node and CLI run can tell a
    /// wrong key before it writes anything sealed or hashed with it.
    pub fn check_value(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.check)
    }

    /// Constant-time comparison of a stored check value with this key's.
    pub fn matches_check_value(&self, stored: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(stored.trim()) else { return false };
        aws_lc_rs::constant_time::verify_slices_are_equal(&bytes, &self.check).is_ok()
    }

    /// Encrypts `plaintext` bound to `aad` (AES-256-GCM, random 96-bit nonce prepended).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let mut buf = plaintext.to_vec();
        self.seal
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| SecretError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < aead::NONCE_LEN {
            return Err(SecretError::Unseal);
        }
        let (nonce, ct) = sealed.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Unseal)?;
        let mut buf = ct.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, aead::Aad::from(aad), &mut buf)
            .map_err(|_| SecretError::Unseal)?;
        Ok(plain.to_vec())
    }

    /// The keyed hash stored for a secret. HMAC-SHA-256 is right for machine-generated
    /// secrets of ≥ 256 bits: guessing is hopeless, so a slow hash would only slow the token
    /// endpoint. Human passwords use Argon2id instead.
    pub fn hash_secret(&self, secret: &str) -> SecretHash {
        let tag = hmac::sign(&self.mac, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        SecretHash(out)
    }

    /// Constant-time check of a presented secret against its stored hash.
    pub fn verify_secret(&self, secret: &str, hash: &SecretHash) -> bool {
        hmac::verify(&self.mac, secret.as_bytes(), &hash.0).is_ok()
    }
}

/// Creates `dir` (and its parents) if missing, the last one with mode 0700: it holds the key
/// file and, by default, the database.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Refuses a key file that group or others may read or write.
fn check_private(path: &Path) -> Result<(), SecretError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| SecretError::KeyFile { path: path.into(), source })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::KeyFileExposed { path: path.into(), mode });
        }
    }
    let _ = path;
    Ok(())
}

/// A new secret of 256 random bits, base64url (43 characters).
pub fn generate_secret() -> Result<String, SecretError> {
    random_text(32)
}

/// A random identifier of `bytes` random bytes, base64url.
pub fn random_text(bytes: usize) -> Result<String, SecretError> {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf).map_err(|_| SecretError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// Refuses an operator-supplied secret weaker than a generated one: its length times the
/// bits per character of the character classes it uses must reach 256, and it must not be a
/// short pattern repeated (at least 16 distinct characters).
pub fn check_secret_strength(secret: &str) -> Result<(), String> {
    let mut classes = 0u32;
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    for ch in secret.chars() {
        if ch.is_ascii_lowercase() {
            lower = true
        } else if ch.is_ascii_uppercase() {
            upper = true
        } else if ch.is_ascii_digit() {
            digit = true
        } else {
            other = true
        }
    }
    if lower {
        classes += 26
    }
    if upper {
        classes += 26
    }
    if digit {
        classes += 10
    }
    if other {
        classes += 32
    }
    let bits = secret.chars().count() as f64 * f64::from(classes.max(1)).log2();
    let distinct = secret.chars().collect::<std::collections::HashSet<_>>().len();
    if bits < 256.0 || distinct < 16 {
        return Err(format!(
            "the secret is too weak (about {bits:.0} bits, {distinct} distinct characters); \
             use at least 256 bits, e.g. 43 random base64url characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_aad() {
        let k = MasterKey::from_bytes(&[1; 32]);
        let sealed = k.seal(b"private", b"kid-1").unwrap();
        assert_eq!(k.open(&sealed, b"kid-1").unwrap(), b"private");
        assert!(k.open(&sealed, b"kid-2").is_err(), "aad is bound");
        assert!(MasterKey::from_bytes(&[2; 32]).open(&sealed, b"kid-1").is_err());
        assert!(k.open(&sealed[..5], b"kid-1").is_err());
    }

    #[test]
    fn secret_hash_verifies_only_the_secret() {
        let k = MasterKey::from_bytes(&[1; 32]);
        let h = k.hash_secret("s3cret");
        assert!(k.verify_secret("s3cret", &h));
        assert!(!k.verify_secret("s3cres", &h));
        assert!(!MasterKey::from_bytes(&[9; 32]).verify_secret("s3cret", &h), "keyed");
    }

    #[test]
    fn generated_secrets_pass_the_strength_check_and_weak_ones_fail() {
        let s = generate_secret().unwrap();
        assert_eq!(s.len(), 43);
        check_secret_strength(&s).unwrap();
        check_secret_strength(&"ab".repeat(40)).unwrap_err();
        check_secret_strength("correct horse battery staple").unwrap_err();
        check_secret_strength(&"0123456789abcdef".repeat(4)).unwrap();
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let (k, _) = MasterKey::load_or_create(None, &d).unwrap();
                    k.hash_secret("probe")
                })
            })
            .collect();
        let hashes: Vec<SecretHash> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "every process sees the same key");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "only master.key remains");
    }

    #[test]
    fn master_key_parses_base64_variants() {
        let raw = [5u8; 32];
        assert!(MasterKey::from_base64(&URL_SAFE_NO_PAD.encode(raw)).is_ok());
        assert!(MasterKey::from_base64(&STANDARD.encode(raw)).is_ok());
        assert!(MasterKey::from_base64("short").is_err());
    }
}
