//! Command implementations. The CLI is the binary's edge, so errors are `anyhow` here, as in
//! `main.rs`; everything below it has typed errors.

use super::{
    ClaimArgs, ClientCommand, Cli, Command, ConfigCommand, CreateArgs, GatewayCommand, KeysCommand, RegistrationTokenCommand,
    ResourceCommand, UserCommand,
};
use crate::app::{self, Core, Listeners};
use crate::config::{Config, Overrides};
use crate::jose::Alg;
use crate::model::{Address, Claims, Client, ClientId, Origin, User, unix_now};
use crate::oauth::register::metadata::{Policy, RegistrationRequest};
use crate::oauth::{clients, keys, register, resources, users};
use crate::secrets::password::Password;
use crate::secrets::{KeySource, MASTER_KEY_ENV};
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use std::io::Read;

fn load_config(cli: &Cli, roles: Option<Vec<crate::config::Role>>) -> anyhow::Result<Config> {
    let overrides = Overrides { data_dir: cli.data_dir.clone(), roles };
    Config::load(cli.config.as_deref(), std::env::vars(), &overrides).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        anyhow!("invalid configuration:\n{}", list.join("\n"))
    })
}

async fn open(cfg: &Config) -> anyhow::Result<Core> {
    let core = Core::open(cfg, std::env::var(MASTER_KEY_ENV).ok().as_deref()).await?;
    if let KeySource::Created(path) = &core.key_source {
        say!(
            "warning: created a new master key in {} (mode 0600). It encrypts the signing keys \
             and keys the secret hashes: back it up and keep it secret, or set {MASTER_KEY_ENV}. \
             Every node of a cluster needs the same key.",
            path.display()
        );
    }
    Ok(core)
}

/// Prints `value` as JSON, or `text` for people.
pub(super) fn print(json_mode: bool, value: &Value, text: impl FnOnce() -> String) {
    if json_mode {
        out!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        out!("{}", text());
    }
}

pub(super) async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve(args) => serve(&cli, (!args.role.is_empty()).then(|| args.role.clone())).await,
        Command::Config(ConfigCommand::Check { file }) => config_check(&cli, file.clone()),
        Command::Gateway(GatewayCommand::ImportOpenapi { spec, upstream, auth }) => import_openapi(spec, upstream.clone(), auth.clone()),
        Command::Keys(cmd) => keys_command(&cli, &on_store(&cli).await?, cmd).await,
        Command::Client(cmd) => client_command(&cli, &on_store(&cli).await?, cmd).await,
        Command::RegistrationToken(cmd) => registration_token_command(&cli, &on_store(&cli).await?, cmd).await,
        Command::Resource(cmd) => resource_command(&cli, &on_store(&cli).await?, cmd).await,
        Command::User(cmd) => user_command(&cli, &on_store(&cli).await?, cmd).await,
        Command::Consumer(cmd) => {
            let ctx = on_store(&cli).await?;
            super::consumers::command(cli.json, &ctx.core.store, &ctx.core.master, cmd).await
        }
    }
}

/// What a command that works on the store needs.
struct Ctx {
    cfg: Config,
    core: Core,
}

/// How long a CLI command's store operation may wait, at least. Longer than a server's
/// `database.timeout`: an operator's one-off command has nobody queued behind it, and waiting
/// out a lock a running server holds for a moment (a WAL checkpoint, a key rotation) beats
/// failing; a server's requests, by contrast, pile up while they wait.
const CLI_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn on_store(cli: &Cli) -> anyhow::Result<Ctx> {
    let mut cfg = load_config(cli, None)?;
    cfg.database.timeout = cfg.database.timeout.max(CLI_STORE_TIMEOUT);
    let core = open(&cfg).await?;
    Ok(Ctx { cfg, core })
}

