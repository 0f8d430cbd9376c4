//! Users (issue #6, item 1): the `warden user` commands driven as a subprocess, what they
//! store (read back through the store API), and password sign-in
//! (`Provider::authenticate_user`) on the records the CLI wrote.

use crate::blackbox::{json_out, warden};
use crate::support::test_config;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use warden::app::Core;
use warden::jose::KeyRing;
use warden::oauth::Provider;
use warden::oauth::users::LoginError;
use warden::secrets::password::Password;

/// Runs the binary on `dir` with `stdin` as its standard input.
fn warden_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env("WARDEN_DATA_DIR", dir)
        .env_remove("WARDEN_CONFIG")
        .env_remove("WARDEN_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failed command: exit code 1, the message on stderr, nothing on stdout.
fn fails(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "expected exit 1; stdout: {}", String::from_utf8_lossy(&o.stdout));
    assert!(o.stdout.is_empty(), "errors go to stderr only");
    stderr(o)
}

const PASSWORD: &str = "tulip-Orbit-42-quartz";

fn create(dir: &Path, username: &str, password: &str, extra: &[&str]) -> Output {
    let mut args = vec!["user", "create", username, "--password-stdin", "--json"];
    args.extend_from_slice(extra);
    warden_stdin(dir, &args, &format!("{password}\n"))
}

/// A provider over the store the CLI wrote (same data directory, same master key file).
async fn provider(dir: &Path) -> Provider {
    let cfg = test_config(dir);
    let core = Core::open(&cfg, None).await.unwrap();
    Provider::new(cfg.oauth.clone(), core.store, core.master, Arc::new(KeyRing::default()))
}

#[test]
fn create_with_password_stdin_then_show_and_list_as_json_without_any_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = create(d, "Alice", PASSWORD, &[
        "--name", "Alice Smith", "--given-name", "Alice", "--family-name", "Smith",
        "--email", "alice@example.com", "--email-verified", "--phone", "+1 (425) 555-1212",
        "--locale", "en-US", "--zoneinfo", "America/Los_Angeles", "--birthdate", "1990-04-01",
        "--website", "https://alice.example", "--address", "1 Main St\nSpringfield", "--country", "US",
    ]);
    let created = json_out(&o);
    let sub = created["sub"].as_str().unwrap().to_owned();
    assert_eq!(sub.len(), 22, "128 random bits, base64url");
    assert_ne!(sub.to_lowercase(), "alice", "the sub is not the username");

    let shown = json_out(&warden(d, &["user", "show", "ALICE", "--json"]));
    assert_eq!(shown["sub"], sub.as_str(), "found in any letter case, same sub");
    assert_eq!(shown["username"], "Alice");
    assert_eq!(shown["disabled"], false);
    assert_eq!(shown["has_password"], true);
    assert_eq!(shown["name"], "Alice Smith");
    assert_eq!(shown["given_name"], "Alice");
    assert_eq!(shown["family_name"], "Smith");
    assert_eq!(shown["email"], "alice@example.com");
    assert_eq!(shown["email_verified"], true);
    assert_eq!(shown["phone_number"], "+1 (425) 555-1212");
    assert_eq!(shown["phone_number_verified"], false);
    assert_eq!(shown["locale"], "en-US");
    assert_eq!(shown["zoneinfo"], "America/Los_Angeles");
    assert_eq!(shown["birthdate"], "1990-04-01");
    assert_eq!(shown["website"], "https://alice.example");
    assert_eq!(shown["address"], serde_json::json!({"formatted": "1 Main St\nSpringfield", "country": "US"}));
    assert!(shown["updated_at"].as_i64().unwrap() > 1_700_000_000);
    assert!(shown.get("middle_name").is_none(), "absent claims are omitted");

    create(d, "bob", "another-Long-pass-7", &[]);
    let list = json_out(&warden(d, &["user", "list", "--json"]));
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["Alice", "bob"]);

    let text = warden(d, &["user", "list"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("alice@example.com"));
    for out in [&o.stdout, &o.stderr, &text.stdout] {
        let s = String::from_utf8_lossy(out);
        assert!(!s.contains(PASSWORD) && !s.contains("argon2"), "no password and no hash in output: {s}");
    }
    for v in [&created, &shown, &list] {
        let s = v.to_string();
        assert!(!s.contains(PASSWORD) && !s.contains("argon2") && !s.contains("password_hash"), "{s}");
    }
}

#[tokio::test]
async fn the_hash_at_rest_is_owasp_argon2id_and_does_not_hold_the_password() {
    let dir = tempfile::tempdir().unwrap();
    json_out(&create(dir.path(), "carol", PASSWORD, &[]));
    let p = provider(dir.path()).await;
    let user = p.store.catalog.user_by_username("Carol").await.unwrap().expect("stored");
    let hash = user.password_hash.expect("a hash is stored").0;
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "PHC string with OWASP parameters: {hash}");
    assert_eq!(hash.split('$').count(), 6, "$argon2id$v$params$salt$hash");
    assert!(!hash.contains(PASSWORD));
    assert!(in_db_files(dir.path(), &hash), "the hash is found where it is stored");
    assert!(!in_db_files(dir.path(), PASSWORD), "the password is nowhere in the database or its WAL");
}

