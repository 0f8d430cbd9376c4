//! `warden consumer …`: gateway consumers (apps known by an API key, legacy callers by a
//! Basic password). The operations are plain functions over the store, used by the commands
//! below and by tests; the gateway follows their effects from the store (`gateway/consumers.rs`).

use crate::model::{ApiKey, Consumer, ConsumerId, check_consumer_name, unix_now};
use crate::secrets::MasterKey;
use crate::secrets::password::{self, Password};
use crate::store::{Store, StoreError};
use clap::Subcommand;
use super::commands::print;
use serde_json::{Value, json};

/// `warden consumer …`.
#[derive(Subcommand, Debug)]
pub enum ConsumerCommand {
    /// Create a consumer (then give it an API key with `consumer key add`).
    #[command(after_help = "Example:\n  warden consumer create billing --plan gold --json")]
    Create {
        /// Its name: letters, digits, '.', '_', '-'; unique ignoring case; the Basic user-id.
        name: String,
        /// The plan later policies (per-plan rate limits) read.
        #[arg(long)]
        plan: Option<String>,
    },
    /// List consumers.
    List,
    /// Show one consumer and its keys (never a key itself).
    Show {
        /// Name or id.
        consumer: String,
    },
    /// Disable a consumer: its keys and password are refused until it is enabled again.
    Disable {
        /// Name or id.
        consumer: String,
    },
    /// Enable a disabled consumer.
    Enable {
        /// Name or id.
        consumer: String,
    },
    /// Delete a consumer and revoke its keys.
    Delete {
        /// Name or id.
        consumer: String,
    },
    /// Manage a consumer's API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Set the consumer's Basic password: asked for twice on the terminal, or one line of
    /// standard input with --password-stdin (never a command-line argument).
    #[command(after_help = "Example:\n  printf '%s\\n' \"$PASSWORD\" | warden consumer set-password legacy-erp --password-stdin")]
    SetPassword {
        /// Name or id.
        consumer: String,
        /// Read the password from standard input (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `warden consumer key …`.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an API key; it is printed once and stored only as a keyed hash.
    #[command(after_help = "Example:\n  warden consumer key add billing --json")]
    Add {
        /// Name or id.
        consumer: String,
    },
    /// List a consumer's keys (id, prefix, state).
    List {
        /// Name or id.
        consumer: String,
    },
    /// Revoke a key: every gateway node refuses it within about a second.
    Revoke {
        /// Name or id.
        consumer: String,
        /// The key's id (from `key list`; one starting with `-` is taken as an id too).
        #[arg(allow_hyphen_values = true)]
        key_id: String,
    },
}

/// What the consumer operations can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// No such consumer.
    #[error("no consumer is called or has the id \"{0}\"")]
    NotFound(String),
    /// No such unrevoked key.
    #[error("consumer \"{0}\" has no unrevoked key with the id \"{1}\"")]
    KeyNotFound(String, String),
    /// The name is taken.
    #[error("a consumer called \"{0}\" exists")]
    Taken(String),
    /// A bad name, plan or password.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Randomness or hashing failed.
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
}

/// Creates a consumer.
pub async fn create(store: &Store, name: &str, plan: Option<&str>) -> Result<Consumer, ConsumerError> {
    check_consumer_name(name).map_err(ConsumerError::Invalid)?;
    if let Some(p) = plan
        && (p.is_empty() || p.len() > 64 || !p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
    {
        return Err(ConsumerError::Invalid("a plan is 1 to 64 letters, digits, '.', '_' or '-'".into()));
    }
    let now = unix_now();
    let c = Consumer {
        id: ConsumerId(format!("cons_{}", crate::secrets::random_text(12)?)),
        name: name.to_owned(),
        plan: plan.map(str::to_owned),
        disabled: false,
        password_hash: None,
        deleted: false,
        created_at: now,
        updated_at: now,
        changed_at: 0,
    };
    store.consumers.insert_consumer(&c).await.map_err(|e| match e {
        StoreError::Conflict => ConsumerError::Taken(name.to_owned()),
        e => e.into(),
    })?;
    find(store, c.id.as_str()).await
}

/// A live consumer by name (any case) or id.
pub async fn find(store: &Store, name_or_id: &str) -> Result<Consumer, ConsumerError> {
    if let Some(c) = store.consumers.consumer_by_name(name_or_id).await? {
        return Ok(c);
    }
    store.consumers.consumer(&ConsumerId(name_or_id.to_owned())).await?.ok_or_else(|| ConsumerError::NotFound(name_or_id.to_owned()))
}

fn gone(name: &str) -> impl Fn(StoreError) -> ConsumerError + '_ {
    move |e| match e {
        StoreError::NotFound => ConsumerError::NotFound(name.to_owned()),
        e => e.into(),
    }
}

