//! User passwords: the policy a new password must meet, Argon2id hashing and verification.
//!
//! - **Hash**: Argon2id, v1.3, m = 19456 KiB, t = 2, p = 1 (the OWASP Password Storage Cheat
//!   Sheet's first recommendation), a random 128-bit salt, stored as a PHC string
//!   (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Verification recomputes with the
//!   parameters in the stored string and compares in constant time (the `argon2` crate).
//! - **Off the executor**: one hash costs ~20 ms of CPU and 19 MiB of memory, so the async
//!   API ([`hash`], [`verify`]) runs it on `tokio::task::spawn_blocking`, at most
//!   [`max_concurrent`] at once; a login never stalls the other requests of its worker thread.
//! - **Unknown users**: [`verify`] with no hash spends the same time on a fixed dummy hash and
//!   fails, so "no such user" and "wrong password" look alike from outside, in the answer and
//!   in its timing.
//! - **Policy** ([`check_policy`]): at least [`MIN_CHARS`] and at most [`MAX_CHARS`]
//!   characters (Unicode scalar values, not bytes), and not one of the 10,000 most common
//!   passwords, compared case-insensitively. The list ships in `common_passwords.txt` (from
//!   the MIT-licensed zxcvbn frequency lists; source and licence in its header).

use super::SecretError;
use crate::model::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// The fewest characters a password may have.
pub const MIN_CHARS: usize = 8;
/// The most characters a password may have (a bound on hashing work and memory, not a
/// security limit).
pub const MAX_CHARS: usize = 256;

/// Argon2id memory cost, KiB (OWASP: 19 MiB).
pub const M_COST: u32 = 19_456;
/// Argon2id iterations (OWASP: 2).
pub const T_COST: u32 = 2;
/// Argon2id parallelism (OWASP: 1).
pub const P_COST: u32 = 1;

const PARAMS: Params = match Params::new(M_COST, T_COST, P_COST, None) {
    Ok(p) => p,
    Err(_) => panic!("invalid Argon2 parameters"),
};

/// A hash of a random password nobody knows, with the same parameters as every real hash:
/// verifying against it costs what verifying a real user's password costs.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Z0ic5ThkgsW+ND4nR3Xj6Q$hvzv6K2u8/2vn+kg7q1dw+8oYgMGkEvLgOTbcxdyHlY";

/// A password in memory: wiped when dropped, never printed (no `Debug`, no `Display`).
pub struct Password(Zeroizing<String>);

impl Password {
    /// Takes ownership of the text.
    pub fn new(text: String) -> Password {
        Password(Zeroizing::new(text))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Constant-time equality, for "type it again" prompts.
    pub fn same_as(&self, other: &Password) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.bytes(), other.bytes()).is_ok()
    }
}

/// Why a password was refused; the messages name the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("the password is too short: it needs at least {MIN_CHARS} characters")]
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    #[error("the password is too long: it may have at most {MAX_CHARS} characters")]
    TooLong,
    /// On the list of the most common passwords.
    #[error("the password is one of the 10,000 most common passwords, which attackers try first; choose another")]
    Common,
}

/// The shipped list, lower-case, built on first use.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// Whether `text` is on the common-password list, in any letter case.
pub fn is_common(text: &str) -> bool {
    COMMON.contains(text.to_lowercase().as_str())
}

/// Checks a new password against the policy (length in characters, common passwords).
pub fn check_policy(password: &Password) -> Result<(), PolicyError> {
    let chars = password.0.chars().count();
    if chars < MIN_CHARS {
        return Err(PolicyError::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PolicyError::TooLong);
    }
    if is_common(&password.0) {
        return Err(PolicyError::Common);
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

/// Hashes on the calling thread (blocking, ~20 ms): prefer [`hash`] in async code.
pub fn hash_blocking(password: &Password) -> Result<PasswordHash, SecretError> {
    let hash: phc::PasswordHash =
        argon2().hash_password(password.bytes()).map_err(|e| SecretError::PasswordHash(e.to_string()))?;
    Ok(PasswordHash(hash.to_string()))
}

/// Verifies on the calling thread (blocking, ~20 ms): prefer [`verify`] in async code. A
/// stored hash that does not parse never matches.
pub fn verify_blocking(password: &Password, hash: &PasswordHash) -> bool {
    match phc::PasswordHash::new(&hash.0) {
        Ok(parsed) => argon2().verify_password(password.bytes(), &parsed).is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "a stored password hash does not parse; the password is refused");
            false
        }
    }
}

/// How many hashes may run at once: two per CPU, so a burst of logins queues for the blocking
/// pool instead of taking 19 MiB each without bound.
pub fn max_concurrent() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(max_concurrent())));

/// Runs `work` on the blocking pool once a hashing permit is free. The permit moves into the
/// blocking task, so a caller that gives up (a client gone mid-login) frees it only when the
/// hash it started is done: the bound holds for the work, not just for the waiting.
async fn off_executor<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, SecretError> {
    let permit = HASHING.clone().acquire_owned().await.map_err(|e| SecretError::PasswordHash(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let done = work();
        drop(permit);
        done
    })
    .await
    .map_err(|e| SecretError::PasswordHash(e.to_string()))
}

/// Hashes `password` with a new random salt, on the blocking pool.
pub async fn hash(password: Password) -> Result<PasswordHash, SecretError> {
    off_executor(move || hash_blocking(&password)).await?
}