/// Whether `needle` is in one of the SQLite files (database, WAL).
fn in_db_files(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        path.file_name().unwrap().to_string_lossy().starts_with("warden.db")
            && std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[test]
fn weak_passwords_are_refused_with_the_rule_they_break() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for common in ["password", "Iloveyou", "QWERTYUIOP", "12345678"] {
        let err = fails(&create(d, "dave", common, &[]));
        assert!(err.contains("most common passwords"), "{common}: {err}");
    }
    // 7 characters (but 14 bytes) is too short: characters are counted, not bytes.
    let err = fails(&create(d, "dave", "жзийклм", &[]));
    assert!(err.contains("at least 8 characters"), "{err}");
    let err = fails(&create(d, "dave", &"x9".repeat(129), &[]));
    assert!(err.contains("at most 256 characters"), "{err}");
    let err = fails(&warden_stdin(d, &["user", "create", "dave", "--password-stdin"], "\n"));
    assert!(err.contains("no password"), "{err}");
    let err = fails(&warden(d, &["user", "show", "dave"]));
    assert!(err.contains("no user named \"dave\""), "nothing was created: {err}");
    // Eight characters, not on the list: accepted.
    json_out(&create(d, "dave", "жзийклмн", &[]));
}

#[test]
fn a_password_is_never_a_command_line_argument() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [&["user", "create", "x", "--password", "hunter2"][..], &["user", "set-password", "x", "--password", "hunter2"]] {
        let o = warden(d, args);
        assert_eq!(o.status.code(), Some(2), "clap usage error");
        assert!(stderr(&o).contains("unexpected argument '--password'"), "{}", stderr(&o));
    }
    // No terminal and no --password-stdin: say how to pass it.
    let err = fails(&warden(d, &["user", "create", "erin"]));
    assert!(err.contains("not a terminal") && err.contains("--password-stdin"), "{err}");
    let err = fails(&warden(d, &["user", "show", "erin"]));
    assert!(err.contains("no user"), "{err}");
}

#[test]
fn usernames_are_unique_ignoring_case_and_checked_before_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json_out(&create(d, "Frank", PASSWORD, &[]));
    let err = fails(&create(d, "  fRANK ", "different-Pass-99", &[]));
    assert!(err.contains("already exists"), "{err}");
    // Checked before asking for a password: stdin is not read, not a terminal, no complaint about it.
    let err = fails(&warden(d, &["user", "create", "FRANK"]));
    assert!(err.contains("already exists"), "{err}");
    let err = fails(&warden(d, &["user", "create", "frank smith"]));
    assert!(err.contains("may contain only"), "{err}");
    let err = fails(&warden(d, &["user", "create", "--", "-x"]));
    assert!(err.contains("start with a letter or a digit"), "{err}");
    let err = fails(&warden(d, &["user", "create", "gina", "--email", "not-an-address"]));
    assert!(err.contains("email"), "{err}");
    let err = fails(&warden(d, &["user", "create", "gina", "--email-verified"]));
    assert!(err.contains("email_verified needs an email"), "{err}");
    assert_eq!(json_out(&warden(d, &["user", "list", "--json"])).as_array().unwrap().len(), 1);
}

#[test]
fn disable_and_enable_show_in_show_and_delete_makes_the_user_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sub = json_out(&create(d, "heidi", PASSWORD, &[]))["sub"].as_str().unwrap().to_owned();
    let disabled = json_out(&warden(d, &["user", "disable", "Heidi", "--json"]));
    assert_eq!(disabled["disabled"], true);
    assert_eq!(json_out(&warden(d, &["user", "show", "heidi", "--json"]))["disabled"], true);
    let text = warden(d, &["user", "show", "heidi"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("disabled"));
    json_out(&warden(d, &["user", "enable", "heidi", "--json"]));
    assert_eq!(json_out(&warden(d, &["user", "show", "heidi", "--json"]))["disabled"], false);

    let deleted = json_out(&warden(d, &["user", "delete", "HEIDI", "--json"]));
    assert_eq!(deleted, serde_json::json!({"sub": sub, "username": "heidi", "deleted": true}));
    let err = fails(&warden(d, &["user", "show", "heidi"]));
    assert!(err.contains("no user named \"heidi\""), "{err}");
    for cmd in ["delete", "disable", "enable"] {
        let err = fails(&warden(d, &["user", cmd, "heidi"]));
        assert!(err.contains("no user"), "{cmd}: {err}");
    }
    let err = fails(&warden_stdin(d, &["user", "set-password", "heidi", "--password-stdin"], "whatever-Pass-1\n"));
    assert!(err.contains("no user"), "{err}");
    // A new user with the same name is another subject.
    let again = json_out(&create(d, "heidi", PASSWORD, &[]));
    assert_ne!(again["sub"], sub.as_str(), "a sub is never reused");
}

