//! The `warden` command line. Every command takes `--config`, `--data-dir` and `--json`;
//! data goes to stdout, errors to stderr with a non-zero exit code. Commands work on the
//! same store a running server uses (SQLite WAL or PostgreSQL).

/// A line on stderr. Unlike `eprintln!`, a closed stderr is not a panic: a server whose
/// terminal went away must still shut down cleanly on SIGTERM.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// A line on stdout; a closed pipe (`warden client list | head -1`) is not a panic.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod commands;
pub mod consumers;

use crate::config::Role;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  warden serve                                   # provider :8080, gateway :8000, admin :9090
  warden client create --name billing --scope invoices:read --json
  curl -u ID:SECRET -d grant_type=client_credentials http://127.0.0.1:8080/token
  warden user create alice --email alice@example.com --name \"Alice Smith\"
  warden consumer create billing --plan gold && warden consumer key add billing
  warden keys rotate
  warden config check warden.toml";

/// API security in one binary: OAuth 2.0 / OpenID Connect provider, API gateway, admin.
#[derive(Parser, Debug)]
#[command(name = "warden", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Configuration file (TOML, version = 1). Without one, built-in defaults apply.
    #[arg(long, global = true, env = "WARDEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite file, master key file). Default: ./warden-data
    #[arg(long, global = true, env = "WARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print data as JSON (stable field names).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (all roles unless --role says otherwise).
    #[command(after_help = "Example:\n  warden serve --role provider,admin")]
    Serve(ServeArgs),
    /// Check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// API gateway tools.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage initial access tokens for dynamic client registration (RFC 7591).
    #[command(subcommand)]
    RegistrationToken(RegistrationTokenCommand),
    /// Manage protected resources (APIs) and their access-token policy.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Manage users who sign in at the provider (passwords from a prompt or stdin, never argv).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage gateway consumers: apps known by an API key, legacy callers by a Basic password.
    #[command(subcommand)]
    Consumer(consumers::ConsumerCommand),
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user. The password is asked for twice on the terminal, or read from standard
    /// input with --password-stdin; it is never a command-line argument.
    #[command(after_help = "Examples:\n  warden user create alice --email alice@example.com --email-verified --name \"Alice Smith\"\n  printf '%s\\n' \"$PASSWORD\" | warden user create alice --password-stdin --json")]
    Create(Box<UserCreateArgs>),
    /// List users (never their password hashes).
    #[command(after_help = "Example:\n  warden user list --json")]
    List,
    /// Show one user and their OpenID Connect claims.
    #[command(after_help = "Example:\n  warden user show alice --json")]
    Show {
        /// The username (any letter case).
        username: String,
    },
    /// Disable a user: they can no longer sign in.
    #[command(after_help = "Example:\n  warden user disable alice")]
    Disable {
        /// The username (any letter case).
        username: String,
    },
    /// Enable a disabled user again.
    #[command(after_help = "Example:\n  warden user enable alice")]
    Enable {
        /// The username (any letter case).
        username: String,
    },
    /// Delete a user. Their subject identifier (`sub`) is never given to anyone else.
    #[command(after_help = "Example:\n  warden user delete alice")]
    Delete {
        /// The username (any letter case).
        username: String,
    },
    /// Change a user's claims: the options given are set, --clear removes one. A new email or
    /// phone number is unverified unless --email-verified / --phone-verified is given too.
    #[command(after_help = "Example:\n  warden user update alice --email alice@new.example --email-verified --clear nickname")]
    Update(Box<UserUpdateArgs>),
    /// Set a new password: asked for twice on the terminal, or read from standard input with
    /// --password-stdin.
    #[command(after_help = "Examples:\n  warden user set-password alice\n  printf '%s\\n' \"$PASSWORD\" | warden user set-password alice --password-stdin")]
    SetPassword {
        /// The username (any letter case).
        username: String,
        /// Read the password from standard input (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `user create`: the username, the claims, the password source.
#[derive(Args, Debug)]
struct UserCreateArgs {
    /// The username: letters A-Z, digits and . _ - @ +, at most 64; unique ignoring case.
    username: String,
    /// Read the password from standard input (one line) instead of prompting.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    claims: ClaimArgs,
}

/// `user update`: the claims to set, and those to remove.
#[derive(Args, Debug)]
struct UserUpdateArgs {
    /// The username (any letter case).
    username: String,
    #[command(flatten)]
    claims: ClaimArgs,
    /// Remove a claim (repeatable): a claim name such as nickname, email, phone_number,
    /// address or address.region.
    #[arg(long = "clear", value_name = "CLAIM")]
    clear: Vec<String>,
}

/// The OpenID Connect Core §5.1 standard claims as options (`sub` and `updated_at` are
/// Warden's own).
#[derive(Args, Debug)]
struct ClaimArgs {
    /// Full name (claim `name`).
    #[arg(long)]
    name: Option<String>,
    /// Given name (`given_name`).
    #[arg(long)]
    given_name: Option<String>,
    /// Family name (`family_name`).
    #[arg(long)]
    family_name: Option<String>,
    /// Middle name (`middle_name`).
    #[arg(long)]
    middle_name: Option<String>,
    /// Casual name (`nickname`).
    #[arg(long)]
    nickname: Option<String>,
    /// Name the user likes to be called at clients (`preferred_username`).
    #[arg(long)]
    preferred_username: Option<String>,
    /// Profile page URL (`profile`).
    #[arg(long)]
    profile: Option<String>,
    /// Picture URL (`picture`).
    #[arg(long)]
    picture: Option<String>,
    /// Web page URL (`website`).
    #[arg(long)]
    website: Option<String>,
    /// E-mail address (`email`).
    #[arg(long)]
    email: Option<String>,
    /// The e-mail address was verified (`email_verified`); --email-verified=false to unset.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    email_verified: Option<bool>,
    /// Gender (`gender`).
    #[arg(long)]
    gender: Option<String>,
    /// Birthday, YYYY-MM-DD, YYYY or 0000-MM-DD (`birthdate`).
    #[arg(long)]
    birthdate: Option<String>,
    /// Time zone, e.g. Europe/Paris (`zoneinfo`).
    #[arg(long)]
    zoneinfo: Option<String>,
    /// Language tag, e.g. en-US (`locale`).
    #[arg(long)]
    locale: Option<String>,
    /// Telephone number, e.g. "+1 (425) 555-1212" (`phone_number`).
    #[arg(long = "phone", value_name = "PHONE")]
    phone_number: Option<String>,
    /// The phone number was verified (`phone_number_verified`); --phone-verified=false to unset.
    #[arg(long = "phone-verified", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    phone_number_verified: Option<bool>,
    /// Full postal address for display (`address.formatted`).
    #[arg(long = "address", value_name = "TEXT")]
    address_formatted: Option<String>,
    /// Street address (`address.street_address`).
    #[arg(long)]
    street_address: Option<String>,
    /// City (`address.locality`).
    #[arg(long)]
    locality: Option<String>,
    /// State or region (`address.region`).
    #[arg(long)]
    region: Option<String>,
    /// Postal code (`address.postal_code`).
    #[arg(long)]
    postal_code: Option<String>,
    /// Country (`address.country`).
    #[arg(long)]
    country: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ResourceCommand {
    /// Register an API by its audience; tokens for it live at most --access-token-lifetime.
    #[command(after_help = "Example:\n  warden resource create --audience https://api.example.com --name Payments \\\n    --access-token-lifetime 5m --json")]
    Create {
        /// The audience (`aud`) value, an absolute URI.
        #[arg(long)]
        audience: String,
        /// Human-readable name.
        #[arg(long)]
        name: Option<String>,
        /// Longest lifetime of access tokens for this API, e.g. 5m.
        #[arg(long, value_parser = humantime::parse_duration)]
        access_token_lifetime: Option<std::time::Duration>,
    },
    /// List resources.
    List,
    /// Delete a resource.
    Delete {
        /// The audience value.
        audience: String,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Roles to run, comma-separated: provider, gateway, admin.
    #[arg(long, value_delimiter = ',', value_parser = parse_role)]
    role: Vec<Role>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role \"{s}\" (provider, gateway, admin)"))
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Report every error in a configuration file (and the environment overrides).
    #[command(after_help = "Example:\n  warden config check warden.toml")]
    Check {
        /// The file; defaults to --config.
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum GatewayCommand {
    /// Print an OpenAPI 3.0 / 3.1 document's operations as [[gateway.routes]] (TOML), each
    /// with JSON Schemas for its parameters and body; operations left out are named on stderr.
    #[command(
        name = "import-openapi",
        after_help = "Example:\n  warden gateway import-openapi openapi.yaml --upstream http://127.0.0.1:9000 > routes.toml\n  warden config check routes.toml"
    )]
    ImportOpenapi {
        /// The document (YAML or JSON).
        spec: PathBuf,
        /// The routes' upstream (default: the document's first absolute server URL).
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
        /// The routes' auth (repeatable: warden, issuer:NAME, anonymous). Default: warden.
        #[arg(long, value_name = "KIND")]
        auth: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// List signing keys and their state (next, active, retiring).
    List,
    /// Create the next key: published now, signing after keys.rotation_delay.
    #[command(after_help = "Example:\n  warden keys rotate --alg ES256")]
    Rotate {
        /// Algorithm: ES256, RS256, PS256 or EdDSA. Default: keys.access_token_alg.
        #[arg(long)]
        alg: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ClientCommand {
    /// Register a client; prints its id and (once) its secret.
    #[command(after_help = "Example:\n  warden client create --name billing --grant-type client_credentials \\\n    --scope invoices:read --audience https://api.example.com --json")]
    Create(Box<CreateArgs>),
    /// List clients.
    List,
    /// Show one client.
    Show {
        /// The client id (one starting with `-` is taken as an id too).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Delete a client.
    Delete {
        /// The client id (one starting with `-` is taken as an id too).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Replace a client's secret; prints the new one (once). The old one stops working.
    RotateSecret {
        /// The client id (one starting with `-` is taken as an id too).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Human-readable name.
    #[arg(long)]
    name: Option<String>,
    /// Grant type (repeatable): client_credentials, authorization_code, refresh_token; the
    /// legacy implicit and password grants only here, never by dynamic registration (see the
    /// README, "Legacy grants"). Default: authorization_code with --redirect-uri, else
    /// client_credentials.
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// Response type (repeatable): code, id_token, "id_token token". Default: code with
    /// authorization_code, both id_token types with implicit.
    #[arg(long = "response-type", value_name = "TYPE")]
    response_types: Vec<String>,
    /// Allowed scope (repeatable, or space-separated).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Redirect URI (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Where the browser may return after signing out (repeatable; OIDC RP-Initiated Logout).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// client_secret_basic (default), client_secret_post, private_key_jwt or none.
    #[arg(long = "auth-method", value_name = "METHOD")]
    auth_method: Option<String>,
    /// Audience of the client's access tokens (repeatable; the first is the default).
    #[arg(long = "audience")]
    audiences: Vec<String>,
    /// An audience this client is the resource server of (repeatable): it may introspect
    /// tokens issued for it (provider.introspection = "restricted").
    #[arg(long = "resource-server-for", value_name = "AUDIENCE")]
    resource_server_for: Vec<String>,
    /// Access-token lifetime, e.g. 5m (default: provider.access_token_lifetime).
    #[arg(long, value_parser = humantime::parse_duration)]
    access_token_lifetime: Option<std::time::Duration>,
    /// Require DPoP (RFC 9449) on every token request: tokens are always key-bound.
    #[arg(long)]
    dpop_bound: bool,
    /// Algorithm of this client's ID tokens (one the server signs with: keys.access_token_alg
    /// or keys.id_token_algs); default: the first of keys.id_token_algs.
    #[arg(long = "id-token-alg", value_name = "ALG")]
    id_token_alg: Option<String>,
    /// An application of your own: users are not asked to consent to it.
    #[arg(long)]
    first_party: bool,
    /// JWK Set file with the client's public keys (for private_key_jwt).
    #[arg(long, value_name = "FILE")]
    jwks_file: Option<PathBuf>,
    /// Read the client secret from stdin instead of generating one (characters A-Z a-z 0-9 - . _ ~, at least 128 bits estimated).
    #[arg(long)]
    secret_stdin: bool,
}

#[derive(Subcommand, Debug)]
enum RegistrationTokenCommand {
    /// Create an initial access token; prints it once.
    #[command(after_help = "Example:\n  warden registration-token create --expires-in 1h --json")]
    Create {
        /// Operator's note.
        #[arg(long, default_value = "")]
        description: String,
        /// Lifetime such as 1h or 7d, or "never". Default: registration.initial_access_token_lifetime.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List initial access tokens (never the tokens themselves).
    List,
    /// Revoke an initial access token by id.
    Revoke {
        /// The token's id (from list).
        id: String,
    },
}

/// Parses the command line and runs it; the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // On one CPU (the process's affinity mask or CPU quota) tokio's multi-thread scheduler
    // would run one worker anyway, and pays for work stealing and cross-thread wake-ups it
    // cannot use: the current-thread scheduler serves the same work with less CPU per request
    // (a proxy waits on two sockets per request; bench/README.md, "Gateway"). Blocking work
    // (password hashing, SQLite) runs on the blocking pool either way.
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_cpu { tokio::runtime::Builder::new_current_thread() } else { tokio::runtime::Builder::new_multi_thread() };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            say!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            say!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated ids are base64url, so one in 64 starts with `-`: such an id is an argument,
    /// never taken for an option.
    #[test]
    fn ids_starting_with_a_hyphen_are_arguments() {
        for args in [["warden", "consumer", "key", "revoke", "acme", "-MrBYsvI"].as_slice(), &["warden", "client", "show", "-x9Qe"]] {
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("{args:?}: {e}");
            }
        }
    }
}
