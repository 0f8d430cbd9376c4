//! The built `warden` binary driven as a subprocess: CLI conventions, and CLI commands working
//! on the store of a running server.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub fn warden(dir: &Path, args: &[&str]) -> Output {
    warden_env(dir, &[], args)
}

/// Runs the binary on `dir` with extra environment variables (and no inherited
/// `WARDEN_CONFIG` / `WARDEN_MASTER_KEY` unless given).
pub fn warden_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.args(args).env("WARDEN_DATA_DIR", dir).env_remove("WARDEN_CONFIG").env_remove("WARDEN_MASTER_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

pub fn json_out(o: &Output) -> Value {
    assert!(o.status.success(), "command failed ({}): {}", o.status, String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn help_shows_examples_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["serve", "--help"], &["client", "create", "--help"], &["keys", "rotate", "--help"], &["config", "check", "--help"], &["registration-token", "create", "--help"], &["resource", "create", "--help"]] {
        let o = warden(dir.path(), args);
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).contains("Example"), "{args:?}");
    }
}

#[test]
fn client_lifecycle_with_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let created = json_out(&warden(d, &["client", "create", "--name", "billing", "--scope", "invoices:read", "--scope", "invoices:write", "--audience", "https://api.example", "--json"]));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256-bit secret");
    assert_eq!(created["scope"], "invoices:read invoices:write");
    assert_eq!(created["grant_types"], serde_json::json!(["client_credentials"]));

    let list = json_out(&warden(d, &["client", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("client_secret").is_none(), "secrets are shown once");
    let db = std::fs::read(d.join("warden.db")).unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()), "only the hash is stored");

    let shown = json_out(&warden(d, &["client", "show", &id, "--json"]));
    assert_eq!(shown["client_name"], "billing");
    let rotated = json_out(&warden(d, &["client", "rotate-secret", &id, "--json"]));
    assert_ne!(rotated["client_secret"], secret);
    json_out(&warden(d, &["client", "delete", &id, "--json"]));
    let gone = warden(d, &["client", "show", &id]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no client"));
    assert!(gone.stdout.is_empty(), "errors go to stderr only");
}