#[test]
fn update_sets_and_clears_claims_and_a_new_email_starts_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let created = json_out(&create(d, "judy", PASSWORD, &[
        "--email", "judy@example.com", "--email-verified", "--phone", "+33 1 23 45 67 89", "--phone-verified",
        "--nickname", "jj", "--locality", "Paris", "--country", "FR",
    ]));
    assert_eq!((created["email_verified"].as_bool(), created["phone_number_verified"].as_bool()), (Some(true), Some(true)));

    let v = json_out(&warden(d, &["user", "update", "JUDY", "--email", "judy@new.example", "--name", "Judy Hopps", "--clear", "nickname", "--clear", "address.locality", "--json"]));
    assert_eq!(v["sub"], created["sub"]);
    assert_eq!(v["email"], "judy@new.example");
    assert_eq!(v["email_verified"], false, "a new address is not verified");
    assert_eq!(v["phone_number_verified"], true, "untouched claims stay");
    assert_eq!(v["name"], "Judy Hopps");
    assert!(v.get("nickname").is_none());
    assert_eq!(v["address"], serde_json::json!({"country": "FR"}));
    assert_eq!(json_out(&warden(d, &["user", "show", "judy", "--json"])), v, "stored as shown");

    let v = json_out(&warden(d, &["user", "update", "judy", "--email-verified", "--phone-verified=false", "--clear", "address", "--json"]));
    assert_eq!((v["email_verified"].as_bool(), v["phone_number_verified"].as_bool()), (Some(true), Some(false)));
    assert!(v.get("address").is_none());

    let err = fails(&warden(d, &["user", "update", "judy", "--clear", "sub"]));
    assert!(err.contains("--clear sub") && err.contains("nickname"), "{err}");
    let err = fails(&warden(d, &["user", "update", "judy", "--website", "ftp://x"]));
    assert!(err.contains("website"), "{err}");
    let v = json_out(&warden(d, &["user", "update", "judy", "--clear", "email", "--json"]));
    assert!(v.get("email").is_none());
    assert_eq!(v["email_verified"], false, "clearing the email clears its verification too");
}

#[tokio::test]
async fn sign_in_checks_the_password_set_from_the_cli_and_refuses_disabled_users_alike() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sub = json_out(&create(d, "Ivan", PASSWORD, &[]))["sub"].as_str().unwrap().to_owned();
    let p = provider(d).await;
    let login = |user: &'static str, pw: &str| p.authenticate_user(user, Password::new(pw.into()));

    let u = login("ivan", PASSWORD).await.expect("the right password, any username case");
    assert_eq!(u.id.as_str(), sub);
    assert!(matches!(login("ivan", "tulip-Orbit-42-quartZ").await, Err(LoginError::InvalidCredentials)));
    assert!(matches!(login("nobody", PASSWORD).await, Err(LoginError::InvalidCredentials)));
    assert!(matches!(login("not a valid name!", PASSWORD).await, Err(LoginError::InvalidCredentials)));

    let o = warden_stdin(d, &["user", "set-password", "IVAN", "--password-stdin", "--json"], "a-New-secret-phrase\r\n");
    let v: Value = json_out(&o);
    assert_eq!(v["password_set"], true);
    assert!(matches!(login("ivan", PASSWORD).await, Err(LoginError::InvalidCredentials)), "the old password stops working");
    login("ivan", "a-New-secret-phrase").await.expect("the new one works (the CRLF is not part of it)");
    let err = fails(&warden_stdin(d, &["user", "set-password", "ivan", "--password-stdin"], "letmein1\n"));
    assert!(err.contains("most common"), "{err}");
    login("ivan", "a-New-secret-phrase").await.expect("a refused password changes nothing");

    json_out(&warden(d, &["user", "disable", "ivan", "--json"]));
    match login("ivan", "a-New-secret-phrase").await {
        Err(e @ LoginError::InvalidCredentials) => assert_eq!(e.to_string(), "invalid username or password"),
        other => panic!("a disabled user must get the wrong-password answer, got {:?}", other.map(|u| u.id)),
    }
    json_out(&warden(d, &["user", "enable", "ivan", "--json"]));
    login("ivan", "a-New-secret-phrase").await.expect("enabled again");
}

#[test]
fn help_shows_examples_for_every_user_command() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["create", "list", "show", "update", "disable", "enable", "delete", "set-password"] {
        let o = warden(dir.path(), &["user", cmd, "--help"]);
        assert!(o.status.success());
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(help.contains("Example"), "user {cmd} --help: {help}");
    }
    let help = String::from_utf8_lossy(&warden(dir.path(), &["user", "create", "--help"]).stdout).into_owned();
    for flag in ["--password-stdin", "--email-verified", "--phone-verified", "--given-name", "--locale", "--country"] {
        assert!(help.contains(flag), "{flag}");
    }
}
