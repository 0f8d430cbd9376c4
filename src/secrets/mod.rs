//! The master key and what it protects: sealed private keys at rest, keyed hashes of client
//! secrets and tokens, and generation of new high-entropy secrets; user passwords (Argon2id,
//! policy) in [`password`].
//!
//! The master key (key-encryption key) comes from `WARDEN_MASTER_KEY` (32 bytes, base64) or,
//! failing that, from `<data_dir>/master.key`, created on first start with mode 0600.
//! Two sub-keys are derived from it with HKDF-SHA-256: an AES-256-GCM sealing key and an
//! HMAC-SHA-256 key for secret hashes. Every node of a cluster needs the same master key.

pub mod password;

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
    /// The key file exists but does not hold a key. It is left as it is: data sealed under
    /// the lost key cannot be opened with a new one.
    #[error(
        "master key file {path} does not hold a 32-byte base64 key ({reason}); it was left untouched: \
         restore it from a backup (keys sealed under it open with no other key) or set WARDEN_MASTER_KEY"
    )]
    BadKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, without any of the file's content.
        reason: String,
    },
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
    /// Hashing a password failed (the task died, or the hash function refused its input).
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
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

    /// Parses base64 (standard or URL-safe, padded or not) into a key. The error never quotes
    /// the text (the base64 decoder's own message names the offending byte).
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(text))
            .map_err(|_| SecretError::BadMasterKey("not base64".into()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| SecretError::BadMasterKey(format!("got {} bytes", b.len())))?;
        Ok(Self::from_bytes(&arr))
    }

    /// Loads the master key from the environment value if given, else from the data dir's key
    /// file, creating that file (mode 0600) when it does not exist. `app::Core::open` uses
    /// [`load`](Self::load) and [`create`](Self::create) separately, so that it never creates
    /// a key for a store that already holds data. A key file that exists but does not hold a
    /// key (empty, not base64, not 32 bytes, not text) is an error and is never replaced.
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
        match std::fs::read(&path) {
            Ok(bytes) => {
                check_private(&path)?;
                Ok(Some((Self::from_key_file(&path, &bytes)?, KeySource::File(path))))
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
                let bytes = std::fs::read(&path).map_err(io_err)?;
                Ok((Self::from_key_file(&path, &bytes)?, KeySource::File(path)))
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

    /// The key in a key file's content, or [`SecretError::BadKeyFile`] naming the file.
    fn from_key_file(path: &Path, bytes: &[u8]) -> Result<Self, SecretError> {
        let bad = |reason: &str| SecretError::BadKeyFile { path: path.to_owned(), reason: reason.to_owned() };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not text"))?;
        if text.trim().is_empty() {
            return Err(bad("empty"));
        }
        Self::from_base64(text).map_err(|e| match e {
            SecretError::BadMasterKey(reason) => bad(&reason),
            other => other,
        })
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

/// The least estimated strength, in bits, of an operator-supplied client secret: 128, what
/// RFC 6749 §10.10 requires of credentials not handled by end-users (guessed with probability
/// at most 2^-128). Not its recommended 160: [`estimate_bits`] charges random letter runs as
/// if they were words, so a generated secret (256 random bits) scores 160 to 260, median 240
/// (100,000 draws), and a 160 threshold would refuse some; at 128 every one passes with 30
/// bits to spare, and human-chosen patterns land far below (a repeated four-word passphrase:
/// 100, `1qaz2wsx…` to the end of the keyboard: 109).
pub const MIN_SECRET_BITS: f64 = 128.0;

/// The longest operator-supplied secret: the estimate's work grows with the cube of the length
/// in the worst case, and nothing needs a longer secret.
pub const MAX_SECRET_CHARS: usize = 256;

/// Unreserved characters (RFC 3986 §2.3): they pass HTTP Basic unchanged, also in the many
/// clients that skip RFC 6749 §2.3.1's form-encoding of the credentials.
fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// Refuses an operator-supplied client secret (`warden client create --secret-stdin`). The
/// checks, in order:
/// 1. only unreserved characters `A-Z a-z 0-9 - . _ ~` (RFC 3986 §2.3): a client that sends
///    `client_secret_basic` without form-encoding (RFC 6749 §2.3.1) would otherwise fail to
///    authenticate with `+`, `%`, `:` and the like, and a space or a non-ASCII character is
///    a sign of a human-chosen phrase;
/// 2. at most [`MAX_SECRET_CHARS`] characters;
/// 3. at least [`MIN_SECRET_BITS`] bits by [`estimate_bits`].
///
/// The estimate is our own rather than the `zxcvbn` crate's: zxcvbn counts guesses in a
/// `u64`, so every estimate stops at 2^64 (it rates a 256-bit random secret and a repeated
/// four-word passphrase alike at 64 bits) and cannot tell 128 bits from 64; it would also add
/// 18 crates Warden does not build today (a scratch build took two minutes on one core) and
/// 800 KB of word lists.
pub fn check_secret_strength(secret: &str) -> Result<(), String> {
    if !secret.chars().all(is_unreserved) {
        return Err("a client secret may contain only the unreserved characters A-Z a-z 0-9 - . _ ~ \
             (other characters do not survive HTTP Basic authentication in many clients)"
            .into());
    }
    if secret.len() > MAX_SECRET_CHARS {
        return Err(format!("a client secret may have at most {MAX_SECRET_CHARS} characters"));
    }
    let bits = estimate_bits(secret);
    if bits < MIN_SECRET_BITS {
        return Err(format!(
            "the secret is too weak: about {bits:.0} bits estimated, {MIN_SECRET_BITS:.0} needed \
             (repeats, sequences, keyboard walks and words count for little); use 43 random \
             base64url characters, or let Warden generate the secret"
        ));
    }
    Ok(())
}

/// Bits per word-shaped run of letters: a dictionary of 65,536 words, more than diceware's
/// 7,776 or the common English vocabulary; plus log2(3) for lower, upper or capitalized.
const WORD_BITS: f64 = 16.0 + 1.584_962_5;
const WORD_LETTERS: std::ops::RangeInclusive<usize> = 4..=12;
/// Keys on a US keyboard that type a character, and the most neighbours a key has.
const KEYS: f64 = 47.0;
const NEIGHBOURS: f64 = 6.0;

/// An estimate, in bits, of what an attacker who tries common patterns first must guess: the
/// cheapest way to spell `secret` as a sequence of
/// - single characters, each costing log2 of the size of the character classes the secret
///   uses (26 lower, 26 upper, 10 digits, 4 symbols);
/// - repeats (3 or more characters copying earlier ones, overlaps allowed, so `abab…` is one
///   pair and one repeat): 1 + log2(position) + log2(length);
/// - sequences (3 or more characters stepping by ±1 or ±2: `0123`, `fedc`, `aceg`): the first
///   character + 2 + log2(length);
/// - keyboard walks (3 or more neighbouring keys on a US QWERTY keyboard: `qwerty`, `1qaz`,
///   `zxcvb`): log2(47) for the first key, 1 bit per step that keeps the direction, 1 +
///   log2(6) per turn, and 1 bit for an all-shifted walk or 1 per key for a mixed one;
/// - words (4 to 12 letters, lower, upper or capitalized, pronounceable: no more than 4
///   consonants or 3 vowels in a row, `y` a vowel): [`WORD_BITS`] each, whether or not the
///   letters form a real word. This needs no word list, at the price of charging random
///   letter runs as words: a few bits off a random base64url secret, more off a letters-only
///   one (43 random lower-case letters score about 100 and are refused; 60 pass).
///
/// This is the minimum over all spellings (dynamic programming over the positions), like
/// zxcvbn's, without its cap at 2^64 guesses.
pub fn estimate_bits(secret: &str) -> f64 {
    let s: Vec<char> = secret.chars().collect();
    let n = s.len();
    let class = |c: &char| match c {
        'a'..='z' => 0,
        'A'..='Z' => 1,
        '0'..='9' => 2,
        _ => 3,
    };
    let cardinality: f64 =
        [26.0, 26.0, 10.0, 4.0].iter().enumerate().filter(|(i, _)| s.iter().any(|c| class(c) == *i)).map(|(_, size)| size).sum();
    let char_bits = cardinality.max(1.0).log2();
    let mut best = vec![f64::INFINITY; n + 1];
    best[0] = 0.0;
    for start in 0..n {
        let base = best[start];
        let mut relax = |end: usize, cost: f64| {
            if base + cost < best[end] {
                best[end] = base + cost;
            }
        };
        relax(start + 1, char_bits);
        // Repeats of earlier text.
        let longest = (1..=start)
            .map(|back| (0..n - start).take_while(|&k| s[start + k] == s[start - back + k]).count())
            .max()
            .unwrap_or(0);
        for end in start + 3..=start + longest {
            relax(end, 1.0 + (start as f64).log2() + ((end - start) as f64).log2());
        }
        // Sequences.
        for step in [-2i32, -1, 1, 2] {
            let mut end = start + 1;
            while end < n && s[end] as i32 - s[end - 1] as i32 == step {
                end += 1;
            }
            for e in start + 3..=end {
                relax(e, char_bits + 2.0 + ((e - start) as f64).log2());
            }
        }
        // Keyboard walks.
        if let Some(mut at) = key_position(s[start]) {
            let (mut steps, mut shifted, mut direction) = (0.0, usize::from(at.2), None);
            for (end, c) in s.iter().enumerate().skip(start + 1) {
                let Some(next) = key_position(*c) else { break };
                let d = (next.0 - at.0, next.1 - at.1);
                if !((d.0 == 0 && d.1.abs() == 4) || (d.0.abs() == 1 && d.1.abs() <= 3)) {
                    break;
                }
                let heading = (d.0, d.1.signum());
                steps += if direction == Some(heading) { 1.0 } else { 1.0 + NEIGHBOURS.log2() };
                direction = Some(heading);
                shifted += usize::from(next.2);
                at = next;
                let len = end + 1 - start;
                if len >= 3 {
                    let shift_bits = match shifted {
                        0 => 0.0,
                        k if k == len => 1.0,
                        _ => len as f64,
                    };
                    relax(end + 1, KEYS.log2() + steps + shift_bits);
                }
            }
        }
        // Word-shaped letter runs: lower, upper, or capitalized.
        if s[start].is_ascii_alphabetic() {
            let upper_rest = s[start].is_ascii_uppercase() && s.get(start + 1).is_some_and(char::is_ascii_uppercase);
            let run = 1 + s[start + 1..]
                .iter()
                .take_while(|c| if upper_rest { c.is_ascii_uppercase() } else { c.is_ascii_lowercase() })
                .count();
            let (mut vowels, mut consonants) = (0, 0);
            for (len, c) in s[start..start + run.min(*WORD_LETTERS.end())].iter().enumerate() {
                if "aeiouy".contains(c.to_ascii_lowercase()) {
                    (vowels, consonants) = (vowels + 1, 0);
                } else {
                    (vowels, consonants) = (0, consonants + 1);
                }
                if vowels > 3 || consonants > 4 {
                    break;
                }
                if WORD_LETTERS.contains(&(len + 1)) {
                    relax(start + len + 1, WORD_BITS);
                }
            }
        }
    }
    best[n]
}

/// Where a character is typed on a US QWERTY keyboard: (row, column in quarter keys, shifted).
fn key_position(c: char) -> Option<(i32, i32, bool)> {
    const ROWS: [(&str, &str, i32); 4] = [
        ("`1234567890-=", "~!@#$%^&*()_+", 0),
        ("qwertyuiop[]\\", "QWERTYUIOP{}|", 6),
        ("asdfghjkl;'", "ASDFGHJKL:\"", 7),
        ("zxcvbnm,./", "ZXCVBNM<>?", 9),
    ];
    ROWS.iter().zip(0..).find_map(|(&(plain, shifted, offset), row)| {
        let at = |col: usize, shift| (row, offset + 4 * col as i32, shift);
        plain.find(c).map(|col| at(col, false)).or_else(|| shifted.find(c).map(|col| at(col, true)))
    })
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

    const PLAINTEXT: &[u8] = b"-----BEGIN PRIVATE KEY----- MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg -----END PRIVATE KEY-----";

    fn unsealed(r: Result<Vec<u8>, SecretError>) -> bool {
        matches!(r, Err(SecretError::Unseal))
    }

    #[test]
    fn sealed_bytes_do_not_contain_the_plaintext() {
        let k = MasterKey::from_bytes(&[1; 32]);
        let sealed = k.seal(PLAINTEXT, b"kid-1").unwrap();
        assert_eq!(sealed.len(), aead::NONCE_LEN + PLAINTEXT.len() + aead::AES_256_GCM.tag_len());
        // No 6-byte run of the plaintext survives anywhere (chance for random bytes: ~2^-35).
        for run in PLAINTEXT.windows(6) {
            assert!(!sealed.windows(6).any(|w| w == run), "{:?} appears in the sealed bytes", String::from_utf8_lossy(run));
        }
        assert_eq!(k.open(&sealed, b"kid-1").unwrap(), PLAINTEXT);
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let k = MasterKey::from_bytes(&[1; 32]);
        let (a, b) = (k.seal(PLAINTEXT, b"kid-1").unwrap(), k.seal(PLAINTEXT, b"kid-1").unwrap());
        assert_ne!(a[..aead::NONCE_LEN], b[..aead::NONCE_LEN], "fresh nonce");
        assert_ne!(a[aead::NONCE_LEN..], b[aead::NONCE_LEN..], "so a different ciphertext");
        assert_eq!(k.open(&a, b"kid-1").unwrap(), k.open(&b, b"kid-1").unwrap());
    }

    #[test]
    fn flipping_any_single_bit_of_nonce_ciphertext_or_tag_fails_to_open() {
        let k = MasterKey::from_bytes(&[1; 32]);
        let sealed = k.seal(PLAINTEXT, b"kid-1").unwrap();
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut tampered = sealed.clone();
                tampered[i] ^= 1 << bit;
                assert!(unsealed(k.open(&tampered, b"kid-1")), "byte {i} bit {bit}");
            }
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(unsealed(k.open(&longer, b"kid-1")), "appended byte");
        for len in [0, 5, aead::NONCE_LEN, aead::NONCE_LEN + 15, sealed.len() - 1] {
            assert!(unsealed(k.open(&sealed[..len], b"kid-1")), "truncated to {len}");
        }
    }

    #[test]
    fn opening_needs_the_same_aad_and_master_key() {
        let k = MasterKey::from_bytes(&[1; 32]);
        let sealed = k.seal(PLAINTEXT, b"kid-1").unwrap();
        for aad in [&b"kid-2"[..], b"", b"kid-1 ", b"KID-1"] {
            assert!(unsealed(k.open(&sealed, aad)), "aad {aad:?}");
        }
        assert!(unsealed(MasterKey::from_bytes(&[2; 32]).open(&sealed, b"kid-1")));
        let empty = k.seal(b"", b"").unwrap();
        assert_eq!(k.open(&empty, b"").unwrap(), b"");
        assert!(unsealed(k.open(&empty, b"x")));
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_naming_the_file_and_is_left_untouched() {
        let cases: [(Vec<u8>, &str); 7] = [
            (b"".to_vec(), "empty"),
            (b" \n".to_vec(), "empty"),
            (b"not base64 at all!".to_vec(), "not base64"),
            (URL_SAFE_NO_PAD.encode([5u8; 31]).into_bytes(), "got 31 bytes"),
            (URL_SAFE_NO_PAD.encode([5u8; 33]).into_bytes(), "got 33 bytes"),
            (format!("{}\n{}", URL_SAFE_NO_PAD.encode([5u8; 32]), URL_SAFE_NO_PAD.encode([6u8; 32])).into_bytes(), "not base64"),
            (vec![0xff; 32], "not text"),
        ];
        for (content, reason) in cases {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(KEY_FILE);
            std::fs::write(&path, &content).unwrap();
            #[cfg(unix)]
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            let before = std::fs::metadata(&path).unwrap();
            for attempt in 0..2 {
                let err = MasterKey::load_or_create(None, dir.path()).unwrap_err();
                match &err {
                    SecretError::BadKeyFile { path: p, reason: r } => {
                        assert_eq!((p, r.as_str()), (&path, reason), "{content:?} attempt {attempt}")
                    }
                    other => panic!("{content:?}: {other}"),
                }
                let text = err.to_string();
                assert!(text.contains(&path.display().to_string()) && text.contains("left untouched"), "{text}");
                let quoted = String::from_utf8_lossy(&content);
                assert!(quoted.trim().len() < 4 || !text.contains(quoted.trim()), "the content is not quoted: {text}");
            }
            assert_eq!(std::fs::read(&path).unwrap(), content, "not overwritten");
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                assert_eq!(std::fs::metadata(&path).unwrap().ino(), before.ino(), "not replaced");
            }
            let _ = before;
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no other file left");
        }
    }

    #[test]
    fn a_good_key_file_is_loaded_and_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (created, source) = MasterKey::load_or_create(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        assert_eq!(source, KeySource::Created(path.clone()));
        let (loaded, source) = MasterKey::load_or_create(Some("  "), dir.path()).unwrap();
        assert_eq!(source, KeySource::File(path.clone()));
        assert_eq!(loaded.hash_secret("probe"), created.hash_secret("probe"));
        let env = URL_SAFE_NO_PAD.encode([8u8; 32]);
        let (from_env, source) = MasterKey::load_or_create(Some(&env), dir.path()).unwrap();
        assert_eq!(source, KeySource::Environment);
        assert_eq!(from_env.hash_secret("probe"), MasterKey::from_bytes(&[8; 32]).hash_secret("probe"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn the_master_key_never_prints_its_material() {
        assert_eq!(format!("{:?}", MasterKey::from_bytes(&[0x41; 32])), "MasterKey(..)");
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
    fn every_generated_secret_passes_the_strength_check() {
        for _ in 0..1000 {
            let s = generate_secret().unwrap();
            assert_eq!(s.len(), 43);
            assert_eq!(check_secret_strength(&s), Ok(()), "{s}: {:.1} bits", estimate_bits(&s));
        }
    }

    fn weak(bits: f64) -> Result<(), String> {
        Err(format!(
            "the secret is too weak: about {bits:.0} bits estimated, 128 needed (repeats, sequences, keyboard walks \
             and words count for little); use 43 random base64url characters, or let Warden generate the secret"
        ))
    }

    #[test]
    fn patterned_secrets_are_refused() {
        let cases = [
            ("0123456789abcdef".repeat(4), 30.83),
            ("ab".repeat(40), 17.69),
            ("x".repeat(64), 11.68),
            ("correct-horse-battery-staple-correct-horse-battery-staple".to_owned(), 100.63),
            ("Password1Password1Password1Password1".to_owned(), 32.46),
            ("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".to_owned(), 36.59),
            ("qwertyuiopasdfghjklzxcvbnm1234567890".to_owned(), 62.93),
            ("1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p".to_owned(), 108.60),
            ("zyxwvutsrqponmlkjihgfedcba9876543210ZYXWVUTSRQPONMLKJIHGFEDCBA".to_owned(), 36.59),
            ("Tr0ub4dor-Tr0ub4dor-Tr0ub4dor-Tr0ub4dor-Tr0ub4dor".to_owned(), 70.05),
            // A short random secret repeated: only its first copy counts.
            ("Xq7-fK2_pLz9Wd4m".repeat(3), 101.72),
            ("Xq7-fK2_pLz9Wd4m".to_owned(), 91.72),
        ];
        for (secret, bits) in cases {
            let estimate = estimate_bits(&secret);
            assert!((estimate - bits).abs() < 0.005, "{secret}: estimated {estimate:.1}, expected about {bits}");
            assert_eq!(check_secret_strength(&secret), weak(estimate), "{secret}");
        }
    }

    #[test]
    fn each_pattern_costs_little() {
        // One character class of 26: 4.7 bits per character when nothing else fits.
        let lower = 26f64.log2();
        assert!((estimate_bits("q") - lower).abs() < 1e-9);
        assert_eq!(estimate_bits(""), 0.0);
        // Repeat: the first "abc" as a sequence, then one copy of 9 characters.
        assert!((estimate_bits("abcabcabcabc") - (estimate_bits("abc") + 1.0 + 3f64.log2() + 9f64.log2())).abs() < 1e-9);
        // Sequences, both ways and by two: first character + 2 + log2(length).
        for (seq, classes) in [("abcdefgh", 26f64), ("HGFEDCBA", 26.0), ("acegikmo", 26.0), ("97531", 10.0)] {
            let expected = classes.log2() + 2.0 + (seq.len() as f64).log2();
            assert!((estimate_bits(seq) - expected).abs() < 1e-9, "{seq}");
        }
        // A straight keyboard walk: the first key, one turn, then 1 bit per step.
        let walk = 47f64.log2() + 1.0 + 6f64.log2() + 6.0;
        assert!((estimate_bits("qwertyui") - walk).abs() < 1e-9);
        assert!((estimate_bits("QWERTYUI") - (walk + 1.0)).abs() < 1e-9, "all shifted: 1 bit");
        assert!((estimate_bits("1qaz") - (47f64.log2() + 1.0 + 6f64.log2() + 2.0)).abs() < 1e-9, "a column");
        // A word-shaped run: one word, whatever its case pattern.
        for word in ["sunshine", "Sunshine", "SUNSHINE"] {
            assert!((estimate_bits(word) - WORD_BITS).abs() < 1e-9, "{word}");
        }
        assert!(estimate_bits("sUnShInE") > 40.0, "mixed case is not a word");
        assert!((estimate_bits("sixths") - WORD_BITS).abs() < 1e-9, "4 consonants in a row");
        assert!((estimate_bits("beautiful") - WORD_BITS).abs() < 1e-9, "3 vowels in a row");
        assert!((estimate_bits("lion") - WORD_BITS).abs() < 1e-9, "4 letters");
        assert!((estimate_bits("conversation") - WORD_BITS).abs() < 1e-9, "12 letters");
        assert!(estimate_bits("conversations") > WORD_BITS + 1.0, "13 letters are more than one word");
        assert!(estimate_bits("mzkqbxtw") > 35.0, "no word has more than 4 consonants in a row");
        assert!(estimate_bits("aeiouyae") > 35.0, "nor more than 3 vowels");
        // Random text keeps about its full size.
        assert!(estimate_bits("K7-x_Q2~m.9Z") > 60.0);
    }

    #[test]
    fn characters_outside_the_unreserved_set_are_refused() {
        let refused = Err("a client secret may contain only the unreserved characters A-Z a-z 0-9 - . _ ~ \
                           (other characters do not survive HTTP Basic authentication in many clients)"
            .to_owned());
        let strong = generate_secret().unwrap();
        for bad in [" ", "+", "%", ":", "/", "=", "!", "*", "\t", "\n", "é", "\u{0}"] {
            assert_eq!(check_secret_strength(&format!("{strong}{bad}")), refused, "{bad:?}");
        }
        let unreserved = format!("{strong}-._~");
        assert_eq!(check_secret_strength(&unreserved), Ok(()));
    }

    #[test]
    fn secrets_have_at_most_256_characters() {
        let long: String = (0..6).map(|_| generate_secret().unwrap()).collect::<String>();
        assert_eq!(check_secret_strength(&long[..256]), Ok(()));
        assert_eq!(
            check_secret_strength(&long[..257]),
            Err("a client secret may have at most 256 characters".to_owned())
        );
    }

    #[test]
    fn long_random_secrets_of_other_alphabets_pass() {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(check_secret_strength(&hex), Ok(()), "{hex}: {:.1}", estimate_bits(&hex));
        assert_eq!(check_secret_strength(&hex.to_uppercase()), Ok(()));
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