async fn serve(cli: &Cli, roles: Option<Vec<crate::config::Role>>) -> anyhow::Result<()> {
    let mut cfg = load_config(cli, roles.clone())?;
    crate::telemetry::init(&cfg.log);
    // With a file, the gateway's section reloads on SIGHUP and when the file changes.
    let source = cli.config.clone().map(|file| app::reload::ConfigSource {
        file,
        env: app::reload::ConfigSource::warden_env(),
        overrides: Overrides { data_dir: cli.data_dir.clone(), roles },
        loaded: cfg.clone(),
        poll: cfg.gateway.config_watch_interval,
        handle: Default::default(),
    });
    let core = open(&cfg).await?;
    let listeners = Listeners::bind(&cfg).await?;
    listeners.adopt_ephemeral_ports(&mut cfg);
    say!("warden {} — data in {} ({})", env!("CARGO_PKG_VERSION"), cfg.data_dir.display(), core.store.backend);
    for (role, addr) in listeners.addrs() {
        let extra = match role {
            crate::config::Role::Provider => format!(" — issuer {}", cfg.oauth.issuer),
            crate::config::Role::Gateway => format!(" — {} route(s)", cfg.gateway.routes.len()),
            _ => String::new(),
        };
        let scheme = if role == crate::config::Role::Gateway && cfg.gateway.tls.is_some() { "https" } else { "http" };
        say!("  {:<8} listening on {scheme}://{addr}{extra}", role.as_str());
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        app::shutdown_signal().await;
        trigger.cancel();
        say!("shutting down: finishing in-flight requests");
    });
    app::run_with(cfg, core, listeners, shutdown, source).await?;
    Ok(())
}

fn config_check(cli: &Cli, file: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let file = file.or_else(|| cli.config.clone());
    let overrides = Overrides { data_dir: cli.data_dir.clone(), roles: None };
    match Config::load(file.as_deref(), std::env::vars(), &overrides) {
        Ok(_) => {
            let what = file.map_or("built-in defaults".into(), |f| f.display().to_string());
            print(cli.json, &json!({"valid": true, "errors": []}), || format!("{what}: configuration is valid"));
            Ok(())
        }
        Err(errors) => {
            if cli.json {
                let list: Vec<Value> = errors
                    .iter()
                    .map(|e| json!({"key": e.key, "env": e.origin, "message": e.message}))
                    .collect();
                print(true, &json!({"valid": false, "errors": list}), String::new);
            } else {
                for e in &errors {
                    say!("{e}");
                }
            }
            bail!("{} configuration error(s)", errors.len())
        }
    }
}

fn import_openapi(spec: &std::path::Path, upstream: Option<String>, auth: Vec<String>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(spec).with_context(|| format!("cannot read {}", spec.display()))?;
    let opts = crate::gateway::openapi::ImportOptions { upstream, auth, source: spec.display().to_string() };
    let imported = crate::gateway::openapi::import(&text, &opts).map_err(|e| anyhow!("{}: {e}", spec.display()))?;
    for w in &imported.warnings {
        say!("warning: {w}");
    }
    out!("{}", imported.toml.trim_end());
    say!("{} route(s) written", imported.routes);
    Ok(())
}

pub(super) fn ts(t: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64)).to_string()
}

async fn keys_command(cli: &Cli, ctx: &Ctx, cmd: &KeysCommand) -> anyhow::Result<()> {
    let (cfg, core) = (&ctx.cfg, &ctx.core);
    match cmd {
        KeysCommand::List => {
            let infos = keys::describe(&core.store.catalog.signing_keys().await?, unix_now());
            print(cli.json, &serde_json::to_value(&infos)?, || {
                let mut out = format!("{:<44} {:<6} {:<9} {:<21} {}", "KID", "ALG", "STATE", "SIGNS FROM", "PUBLISHED UNTIL");
                for k in &infos {
                    out.push_str(&format!(
                        "\n{:<44} {:<6} {:<9} {:<21} {}",
                        k.kid.as_str(),
                        k.alg,
                        k.state,
                        ts(k.activate_at),
                        k.publish_until.map_or("-".into(), ts)
                    ));
                }
                out
            });
        }
        KeysCommand::Rotate { alg } => {
            let alg = match alg {
                None => cfg.oauth.keys.access_token_alg,
                Some(a) => Alg::parse(a).ok_or_else(|| anyhow!("unknown algorithm \"{a}\" (ES256, RS256, PS256, EdDSA)"))?,
            };
            let rec = keys::rotate(&core.store, &core.master, &cfg.oauth, alg).await?;
            let v = json!({"kid": rec.kid, "alg": rec.alg, "activate_at": rec.activate_at});
            print(cli.json, &v, || {
                format!("new {} key {} is published now and signs from {}", rec.alg, rec.kid, ts(rec.activate_at))
            });
        }
    }
    Ok(())
}