#[test]
fn resources_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = json_out(&warden(d, &["resource", "create", "--audience", "https://api.example", "--name", "API", "--access-token-lifetime", "5m", "--json"]));
    assert_eq!(r["audience"], "https://api.example");
    assert_eq!(r["access_token_lifetime"], 300);
    let dup = warden(d, &["resource", "create", "--audience", "https://api.example"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists"));
    let list = json_out(&warden(d, &["resource", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    json_out(&warden(d, &["resource", "delete", "https://api.example", "--json"]));
    assert_eq!(json_out(&warden(d, &["resource", "list", "--json"])).as_array().unwrap().len(), 0);
}

#[test]
fn invalid_client_requests_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    // The operator may enable the legacy implicit grant, but only with its response types.
    let o = warden(dir.path(), &["client", "create", "--grant-type", "implicit", "--response-type", "token", "--redirect-uri", "https://a.example/cb"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("implicit"));
    let o = warden(dir.path(), &["client", "create", "--redirect-uri", "http://evil.example/cb"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("https"));
    let o = warden(dir.path(), &["client", "create", "--redirect-uri", "https://a.example/cb", "--id-token-alg", "none"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("id_token_signed_response_alg"));
    let created = json_out(&warden(dir.path(), &["client", "create", "--redirect-uri", "https://a.example/cb", "--id-token-alg", "ES256", "--json"]));
    assert_eq!(created["id_token_signed_response_alg"], "ES256");

    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["client", "create", "--secret-stdin"])
        .env("WARDEN_DATA_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"password123\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("too weak"));
}

#[test]
fn config_check_reports_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    std::fs::write(&file, "version = 1\nlisten = 1\n[provider]\nissuer = \"http://public.example\"\nclock_skew = \"forever\"\n[keys]\naccess_token_alg = \"none\"\n").unwrap();
    let o = warden(dir.path(), &["config", "check", file.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for key in ["listen: unknown key", "provider.issuer", "provider.clock_skew", "keys.access_token_alg"] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
    let o = warden(dir.path(), &["config", "check", file.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 4);

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("warden.example.toml");
    let o = warden(dir.path(), &["config", "check", example.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A `warden serve --role provider` subprocess on an ephemeral port. It is killed if the test
/// fails before stopping it, so a failed test leaves no process behind.
struct Running {
    child: std::process::Child,
    stderr: Option<std::io::BufReader<std::process::ChildStderr>>,
    /// What the server printed so far.
    printed: String,
    /// The provider's URL, as the server printed it.
    url: String,
}

impl Running {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Running {
        let child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--role", "provider"])
            .env("WARDEN_DATA_DIR", dir)
            .env("WARDEN_PROVIDER__LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .env_remove("WARDEN_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut running = Running { child, stderr: None, printed: String::new(), url: String::new() };
        let mut reader = std::io::BufReader::new(running.child.stderr.take().unwrap());
        running.url = provider_url(&mut reader, &mut running.printed);
        running.stderr = Some(reader);
        running
    }

    /// Sends SIGTERM and waits up to 5 s; the exit status, or `None` if it did not stop.
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads the server's stderr until it says where the provider listens (it binds port 0
/// itself, so no other test can take the port in between).
fn provider_url(stderr: &mut impl std::io::BufRead, seen: &mut String) -> String {
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if let Some(rest) = line.split("provider listening on ").nth(1) {
            return rest.split_whitespace().next().unwrap().to_owned();
        }
        line.clear();
    }
    panic!("the server exited before listening: {seen}");
}

#[tokio::test]
async fn the_cli_works_beside_a_running_server_which_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = Running::start(d, &[("WARDEN_KEYS__ROTATION_DELAY", "0s"), ("WARDEN_KEYS__REFRESH_INTERVAL", "200ms")]);
    let base = server.url.clone();
    let http = reqwest::Client::new();
    let meta: Value = http.get(format!("{base}/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert_eq!(meta["issuer"], base, "the issuer follows the port the system picked");

    let created = json_out(&warden(d, &["client", "create", "--name", "x", "--json"]));
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the client cache TTL
    let resp = http.post(format!("{base}/token")).basic_auth(id, Some(secret)).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let rotated = json_out(&warden(d, &["keys", "rotate", "--json"]));
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let mut published = false;
    for _ in 0..50 {
        let jwks: Value = http.get(format!("{base}/jwks")).send().await.unwrap().json().await.unwrap();
        if jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == new_kid) {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published, "the server picked up the key rotated by the CLI");
    let keys = json_out(&warden(d, &["keys", "list", "--json"]));
    // Two ES256 keys (old and rotated) and the RS256 ID-token key.
    assert_eq!(keys.as_array().unwrap().iter().filter(|k| k["alg"] == "ES256").count(), 2);
    assert_eq!(keys.as_array().unwrap().len(), 3);

    let token = json_out(&warden(d, &["registration-token", "create", "--expires-in", "1h", "--json"]));
    assert!(token["token"].as_str().unwrap().len() >= 43);
    let resp = http.post(format!("{base}/register")).bearer_auth(token["token"].as_str().unwrap())
        .json(&serde_json::json!({"grant_types": ["client_credentials"]})).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let listed = json_out(&warden(d, &["registration-token", "list", "--json"]));
    assert_eq!(listed[0]["usable"], true);
    json_out(&warden(d, &["registration-token", "revoke", token["id"].as_str().unwrap(), "--json"]));

    let status = server.terminate().expect("server stops on SIGTERM");
    assert!(status.success(), "clean exit on SIGTERM");
    use std::io::Read;
    let mut stderr = server.printed.clone();
    server.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("listening on http://127.0.0.1"), "prints where it listens: {stderr}");
    assert!(stderr.contains("data in"), "prints where its data is");
    assert!(stderr.contains("master key"), "warns about the new master key file");
}

#[test]
fn sigterm_stops_a_server_whose_stderr_was_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Running::start(dir.path(), &[]);
    drop(server.stderr.take()); // the terminal goes away
    assert!(server.terminate().is_some(), "the server ignored SIGTERM after its stderr closed");
}

/// A client id that starts with `-` (stores from before ids were drawn to avoid it) is still
/// an id to `client show`, not an option.
#[test]
fn a_client_id_starting_with_a_hyphen_is_an_argument_not_an_option() {
    let dir = tempfile::tempdir().unwrap();
    let o = warden(dir.path(), &["client", "show", "-Fx0", "--json"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("unexpected argument"), "{err}");
    assert!(err.contains("-Fx0"), "the error names the client: {err}");
}
