//! User accounts: the operator operations (create, set password, disable and enable, delete)
//! shared by the CLI and, later, the admin API; and password sign-in for the login page.
//!
//! Sign-in ([`Provider::authenticate_user`]) answers one error, [`LoginError::InvalidCredentials`],
//! for an unknown username, a wrong password, a user without a password and a disabled user,
//! after the same work (one Argon2id verification, on the blocking pool) in every case: the
//! answer and its timing tell an attacker nothing about which usernames exist.

use super::Provider;
use crate::model::{Claims, PasswordHash, User, UserId, Username, unix_now};
use crate::secrets::password::{self, Password, PolicyError};
use crate::secrets::{self, SecretError};
use crate::store::{Store, StoreError};

/// Why an operator operation on a user failed; the messages are for the operator.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A username or claim that cannot be stored.
    #[error("{0}")]
    Invalid(String),
    /// The new password breaks the policy.
    #[error(transparent)]
    Password(#[from] PolicyError),
    /// The username is taken (case-insensitively).
    #[error("a user named \"{0}\" already exists (usernames are compared ignoring case)")]
    Exists(String),
    /// No such user.
    #[error("no user named \"{0}\"")]
    NotFound(String),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        UserError::Store(e)
    }
}

/// A new user's subject identifier: 128 random bits, base64url; never derived from the
/// username, so renaming or deleting and re-creating a user never hands out an old `sub`.
fn new_user_id() -> Result<UserId, UserError> {
    Ok(UserId(secrets::random_text(16)?))
}

/// Checks the password against the policy and hashes it off the async executor.
async fn policy_and_hash(password: Password) -> Result<PasswordHash, UserError> {
    password::check_policy(&password)?;
    Ok(password::hash(password).await?)
}

/// Creates a user: checks the username and the claims, checks and hashes the password (if
/// one is given; without one, password sign-in fails until one is set), generates the `sub`.
pub async fn create(
    store: &Store,
    username: &str,
    claims: Claims,
    password: Option<Password>,
) -> Result<User, UserError> {
    let username = Username::parse(username).map_err(UserError::Invalid)?;
    claims.validate().map_err(UserError::Invalid)?;
    let password_hash = match password {
        Some(p) => Some(policy_and_hash(p).await?),
        None => None,
    };
    let now = unix_now();
    let user = User { id: new_user_id()?, username, disabled: false, claims, password_hash, created_at: now, updated_at: now };
    store.catalog.insert_user(&user).await.map_err(|e| match e {
        StoreError::Conflict => UserError::Exists(user.username.to_string()),
        other => other.into(),
    })?;
    Ok(user)
}

/// Fails early, before a password is asked for, when `username` could not be created.
pub async fn check_new_username(store: &Store, username: &str) -> Result<(), UserError> {
    let parsed = Username::parse(username).map_err(UserError::Invalid)?;
    match store.catalog.user_by_username(parsed.key()).await? {
        Some(u) => Err(UserError::Exists(u.username.to_string())),
        None => Ok(()),
    }
}

/// The user called `username` (in any letter case).
pub async fn find(store: &Store, username: &str) -> Result<User, UserError> {
    store.catalog.user_by_username(username).await?.ok_or_else(|| UserError::NotFound(username.trim().to_owned()))
}

/// Re-reads a user after a change (a change of `NotFound` means it was deleted in between).
async fn reload(store: &Store, id: &UserId, username: &str) -> Result<User, UserError> {
    store.catalog.user(id).await?.ok_or_else(|| UserError::NotFound(username.trim().to_owned()))
}

fn not_found(username: &str) -> impl Fn(StoreError) -> UserError + '_ {
    move |e| match e {
        StoreError::NotFound => UserError::NotFound(username.trim().to_owned()),
        other => other.into(),
    }
}

/// Replaces the password of `username` (policy checked, hashed off the executor).
pub async fn set_password(store: &Store, username: &str, password: Password) -> Result<User, UserError> {
    let user = find(store, username).await?;
    let hash = policy_and_hash(password).await?;
    store.catalog.set_user_password(&user.id, &hash, unix_now()).await.map_err(not_found(username))?;
    reload(store, &user.id, username).await
}

/// Changes the claims of `username` with `edit`, checks the result and stores it (with a new
/// `updated_at`).
pub async fn update_claims(
    store: &Store,
    username: &str,
    edit: impl FnOnce(&mut Claims) -> Result<(), String>,
) -> Result<User, UserError> {
    let user = find(store, username).await?;
    let mut claims = user.claims.clone();
    edit(&mut claims).map_err(UserError::Invalid)?;
    claims.validate().map_err(UserError::Invalid)?;
    store.catalog.update_user_claims(&user.id, &claims, unix_now()).await.map_err(not_found(username))?;
    reload(store, &user.id, username).await
}

/// Disables (`true`) or enables a user. A disabled user cannot sign in.
pub async fn set_disabled(store: &Store, username: &str, disabled: bool) -> Result<User, UserError> {
    let user = find(store, username).await?;
    store.catalog.set_user_disabled(&user.id, disabled, unix_now()).await.map_err(not_found(username))?;
    reload(store, &user.id, username).await
}

/// Deletes a user; returns the record as it was.
pub async fn delete(store: &Store, username: &str) -> Result<User, UserError> {
    let user = find(store, username).await?;
    store.catalog.delete_user(&user.id).await.map_err(not_found(username))?;
    Ok(user)
}

/// Why a password sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, wrong password, no password set, or a disabled user: one answer for all,
    /// so the login page shows the same message after the same time.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The store could not be asked; the page should say "try again later".
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
}

impl Provider {
    /// Password sign-in: the user called `username` if `password` is theirs and they are not
    /// disabled. Every failure is [`LoginError::InvalidCredentials`] after one Argon2id
    /// verification (against a dummy hash when there is no user or no password), run on the
    /// blocking pool. A disabled user is refused only after the verification, so disabling
    /// an account does not show in the timing either. (`prompt=none` for a disabled user is
    /// the authorization endpoint's `login_required`; it never reaches this.)
    pub async fn authenticate_user(&self, username: &str, password: Password) -> Result<User, LoginError> {
        let user = match Username::parse(username) {
            Ok(name) => self.store.catalog.user_by_username(name.key()).await.map_err(LoginError::Unavailable)?,
            Err(_) => None,
        };
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let matches = password::verify(password, hash).await;
        match user {
            Some(u) if matches && !u.disabled => Ok(u),
            _ => Err(LoginError::InvalidCredentials),
        }
    }
}