/// Disables or enables a consumer.
pub async fn set_disabled(store: &Store, name_or_id: &str, disabled: bool) -> Result<Consumer, ConsumerError> {
    let c = find(store, name_or_id).await?;
    store.consumers.set_consumer_disabled(&c.id, disabled, unix_now()).await.map_err(gone(name_or_id))?;
    find(store, c.id.as_str()).await
}

/// Deletes a consumer and revokes its keys.
pub async fn delete(store: &Store, name_or_id: &str) -> Result<Consumer, ConsumerError> {
    let c = find(store, name_or_id).await?;
    store.consumers.delete_consumer(&c.id, unix_now()).await.map_err(gone(name_or_id))?;
    Ok(c)
}

/// Sets the Basic password (the users' password policy, Argon2id off the executor).
pub async fn set_password(store: &Store, name_or_id: &str, pw: Password) -> Result<Consumer, ConsumerError> {
    let c = find(store, name_or_id).await?;
    password::check_policy(&pw).map_err(|e| ConsumerError::Invalid(e.to_string()))?;
    let hash = password::hash(pw).await?;
    store.consumers.set_consumer_password(&c.id, Some(&hash), unix_now()).await.map_err(gone(name_or_id))?;
    find(store, c.id.as_str()).await
}

/// A new API key for a consumer: the stored record and the key, which exists nowhere else.
pub async fn add_key(store: &Store, master: &MasterKey, name_or_id: &str) -> Result<(ApiKey, String), ConsumerError> {
    let c = find(store, name_or_id).await?;
    let key = format!("wk_{}", crate::secrets::generate_secret()?);
    let record = ApiKey {
        id: crate::secrets::random_text(6)?,
        consumer_id: c.id.clone(),
        key_hash: master.hash_secret(&key),
        prefix: key.chars().take(8).collect(),
        created_at: unix_now(),
        revoked_at: None,
        changed_at: 0,
    };
    store.consumers.insert_api_key(&record).await.map_err(gone(name_or_id))?;
    Ok((record, key))
}

/// Revokes one of a consumer's keys.
pub async fn revoke_key(store: &Store, name_or_id: &str, key_id: &str) -> Result<(), ConsumerError> {
    let c = find(store, name_or_id).await?;
    store.consumers.revoke_api_key(&c.id, key_id, unix_now()).await.map_err(|e| match e {
        StoreError::NotFound => ConsumerError::KeyNotFound(c.name.clone(), key_id.to_owned()),
        e => e.into(),
    })
}

fn consumer_json(c: &Consumer) -> Value {
    json!({
        "id": c.id.as_str(),
        "name": c.name,
        "plan": c.plan,
        "enabled": !c.disabled,
        "basic_password": c.password_hash.is_some(),
        "created_at": c.created_at,
    })
}

fn key_json(k: &ApiKey) -> Value {
    json!({"id": k.id, "consumer_id": k.consumer_id.as_str(), "prefix": k.prefix, "created_at": k.created_at, "revoked_at": k.revoked_at})
}