/// Whether `password` matches `hash`, computed on the blocking pool. With `hash = None` (an
/// unknown user, or one without a password) it spends the same time on a dummy hash and
/// answers `false`.
pub async fn verify(password: Password, hash: Option<PasswordHash>) -> bool {
    let checked = off_executor(move || match hash {
        Some(h) => verify_blocking(&password, &h),
        None => {
            let _ = verify_blocking(&password, &PasswordHash(DUMMY_HASH.into()));
            false
        }
    });
    checked.await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn pw(s: &str) -> Password {
        Password::new(s.into())
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        assert_eq!(check_policy(&pw("Zq7-xv!")), Err(PolicyError::TooShort), "7 characters");
        assert_eq!(check_policy(&pw("Zq7-xv!k")), Ok(()), "8 characters");
        // 7 characters but 14 bytes: still too short.
        assert_eq!(check_policy(&pw("жзийклм")), Err(PolicyError::TooShort));
        assert_eq!(check_policy(&pw("жзийклмн")), Ok(()));
        assert_eq!(check_policy(&pw(&"ж".repeat(MAX_CHARS))), Ok(()), "256 characters, 512 bytes");
        assert_eq!(check_policy(&pw(&"x7".repeat(MAX_CHARS / 2 + 1))), Err(PolicyError::TooLong));
        assert!(PolicyError::TooShort.to_string().contains("at least 8 characters"));
    }

    #[test]
    fn same_as_compares_the_whole_text() {
        assert!(pw("a long passphrase").same_as(&pw("a long passphrase")));
        assert!(!pw("a long passphrase").same_as(&pw("a long passphrasE")));
        assert!(!pw("a long passphrase").same_as(&pw("a long passphrase ")), "a longer text");
        assert!(!pw("").same_as(&pw("x")));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for p in ["password", "PassWord", "12345678", "iloveyou", "QWERTYUIOP", "trustno1"] {
            assert_eq!(check_policy(&pw(p)), Err(PolicyError::Common), "{p}");
        }
        assert!(PolicyError::Common.to_string().contains("most common passwords"));
        assert!(!is_common("correct horse battery staple"));
        assert!(!is_common("# The 10,000 most common passwords"), "header lines are not entries");
        assert_eq!(COMMON.len(), 10_000, "the whole shipped list is loaded");
    }

    #[test]
    fn the_hash_is_an_owasp_argon2id_phc_string_that_verifies() {
        let h = hash_blocking(&pw("a long passphrase")).unwrap();
        assert!(h.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", h.0);
        assert!(!h.0.contains("a long passphrase"));
        assert!(verify_blocking(&pw("a long passphrase"), &h));
        assert!(!verify_blocking(&pw("a long passphrasE"), &h));
        let again = hash_blocking(&pw("a long passphrase")).unwrap();
        assert_ne!(again, h, "a fresh salt every time");
        assert!(!verify_blocking(&pw("x"), &PasswordHash("not a phc string".into())));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        let parsed = phc::PasswordHash::new(DUMMY_HASH).unwrap();
        let real = hash_blocking(&pw("whatever it is")).unwrap();
        let real = phc::PasswordHash::new(&real.0).unwrap();
        assert_eq!(parsed.algorithm, real.algorithm);
        assert_eq!(parsed.version, real.version);
        assert_eq!(parsed.params, real.params);
        assert_eq!(parsed.salt.map(|s| s.len()), real.salt.map(|s| s.len()));
        assert_eq!(parsed.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
    }

    #[tokio::test]
    async fn verify_of_an_unknown_user_fails_and_takes_as_long_as_a_wrong_password() {
        let h = hash(pw("the real one!")).await.unwrap();
        assert!(verify(pw("the real one!"), Some(h.clone())).await);
        let time = |hash: Option<PasswordHash>| async move {
            let t = Instant::now();
            assert!(!verify(pw("a wrong one!"), hash).await);
            t.elapsed()
        };
        let (mut wrong, mut unknown) = (Duration::MAX, Duration::MAX);
        for _ in 0..5 {
            wrong = wrong.min(time(Some(h.clone())).await);
            unknown = unknown.min(time(None).await);
        }
        // Same work: the best of five of each within a factor of three (a shared machine is
        // noisy); an early "no such user" answer would be ~1000× faster.
        assert!(unknown * 3 > wrong && wrong * 3 > unknown, "wrong password {wrong:?}, unknown user {unknown:?}");
    }

    /// Four verifications at once on a single-threaded runtime: a timer due after 1 ms fires
    /// before any of them finishes. Were hashing done on the runtime's thread, the timer
    /// would wait for at least one whole ~20 ms hash.
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_runs_off_the_async_executor() {
        let h = hash_blocking(&pw("off the executor")).unwrap();
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move {
                    assert!(verify(pw("off the executor"), Some(h)).await);
                    Instant::now()
                })
            })
            .collect();
        let tick = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Instant::now()
        });
        let tick = tick.await.unwrap();
        let mut first_done = None::<Instant>;
        for t in tasks {
            let done = t.await.unwrap();
            first_done = Some(first_done.map_or(done, |f| f.min(done)));
        }
        let first_done = first_done.unwrap();
        assert!(
            tick < first_done,
            "the timer fired {:?} after start, the first verification ended {:?} after start",
            tick - start,
            first_done - start
        );
    }
}