/// The JSON shape of a client (`client show --json`, `client list --json`).
fn client_json(c: &Client) -> Value {
    let mut v = serde_json::to_value(&c.metadata).unwrap_or_else(|_| json!({}));
    v["client_id"] = c.client_id.0.clone().into();
    v["scope"] = c.metadata.scope.join(" ").into();
    v["origin"] = serde_json::to_value(c.origin).unwrap_or(Value::Null);
    v["created_at"] = c.created_at.into();
    v["updated_at"] = c.updated_at.into();
    v
}

fn client_text(c: &Client) -> String {
    let m = &c.metadata;
    let grants: Vec<&str> = m.grant_types.iter().map(|g| g.as_str()).collect();
    format!(
        "client_id:     {}\nname:          {}\ngrant_types:   {}\nauth_method:   {}\nscope:         {}\naudience:      {}\nredirect_uris: {}",
        c.client_id,
        m.client_name.as_deref().unwrap_or("-"),
        grants.join(" "),
        m.token_endpoint_auth_method.as_str(),
        m.scope.join(" "),
        if m.audience.is_empty() { "(default)".into() } else { m.audience.join(" ") },
        if m.redirect_uris.is_empty() { "-".into() } else { m.redirect_uris.join(" ") },
    )
}

fn create_request(args: &CreateArgs) -> anyhow::Result<RegistrationRequest> {
    let jwks = match &args.jwks_file {
        None => None,
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            Some(serde_json::from_str(&text).with_context(|| format!("{} is not JSON", f.display()))?)
        }
    };
    let grant_types = if !args.grant_types.is_empty() {
        args.grant_types.clone()
    } else if !args.redirect_uris.is_empty() {
        vec!["authorization_code".into()]
    } else {
        vec!["client_credentials".into()]
    };
    Ok(RegistrationRequest {
        client_name: args.name.clone(),
        grant_types: Some(grant_types),
        response_types: (!args.response_types.is_empty()).then(|| args.response_types.clone()),
        scope: Some(args.scopes.join(" ")),
        redirect_uris: Some(args.redirect_uris.clone()),
        post_logout_redirect_uris: Some(args.post_logout_redirect_uris.clone()),
        token_endpoint_auth_method: args.auth_method.clone(),
        audience: Some(args.audiences.clone()),
        access_token_lifetime: args.access_token_lifetime.map(|d| d.as_secs()),
        resource_server_for: Some(args.resource_server_for.clone()),
        dpop_bound_access_tokens: Some(args.dpop_bound),
        id_token_signed_response_alg: args.id_token_alg.clone(),
        first_party: Some(args.first_party),
        jwks,
        ..Default::default()
    })
}