fn consumer_text(c: &Consumer) -> String {
    format!(
        "id:       {}\nname:     {}\nplan:     {}\nstate:    {}\npassword: {}\ncreated:  {}",
        c.id,
        c.name,
        c.plan.as_deref().unwrap_or("-"),
        if c.disabled { "disabled" } else { "enabled" },
        if c.password_hash.is_some() { "set (Basic accepted)" } else { "none" },
        super::commands::ts(c.created_at)
    )
}

fn key_line(k: &ApiKey) -> String {
    let state = k.revoked_at.map_or("active".to_owned(), |t| format!("revoked {}", super::commands::ts(t)));
    format!("{:<10} {:<10} {}  {}", k.id, format!("{}…", k.prefix), super::commands::ts(k.created_at), state)
}

/// Runs a `warden consumer` command.
pub(super) async fn command(json_mode: bool, store: &Store, master: &MasterKey, cmd: &ConsumerCommand) -> anyhow::Result<()> {
    match cmd {
        ConsumerCommand::Create { name, plan } => {
            let c = create(store, name, plan.as_deref()).await?;
            print(json_mode, &consumer_json(&c), || format!("created consumer {} (id {}); add an API key with: warden consumer key add {}", c.name, c.id, c.name));
        }
        ConsumerCommand::List => {
            let all = store.consumers.consumers().await?;
            let list: Vec<Value> = all.iter().map(consumer_json).collect();
            print(json_mode, &Value::Array(list), || {
                all.iter()
                    .map(|c| format!("{:<24} {:<20} {:<10} {}", c.id, c.name, c.plan.as_deref().unwrap_or("-"), if c.disabled { "disabled" } else { "enabled" }))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ConsumerCommand::Show { consumer } => {
            let c = find(store, consumer).await?;
            let keys = store.consumers.api_keys(&c.id).await?;
            let mut v = consumer_json(&c);
            v["keys"] = keys.iter().map(key_json).collect();
            print(json_mode, &v, || format!("{}\nkeys:\n{}", consumer_text(&c), keys.iter().map(key_line).collect::<Vec<_>>().join("\n")));
        }
        ConsumerCommand::Disable { consumer } | ConsumerCommand::Enable { consumer } => {
            let disable = matches!(cmd, ConsumerCommand::Disable { .. });
            let c = set_disabled(store, consumer, disable).await?;
            print(json_mode, &consumer_json(&c), || format!("consumer {} is {}", c.name, if c.disabled { "disabled" } else { "enabled" }));
        }
        ConsumerCommand::Delete { consumer } => {
            let c = delete(store, consumer).await?;
            print(json_mode, &json!({"id": c.id.as_str(), "name": c.name, "deleted": true}), || format!("deleted consumer {} and revoked its keys", c.name));
        }
        ConsumerCommand::SetPassword { consumer, password_stdin } => {
            find(store, consumer).await?;
            let pw = super::commands::read_password(*password_stdin)?;
            let c = set_password(store, consumer, pw).await?;
            print(json_mode, &json!({"id": c.id.as_str(), "name": c.name, "password_set": true}), || format!("new Basic password set for consumer {}", c.name));
        }
        ConsumerCommand::Key(KeyCommand::Add { consumer }) => {
            let (k, key) = add_key(store, master, consumer).await?;
            let mut v = key_json(&k);
            v["key"] = key.clone().into();
            print(json_mode, &v, || format!("{key}\n(key id {}; shown once: store it now, Warden keeps only a hash)", k.id));
        }
        ConsumerCommand::Key(KeyCommand::List { consumer }) => {
            let c = find(store, consumer).await?;
            let keys = store.consumers.api_keys(&c.id).await?;
            print(json_mode, &keys.iter().map(key_json).collect(), || keys.iter().map(key_line).collect::<Vec<_>>().join("\n"));
        }
        ConsumerCommand::Key(KeyCommand::Revoke { consumer, key_id }) => {
            revoke_key(store, consumer, key_id).await?;
            print(json_mode, &json!({"id": key_id, "revoked": true}), || format!("revoked key {key_id}"));
        }
    }
    Ok(())
}