async fn client_command(cli: &Cli, ctx: &Ctx, cmd: &ClientCommand) -> anyhow::Result<()> {
    let (cfg, core) = (&ctx.cfg, &ctx.core);
    let oauth_err = |e: crate::oauth::OAuthError| anyhow!("{}", e.description);
    match cmd {
        ClientCommand::Create(args) => {
            let secret = if args.secret_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("reading the secret from stdin")?;
                Some(s.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let algs = cfg.oauth.keys.signing_algs();
            let policy = Policy { scopes: None, audiences: None, max_lifetime: Some(cfg.oauth.max_access_token_lifetime), signing_algs: &algs };
            let created = clients::create(&core.store, &core.master, create_request(args)?, &policy, Origin::Operator, secret)
                .await
                .map_err(oauth_err)?;
            let mut v = client_json(&created.client);
            if let Some(s) = &created.client_secret {
                v["client_secret"] = s.clone().into();
            }
            print(cli.json, &v, || {
                let mut out = client_text(&created.client);
                if let Some(s) = &created.client_secret {
                    out.push_str(&format!("\nclient_secret: {s}\n\nThe secret is shown only now; store it safely."));
                }
                out
            });
        }
        ClientCommand::List => {
            let all = core.store.catalog.clients().await?;
            let list: Vec<Value> = all.iter().map(client_json).collect();
            print(cli.json, &Value::Array(list), || {
                let mut out = format!("{:<24} {:<24} {:<20} {}", "CLIENT_ID", "NAME", "AUTH_METHOD", "GRANT_TYPES");
                for c in &all {
                    let grants: Vec<&str> = c.metadata.grant_types.iter().map(|g| g.as_str()).collect();
                    out.push_str(&format!(
                        "\n{:<24} {:<24} {:<20} {}",
                        c.client_id,
                        c.metadata.client_name.as_deref().unwrap_or("-"),
                        c.metadata.token_endpoint_auth_method.as_str(),
                        grants.join(",")
                    ));
                }
                out
            });
        }
        ClientCommand::Show { client_id } => {
            let c = clients::show(&core.store, &ClientId(client_id.clone())).await.map_err(oauth_err)?;
            print(cli.json, &client_json(&c), || client_text(&c));
        }
        ClientCommand::Delete { client_id } => {
            clients::delete(&core.store, &ClientId(client_id.clone())).await.map_err(oauth_err)?;
            print(cli.json, &json!({"client_id": client_id, "deleted": true}), || format!("deleted client {client_id}"));
        }
        ClientCommand::RotateSecret { client_id } => {
            let (c, secret) = clients::rotate_secret(&core.store, &core.master, &ClientId(client_id.clone()))
                .await
                .map_err(oauth_err)?;
            print(cli.json, &json!({"client_id": c.client_id, "client_secret": secret}), || {
                format!("client_id:     {}\nclient_secret: {secret}\n\nThe old secret no longer works.", c.client_id)
            });
        }
    }
    Ok(())
}

async fn registration_token_command(cli: &Cli, ctx: &Ctx, cmd: &RegistrationTokenCommand) -> anyhow::Result<()> {
    let (cfg, core) = (&ctx.cfg, &ctx.core);
    match cmd {
        RegistrationTokenCommand::Create { description, expires_in } => {
            let lifetime = match expires_in.as_deref() {
                None => Some(cfg.oauth.registration.initial_access_token_lifetime.as_secs()),
                Some("never") => None,
                Some(d) => Some(humantime::parse_duration(d).with_context(|| format!("--expires-in \"{d}\""))?.as_secs()),
            };
            let t = register::create_initial_access_token(&core.store, &core.master, description, lifetime)
                .await
                .map_err(|e| anyhow!("{}", e.description))?;
            let v = json!({"id": t.record.id, "token": t.token, "expires_at": t.record.expires_at,
                           "registration_endpoint": cfg.oauth.endpoint("/register")});
            print(cli.json, &v, || {
                format!(
                    "id:      {}\ntoken:   {}\nexpires: {}\n\nRegister with: curl -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{...}}' {}",
                    t.record.id,
                    t.token,
                    t.record.expires_at.map_or("never".into(), ts),
                    t.token,
                    cfg.oauth.endpoint("/register")
                )
            });
        }
        RegistrationTokenCommand::List => {
            let all = core.store.catalog.initial_access_tokens().await?;
            let now = unix_now();
            let list: Vec<Value> = all
                .iter()
                .map(|t| json!({"id": t.id, "description": t.description, "created_at": t.created_at,
                                "expires_at": t.expires_at, "revoked_at": t.revoked_at, "usable": t.is_usable(now)}))
                .collect();
            print(cli.json, &Value::Array(list), || {
                let mut out = format!("{:<14} {:<8} {:<21} {}", "ID", "USABLE", "EXPIRES", "DESCRIPTION");
                for t in &all {
                    out.push_str(&format!(
                        "\n{:<14} {:<8} {:<21} {}",
                        t.id,
                        if t.is_usable(now) { "yes" } else { "no" },
                        t.expires_at.map_or("never".into(), ts),
                        t.description
                    ));
                }
                out
            });
        }
        RegistrationTokenCommand::Revoke { id } => {
            core.store
                .catalog
                .revoke_initial_access_token(id, unix_now())
                .await
                .map_err(|e| match e {
                    crate::store::StoreError::NotFound => anyhow!("no unrevoked initial access token with id \"{id}\""),
                    other => other.into(),
                })?;
            print(cli.json, &json!({"id": id, "revoked": true}), || format!("revoked initial access token {id}"));
        }
    }
    Ok(())
}

async fn resource_command(cli: &Cli, ctx: &Ctx, cmd: &ResourceCommand) -> anyhow::Result<()> {
    let (cfg, core) = (&ctx.cfg, &ctx.core);
    let oauth_err = |e: crate::oauth::OAuthError| anyhow!("{}", e.description);
    match cmd {
        ResourceCommand::Create { audience, name, access_token_lifetime } => {
            let r = resources::create(&core.store, audience, name.clone(), *access_token_lifetime, cfg.oauth.max_access_token_lifetime)
                .await
                .map_err(oauth_err)?;
            print(cli.json, &serde_json::to_value(&r)?, || {
                format!(
                    "resource {} registered{}",
                    r.audience,
                    r.access_token_lifetime.map_or(String::new(), |l| format!("; its tokens live at most {l}s"))
                )
            });
        }
        ResourceCommand::List => {
            let all = core.store.catalog.resources().await?;
            print(cli.json, &serde_json::to_value(&all)?, || {
                let mut out = format!("{:<40} {:<20} {}", "AUDIENCE", "NAME", "TOKEN LIFETIME");
                for r in &all {
                    out.push_str(&format!(
                        "\n{:<40} {:<20} {}",
                        r.audience,
                        r.name.as_deref().unwrap_or("-"),
                        r.access_token_lifetime.map_or("(client or default)".into(), |l| format!("{l}s"))
                    ));
                }
                out
            });
        }
        ResourceCommand::Delete { audience } => {
            resources::delete(&core.store, audience).await.map_err(oauth_err)?;
            print(cli.json, &json!({"audience": audience, "deleted": true}), || format!("deleted resource {audience}"));
        }
    }
    Ok(())
}

/// The JSON shape of a user (`user show --json`, `user list --json`): the subject, the
/// account state and the standard claims under their OIDC names; never the password hash.
fn user_json(u: &User) -> Value {
    let mut v = serde_json::to_value(&u.claims).unwrap_or_else(|_| json!({}));
    v["sub"] = u.id.as_str().into();
    v["username"] = u.username.as_str().into();
    v["disabled"] = u.disabled.into();
    v["has_password"] = u.password_hash.is_some().into();
    v["created_at"] = u.created_at.into();
    v["updated_at"] = u.updated_at.into();
    v
}

fn user_text(u: &User) -> String {
    let mut out = format!(
        "sub:                   {}\nusername:              {}\nstate:                 {}\npassword:              {}",
        u.id,
        u.username,
        if u.disabled { "disabled" } else { "enabled" },
        if u.password_hash.is_some() { "set" } else { "not set (cannot sign in with a password)" },
    );
    if let Ok(Value::Object(claims)) = serde_json::to_value(&u.claims) {
        for (k, v) in claims {
            let mut line = |key: String, v: Value| {
                let shown = match v {
                    Value::String(s) => s.replace('\n', "\n                       "),
                    other => other.to_string(),
                };
                out.push_str(&format!("\n{:<22} {shown}", format!("{key}:")));
            };
            match v {
                Value::Bool(false) => {}
                Value::Object(parts) => parts.into_iter().for_each(|(p, v)| line(format!("{k}.{p}"), v)),
                other => line(k, other),
            }
        }
    }
    out.push_str(&format!("\nupdated_at:            {}", ts(u.updated_at)));
    out
}

/// Applies `args` to `claims`: `--clear` first, then every option given. A changed email or
/// phone number loses its "verified" mark unless the command sets it again.
fn apply_claims(claims: &mut Claims, args: &ClaimArgs, clear: &[String]) -> anyhow::Result<()> {
    for name in clear {
        let address = claims.address.get_or_insert_with(Address::default);
        match name.as_str() {
            "name" => claims.name = None,
            "given_name" => claims.given_name = None,
            "family_name" => claims.family_name = None,
            "middle_name" => claims.middle_name = None,
            "nickname" => claims.nickname = None,
            "preferred_username" => claims.preferred_username = None,
            "profile" => claims.profile = None,
            "picture" => claims.picture = None,
            "website" => claims.website = None,
            "email" => (claims.email, claims.email_verified) = (None, false),
            "gender" => claims.gender = None,
            "birthdate" => claims.birthdate = None,
            "zoneinfo" => claims.zoneinfo = None,
            "locale" => claims.locale = None,
            "phone_number" => (claims.phone_number, claims.phone_number_verified) = (None, false),
            "address" => *address = Address::default(),
            "address.formatted" => address.formatted = None,
            "address.street_address" => address.street_address = None,
            "address.locality" => address.locality = None,
            "address.region" => address.region = None,
            "address.postal_code" => address.postal_code = None,
            "address.country" => address.country = None,
            other => bail!(
                "--clear {other}: not a claim that can be removed (name, given_name, family_name, middle_name, \
                 nickname, preferred_username, profile, picture, website, email, gender, birthdate, zoneinfo, \
                 locale, phone_number, address, address.formatted, address.street_address, address.locality, \
                 address.region, address.postal_code, address.country)"
            ),
        }
    }
    let set = |slot: &mut Option<String>, value: &Option<String>| {
        if value.is_some() {
            slot.clone_from(value);
        }
    };
    set(&mut claims.name, &args.name);
    set(&mut claims.given_name, &args.given_name);
    set(&mut claims.family_name, &args.family_name);
    set(&mut claims.middle_name, &args.middle_name);
    set(&mut claims.nickname, &args.nickname);
    set(&mut claims.preferred_username, &args.preferred_username);
    set(&mut claims.profile, &args.profile);
    set(&mut claims.picture, &args.picture);
    set(&mut claims.website, &args.website);
    set(&mut claims.gender, &args.gender);
    set(&mut claims.birthdate, &args.birthdate);
    set(&mut claims.zoneinfo, &args.zoneinfo);
    set(&mut claims.locale, &args.locale);
    if args.email.is_some() && args.email != claims.email {
        claims.email.clone_from(&args.email);
        claims.email_verified = false;
    }
    if args.phone_number.is_some() && args.phone_number != claims.phone_number {
        claims.phone_number.clone_from(&args.phone_number);
        claims.phone_number_verified = false;
    }
    if let Some(v) = args.email_verified {
        claims.email_verified = v;
    }
    if let Some(v) = args.phone_number_verified {
        claims.phone_number_verified = v;
    }
    let address = claims.address.get_or_insert_with(Address::default);
    set(&mut address.formatted, &args.address_formatted);
    set(&mut address.street_address, &args.street_address);
    set(&mut address.locality, &args.locality);
    set(&mut address.region, &args.region);
    set(&mut address.postal_code, &args.postal_code);
    set(&mut address.country, &args.country);
    if address.is_empty() {
        claims.address = None;
    }
    Ok(())
}

/// A new password: one line of standard input with `--password-stdin`, else typed twice at
/// the terminal (not echoed). Never from the command line, where `ps` and shell history
/// would keep it.
pub(super) fn read_password(from_stdin: bool) -> anyhow::Result<Password> {
    use std::io::IsTerminal;
    if from_stdin {
        let mut text = zeroize::Zeroizing::new(String::new());
        std::io::stdin().read_to_string(&mut text).context("reading the password from stdin")?;
        let line = text.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&text);
        if line.contains(['\n', '\r']) {
            bail!("--password-stdin reads one line, but stdin holds several");
        }
        if line.is_empty() {
            bail!("--password-stdin: stdin holds no password");
        }
        return Ok(Password::new(line.to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "stdin is not a terminal, so the password cannot be asked for: send it on stdin and add \
             --password-stdin (a password is never a command-line argument)"
        );
    }
    let first = Password::new(rpassword::prompt_password("New password: ").context("reading the password")?);
    let second = Password::new(rpassword::prompt_password("Repeat it: ").context("reading the password")?);
    if !first.same_as(&second) {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

async fn user_command(cli: &Cli, ctx: &Ctx, cmd: &UserCommand) -> anyhow::Result<()> {
    let store = &ctx.core.store;
    match cmd {
        UserCommand::Create(args) => {
            // Everything that can be checked is checked before the password is asked for.
            users::check_new_username(store, &args.username).await?;
            let mut claims = Claims::default();
            apply_claims(&mut claims, &args.claims, &[])?;
            claims.validate().map_err(|e| anyhow!(e))?;
            let password = read_password(args.password_stdin)?;
            let u = users::create(store, &args.username, claims, Some(password)).await?;
            print(cli.json, &user_json(&u), || format!("created user {} (sub {})", u.username, u.id));
        }
        UserCommand::List => {
            let all = store.catalog.users().await?;
            let list: Vec<Value> = all.iter().map(user_json).collect();
            print(cli.json, &Value::Array(list), || {
                let mut out = format!("{:<24} {:<24} {:<9} {:<24} {}", "SUB", "USERNAME", "STATE", "NAME", "EMAIL");
                for u in &all {
                    out.push_str(&format!(
                        "\n{:<24} {:<24} {:<9} {:<24} {}",
                        u.id.as_str(),
                        u.username.as_str(),
                        if u.disabled { "disabled" } else { "enabled" },
                        u.claims.name.as_deref().unwrap_or("-"),
                        u.claims.email.as_deref().unwrap_or("-"),
                    ));
                }
                out
            });
        }
        UserCommand::Show { username } => {
            let u = users::find(store, username).await?;
            print(cli.json, &user_json(&u), || user_text(&u));
        }
        UserCommand::Disable { username } | UserCommand::Enable { username } => {
            let disable = matches!(cmd, UserCommand::Disable { .. });
            let u = users::set_disabled(store, username, disable).await?;
            print(cli.json, &user_json(&u), || {
                format!("user {} is {}", u.username, if u.disabled { "disabled: they cannot sign in" } else { "enabled" })
            });
        }
        UserCommand::Delete { username } => {
            let u = users::delete(store, username).await?;
            print(cli.json, &json!({"sub": u.id.as_str(), "username": u.username.as_str(), "deleted": true}), || {
                format!("deleted user {}", u.username)
            });
        }
        UserCommand::Update(args) => {
            let u = users::update_claims(store, &args.username, |c| apply_claims(c, &args.claims, &args.clear).map_err(|e| e.to_string()))
                .await?;
            print(cli.json, &user_json(&u), || user_text(&u));
        }
        UserCommand::SetPassword { username, password_stdin } => {
            users::find(store, username).await?;
            let password = read_password(*password_stdin)?;
            let u = users::set_password(store, username, password).await?;
            print(cli.json, &json!({"sub": u.id.as_str(), "username": u.username.as_str(), "password_set": true}), || {
                format!("new password set for user {}", u.username)
            });
        }
    }
    Ok(())
}
