//! Issue #5 item 2: a wrong or missing master key is refused before anything is written, the
//! key ring survives records it cannot open, and key retirement follows the lifetimes the
//! servers run with, not the CLI's own configuration.

use crate::blackbox::{json_out, warden, warden_env};
use crate::support::{PgSchema, TestServer};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use warden::app::Core;
use warden::jose::Alg;
use warden::oauth::keys;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn other_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([42u8; 32])
}

/// A server with a client and `keys.rotation_delay` = 5 min, restarted with `edit` applied
/// too (an operator's configuration change); returns it and the client's credentials.
async fn restarted_with(edit: impl FnOnce(&mut warden::config::Config)) -> (TestServer, String, String) {
    let delay = |c: &mut warden::config::Config| c.oauth.keys.rotation_delay = Duration::from_secs(300);
    let s = TestServer::start_with(delay).await;
    let (id, secret) = s.cc_client().await;
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| {
        delay(c);
        edit(c);
    })
    .await;
    (s, id, secret)
}

#[test]
fn a_store_with_records_never_gets_a_new_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json_out(&warden(d, &["client", "create", "--name", "a", "--json"]));
    let key = std::fs::read_to_string(d.join("master.key")).unwrap();
    std::fs::remove_file(d.join("master.key")).unwrap();

    let o = warden(d, &["client", "create", "--name", "b", "--json"]);
    assert!(!o.status.success());
    let msg = stderr(&o);
    assert!(msg.contains("WARDEN_MASTER_KEY") && msg.contains("master.key") && msg.contains("backup"), "{msg}");
    assert!(!d.join("master.key").exists(), "no key was created");
    let o = warden_env(d, &[("WARDEN_MASTER_KEY", key.trim())], &["client", "list", "--json"]);
    assert_eq!(json_out(&o).as_array().unwrap().len(), 1, "nothing was written");
}

#[test]
fn a_wrong_master_key_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json_out(&warden(d, &["client", "create", "--name", "a", "--json"]));
    for args in [&["client", "create", "--name", "b"][..], &["keys", "rotate"], &["registration-token", "create"], &["serve"]] {
        let o = warden_env(d, &[("WARDEN_MASTER_KEY", &other_key())], args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains("does not match this store"), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(json_out(&warden(d, &["client", "list", "--json"])).as_array().unwrap().len(), 1);
    assert_eq!(json_out(&warden(d, &["keys", "list", "--json"])).as_array().unwrap().len(), 0, "no key was written");
}

#[test]
fn the_data_directory_and_files_are_private_and_an_exposed_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    json_out(&warden(&d, &["client", "list", "--json"]));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d), 0o700);
    assert_eq!(mode(&d.join("warden.db")), 0o600);
    assert_eq!(mode(&d.join("master.key")), 0o600);
    std::fs::set_permissions(d.join("master.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = warden(&d, &["client", "list"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
}

async fn open_err(cfg: &warden::config::Config, key: Option<&str>) -> String {
    match Core::open(cfg, key).await {
        Ok(_) => panic!("must be refused"),
        Err(e) => e.to_string(),
    }
}

/// The case from the issue: a CLI run on another machine against a shared PostgreSQL store,
/// without the cluster's master key.
#[tokio::test]
async fn another_machine_without_the_key_cannot_write_to_a_shared_postgres_store() {
    let Some(pg) = PgSchema::new("warden_mk").await else { return };
    let (url, schema) = (pg.url.clone(), pg.schema.clone());
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = [("WARDEN_DATABASE__URL", url.as_str()), ("WARDEN_DATABASE__SCHEMA", schema.as_str())];
    json_out(&warden_env(a_dir.path(), &env, &["client", "create", "--name", "a", "--json"]));
    let key = std::fs::read_to_string(a_dir.path().join("master.key")).unwrap();

    let o = warden_env(b_dir.path(), &env, &["client", "create", "--name", "b"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("WARDEN_MASTER_KEY"), "{}", stderr(&o));
    assert!(!b_dir.path().join("master.key").exists());
    let mut with_other = env.to_vec();
    let other = other_key();
    with_other.push(("WARDEN_MASTER_KEY", &other));
    assert!(!warden_env(b_dir.path(), &with_other, &["keys", "rotate"]).status.success());

    let mut with_key = env.to_vec();
    with_key.push(("WARDEN_MASTER_KEY", key.trim()));
    json_out(&warden_env(b_dir.path(), &with_key, &["client", "create", "--name", "b", "--json"]));
    assert_eq!(json_out(&warden_env(a_dir.path(), &env, &["client", "list", "--json"])).as_array().unwrap().len(), 2);
}

/// A store written before check values existed gets one from the first key that opens its
/// signing keys; a key that opens none is refused.
#[tokio::test]
async fn a_store_without_a_check_value_accepts_only_the_key_its_signing_keys_open() {
    let s = TestServer::start().await;
    let cfg = s.cfg.clone();
    let key_file = std::fs::read_to_string(s.data_dir().join("master.key")).unwrap();
    let _dir = s.stop().await;
    // Simulate the pre-0004 store: no check value at all.
    let pool_url = format!("sqlite://{}", cfg.data_dir.join("warden.db").display());
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&pool_url).await.unwrap();
        sqlx::query("DELETE FROM settings WHERE name = 'master_key_check'").execute(&mut conn).await.unwrap();
    }
    let msg = open_err(&cfg, Some(&other_key())).await;
    assert!(msg.contains("does not match"), "{msg}");
    let core = Core::open(&cfg, Some(key_file.trim())).await.unwrap();
    assert!(core.store.catalog.setting("master_key_check").await.unwrap().is_some(), "the check value is recorded");
}

#[tokio::test]
async fn rotation_keeps_old_keys_for_the_servers_token_horizon_not_the_clis() {
    let s = TestServer::start_with(|c| c.oauth.max_access_token_lifetime = Duration::from_secs(48 * 3600)).await;
    // The CLI runs with the default configuration: 24 h.
    let mut cli = s.cfg.oauth.clone();
    cli.max_access_token_lifetime = Duration::from_secs(24 * 3600);
    let before = s.store.catalog.signing_keys().await.unwrap();
    let new = keys::rotate(&s.store, &s.master, &cli, Alg::ES256).await.unwrap();
    let es = before.iter().find(|r| r.alg == "ES256").unwrap();
    let old = s.store.catalog.signing_keys().await.unwrap().into_iter().find(|r| r.kid == es.kid).unwrap();
    let horizon = 48 * 3600 + s.cfg.oauth.clock_skew.as_secs() as i64;
    assert_eq!(old.publish_until, Some(new.activate_at + horizon), "the server's 48 h, not the CLI's 24 h");
}

#[tokio::test]
async fn changing_the_access_token_algorithm_pre_publishes_the_new_key() {
    let (s, id, secret) = restarted_with(|c| {
        c.oauth.keys.access_token_alg = Alg::EdDSA;
    })
    .await;
    let now = warden::model::unix_now();
    let records = s.store.catalog.signing_keys().await.unwrap();
    let ed = records.iter().find(|r| r.alg == "EdDSA").expect("an EdDSA key exists");
    let es = records.iter().find(|r| r.alg == "ES256").unwrap();
    assert!(ed.activate_at >= now + 299, "signs only after rotation_delay");
    assert!(ed.activate_at <= now + 300, "and not later");
    let horizon = (s.cfg.oauth.max_access_token_lifetime + s.cfg.oauth.clock_skew).as_secs() as i64;
    assert_eq!(es.publish_until, Some(ed.activate_at + horizon), "the old algorithm retires after the longest token lifetime");
    let jwks: serde_json::Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    assert!(jwks.to_string().contains(ed.kid.as_str()), "published at once");
    let token = s.token(&id, &secret, &[]).await;
    let header = crate::support::jwt_parts(&token).0;
    assert_eq!(header["alg"], "ES256", "the old key signs until the new one is due");
    assert_eq!(header["kid"], es.kid.as_str());
}

#[tokio::test]
async fn switching_access_tokens_to_the_id_token_algorithm_needs_no_pre_publication() {
    let (s, id, secret) = restarted_with(|c| {
        c.oauth.keys.access_token_alg = Alg::RS256;
    })
    .await;
    let records = s.store.catalog.signing_keys().await.unwrap();
    let rs: Vec<_> = records.iter().filter(|r| r.alg == "RS256").collect();
    assert_eq!(rs.len(), 1, "the ID-token key, already published, is reused");
    let token = s.token(&id, &secret, &[]).await;
    assert_eq!(crate::support::jwt_parts(&token).0["kid"], rs[0].kid.as_str(), "it signs at once");
    let es = records.iter().find(|r| r.alg == "ES256").unwrap();
    let horizon = (s.cfg.oauth.max_access_token_lifetime + s.cfg.oauth.clock_skew).as_secs() as i64;
    let until = es.publish_until.expect("the old access-token key retires");
    assert!((until - warden::model::unix_now() - horizon).abs() <= 5, "after the token horizon");
}

/// The kids of the stored keys of `alg`, oldest first.
async fn kids_of(store: &warden::store::Store, alg: Alg) -> Vec<String> {
    store.catalog.signing_keys().await.unwrap().into_iter().filter(|r| r.alg == alg.as_str()).map(|r| r.kid.0).collect()
}

#[tokio::test]
async fn switching_access_tokens_between_two_id_token_algorithms_retires_neither_and_adds_no_key() {
    let both = |c: &mut warden::config::Config, access: Alg| {
        c.oauth.keys.access_token_alg = access;
        c.oauth.keys.id_token_algs = vec![Alg::RS256, Alg::EdDSA];
    };
    let s = TestServer::start_with(|c| both(c, Alg::RS256)).await;
    let (id, secret) = s.cc_client().await;
    let before = s.store.catalog.signing_keys().await.unwrap();
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| both(c, Alg::EdDSA)).await;
    let after = s.store.catalog.signing_keys().await.unwrap();
    let kids = |rs: &[warden::model::SigningKeyRecord]| rs.iter().map(|r| (r.alg.clone(), r.kid.0.clone())).collect::<Vec<_>>();
    assert_eq!(kids(&after), kids(&before), "both algorithms already had a key");
    assert!(after.iter().all(|r| r.publish_until.is_none()), "ID tokens still use RS256: nothing retires");
    assert_eq!(crate::support::jwt_parts(&s.token(&id, &secret, &[]).await).0["alg"], "EdDSA", "signs at once");
}

/// A store from before the `access_token_alg` setting: the one other algorithm that signs
/// was the access-token algorithm, so the new one is pre-published.
#[tokio::test]
async fn a_store_from_before_the_algorithm_setting_still_pre_publishes_a_new_algorithm() {
    let s = TestServer::start_with(|c| c.oauth.keys.id_token_algs = vec![Alg::ES256]).await;
    let cfg = s.cfg.clone();
    let dir = s.stop().await;
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", cfg.data_dir.join("warden.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("DELETE FROM settings WHERE name = 'access_token_alg'").execute(&mut conn).await.unwrap();
    }
    let s = TestServer::start_in(dir, |c| {
        c.oauth.keys.id_token_algs = vec![Alg::ES256];
        c.oauth.keys.access_token_alg = Alg::EdDSA;
        c.oauth.keys.rotation_delay = Duration::from_secs(300);
    })
    .await;
    let now = warden::model::unix_now();
    let ed = s.store.catalog.signing_keys().await.unwrap().into_iter().find(|r| r.alg == "EdDSA").unwrap();
    assert!(ed.activate_at >= now + 299, "pre-published: {} at {now}", ed.activate_at);
}

/// The algorithm recorded as in use has no key left (all purged): there is nothing to wait
/// for, so the new algorithm's one key signs at once.
#[tokio::test]
async fn a_previous_algorithm_without_keys_does_not_delay_the_new_one() {
    let s = TestServer::start().await;
    let now = warden::model::unix_now();
    s.store.catalog.retire_signing_keys("ES256", now - 1).await.unwrap();
    s.store.catalog.delete_expired_keys(now).await.unwrap();
    assert!(kids_of(&s.store, Alg::ES256).await.is_empty());
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| {
        c.oauth.keys.access_token_alg = Alg::EdDSA;
        c.oauth.keys.rotation_delay = Duration::from_secs(300);
    })
    .await;
    let ed: Vec<_> = s.store.catalog.signing_keys().await.unwrap().into_iter().filter(|r| r.alg == "EdDSA").collect();
    assert_eq!(ed.len(), 1, "one key, not a pre-published one and a stopgap");
    assert!(ed[0].activate_at <= warden::model::unix_now());
    let (id, secret) = s.cc_client().await;
    assert_eq!(crate::support::jwt_parts(&s.token(&id, &secret, &[]).await).0["kid"], ed[0].kid.as_str());
}

/// Every ID-token key in line fails to open (sealed under another master key): the server
/// starts with a fresh one rather than signing no ID tokens.
#[tokio::test]
async fn an_id_token_algorithm_whose_keys_do_not_open_gets_a_fresh_key_at_start() {
    let s = TestServer::start().await;
    let stranger = warden::secrets::MasterKey::from_bytes(&[7; 32]);
    let now = warden::model::unix_now();
    let bad = warden::jose::generate_key_record(Alg::RS256, &stranger, now, now).unwrap();
    s.store.catalog.rotate_signing_key(&bad, Some(now - 1)).await.unwrap();
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |_| {}).await;
    let jwks: serde_json::Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let rs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().filter(|k| k["alg"] == "RS256").map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(rs.len(), 1, "{jwks}");
    assert_ne!(rs[0], bad.kid.as_str(), "the one that does not open is not published");
    assert!(kids_of(&s.store, Alg::RS256).await.contains(&rs[0].to_owned()));
}

/// Access tokens move to an algorithm that ID tokens now use too: its key cannot wait for
/// `rotation_delay`, since ID tokens have no previous algorithm to fall back on.
#[tokio::test]
async fn a_new_access_token_algorithm_that_id_tokens_use_too_signs_at_once() {
    let (s, id, secret) = restarted_with(|c| {
        c.oauth.keys.access_token_alg = Alg::EdDSA;
        c.oauth.keys.id_token_algs = vec![Alg::EdDSA];
    })
    .await;
    let now = warden::model::unix_now();
    let records = s.store.catalog.signing_keys().await.unwrap();
    let ed: Vec<_> = records.iter().filter(|r| r.alg == "EdDSA").collect();
    assert_eq!(ed.len(), 1, "one key");
    assert!(ed[0].activate_at <= now, "signs at once");
    assert_eq!(crate::support::jwt_parts(&s.token(&id, &secret, &[]).await).0["kid"], ed[0].kid.as_str());
    let horizon = (s.cfg.oauth.max_access_token_lifetime + s.cfg.oauth.clock_skew).as_secs() as i64;
    let es = records.iter().find(|r| r.alg == "ES256").unwrap();
    let until = es.publish_until.expect("the old access-token algorithm retires");
    assert!((until - now - horizon).abs() <= 5, "after the token horizon");
}

/// The same when ID tokens start using the new algorithm while its key still waits out
/// `rotation_delay` (a second restart within the delay).
#[tokio::test]
async fn an_id_token_algorithm_whose_key_waits_gets_one_that_signs_at_once() {
    let (s, _, _) = restarted_with(|c| c.oauth.keys.access_token_alg = Alg::EdDSA).await;
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| {
        c.oauth.keys.rotation_delay = Duration::from_secs(300);
        c.oauth.keys.access_token_alg = Alg::EdDSA;
        c.oauth.keys.id_token_algs = vec![Alg::EdDSA];
    })
    .await;
    let now = warden::model::unix_now();
    let ed: Vec<_> = s.store.catalog.signing_keys().await.unwrap().into_iter().filter(|r| r.alg == "EdDSA").collect();
    assert_eq!(ed.len(), 2, "the waiting key and one that signs now");
    assert!(ed.iter().any(|r| r.activate_at <= now), "{ed:?}");
}

/// `(kid, publish_until, state)` of each stored key of `alg`, as `warden keys list` shows it.
async fn states_of(store: &warden::store::Store, alg: Alg) -> Vec<(String, Option<i64>, &'static str)> {
    let records = store.catalog.signing_keys().await.unwrap();
    keys::describe(&records, warden::model::unix_now())
        .into_iter()
        .filter(|k| k.alg == alg.as_str())
        .map(|k| (k.kid.0, k.publish_until, k.state))
        .collect()
}

#[tokio::test]
async fn an_id_token_algorithm_taken_out_of_use_retires_after_the_token_horizon() {
    let algs = |c: &mut warden::config::Config, id: Vec<Alg>| {
        c.oauth.keys.rotation_delay = Duration::from_secs(300);
        c.oauth.keys.id_token_algs = id;
    };
    let s = TestServer::start_with(|c| algs(c, vec![Alg::RS256, Alg::EdDSA])).await;
    let ed = kids_of(&s.store, Alg::EdDSA).await;
    assert_eq!(ed.len(), 1);
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| algs(c, vec![Alg::RS256])).await;
    let horizon = (s.cfg.oauth.max_access_token_lifetime + s.cfg.oauth.clock_skew).as_secs() as i64;
    let now = warden::model::unix_now();
    let retiring = states_of(&s.store, Alg::EdDSA).await;
    assert_eq!(retiring.len(), 1, "no new key for an algorithm out of use");
    let until = retiring[0].1.expect("the key of the algorithm taken out of use retires");
    assert!((until - now - horizon).abs() <= 5, "after the token horizon: {until} vs {now} + {horizon}");
    let jwks = s.http.get(s.url("/jwks")).send().await.unwrap().text().await.unwrap();
    assert!(jwks.contains(&ed[0]), "still published for the tokens it signed");
    assert!(states_of(&s.store, Alg::RS256).await.iter().all(|k| k.1.is_none()), "the algorithm still in use keeps its key");
    assert!(states_of(&s.store, Alg::ES256).await.iter().all(|k| k.1.is_none()), "so does the access-token one");

    // Put back within the horizon: a key that stays, pre-published while the retiring one signs.
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| algs(c, vec![Alg::RS256, Alg::EdDSA])).await;
    let now = warden::model::unix_now();
    let back = states_of(&s.store, Alg::EdDSA).await;
    assert_eq!(back.len(), 2, "{back:?}");
    assert_eq!(back.iter().find(|k| k.0 == ed[0]).map(|k| (k.1, k.2)), Some((Some(until), "active")), "the retiring key signs meanwhile, and its end is not moved");
    let new = back.iter().find(|k| k.0 != ed[0]).unwrap();
    assert_eq!((new.1, new.2), (None, "next"), "{back:?}");
    let records = s.store.catalog.signing_keys().await.unwrap();
    let activate_at = records.iter().find(|r| r.kid.as_str() == new.0).unwrap().activate_at;
    assert!((activate_at - now - 300).abs() <= 5, "signs after rotation_delay: {activate_at} vs {now}");
}

#[tokio::test]
async fn switching_the_access_token_algorithm_back_within_the_horizon_keeps_a_key_that_signs() {
    let (s, id, secret) = restarted_with(|c| c.oauth.keys.access_token_alg = Alg::EdDSA).await;
    let es = kids_of(&s.store, Alg::ES256).await;
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| c.oauth.keys.rotation_delay = Duration::from_secs(300)).await;
    let now = warden::model::unix_now();
    let states = states_of(&s.store, Alg::ES256).await;
    assert_eq!(states.len(), 2, "a new ES256 key beside the retiring one: {states:?}");
    let kept = states.iter().find(|k| !es.contains(&k.0)).unwrap();
    assert_eq!((kept.1, kept.2), (None, "next"), "it stays once the retiring key is gone, and is pre-published");
    let records = s.store.catalog.signing_keys().await.unwrap();
    let activate_at = records.iter().find(|r| r.kid.as_str() == kept.0).unwrap().activate_at;
    assert!((activate_at - now - 300).abs() <= 5, "signs after rotation_delay");
    let header = crate::support::jwt_parts(&s.token(&id, &secret, &[]).await).0;
    assert_eq!(header["kid"], es[0].as_str(), "the retiring ES256 key signs until then");
    assert!(states_of(&s.store, Alg::EdDSA).await.iter().all(|k| k.1.is_some()), "the EdDSA key, never used, retires");
}

#[tokio::test]
async fn rotated_keys_stay_published_for_the_id_token_lifetime_when_it_is_the_longer() {
    let s = TestServer::start_with(|c| {
        c.oauth.max_access_token_lifetime = Duration::from_secs(600);
        c.oauth.access_token_lifetime = Duration::from_secs(600);
        c.oauth.id_token_lifetime = Duration::from_secs(7200);
    })
    .await;
    let rs = kids_of(&s.store, Alg::RS256).await;
    let new = keys::rotate(&s.store, &s.master, &s.cfg.oauth, Alg::RS256).await.unwrap();
    let old = s.store.catalog.signing_keys().await.unwrap().into_iter().find(|r| r.kid.as_str() == rs[0]).unwrap();
    assert_eq!(old.publish_until, Some(new.activate_at + 7200 + s.cfg.oauth.clock_skew.as_secs() as i64), "an ID token it signed is valid for 2 h");
}

/// An algorithm put back when its retiring key goes before a pre-published one could take
/// over (a token horizon shorter than `keys.rotation_delay`): the new key signs at once, so the
/// algorithm never goes without a signer.
#[tokio::test]
async fn an_algorithm_put_back_whose_retiring_key_goes_first_gets_a_key_that_signs_at_once() {
    let algs = |c: &mut warden::config::Config, id: Vec<Alg>| {
        c.oauth.keys.rotation_delay = Duration::from_secs(300);
        c.oauth.access_token_lifetime = Duration::from_secs(60);
        c.oauth.max_access_token_lifetime = Duration::from_secs(60);
        c.oauth.id_token_lifetime = Duration::from_secs(60);
        c.oauth.clock_skew = Duration::ZERO;
        c.oauth.keys.id_token_algs = id;
    };
    let s = TestServer::start_with(|c| algs(c, vec![Alg::RS256, Alg::EdDSA])).await;
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| algs(c, vec![Alg::RS256])).await;
    let until = states_of(&s.store, Alg::EdDSA).await[0].1.expect("retiring");
    assert!(until <= warden::model::unix_now() + 65, "after the 60 s horizon");
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| algs(c, vec![Alg::RS256, Alg::EdDSA])).await;
    let now = warden::model::unix_now();
    let records = s.store.catalog.signing_keys().await.unwrap();
    let kept: Vec<_> = records.iter().filter(|r| r.alg == "EdDSA" && r.publish_until.is_none()).collect();
    assert_eq!(kept.len(), 1, "{records:?}");
    assert!(kept[0].activate_at <= now, "signs at once: {} vs {now}", kept[0].activate_at);
}

/// A restart with the same settings retires nothing, and says nothing about retiring; one
/// that takes an algorithm out of use says which.
#[tokio::test]
async fn a_restart_without_a_change_retires_nothing_and_logs_no_retirement() {
    let algs = |c: &mut warden::config::Config, id: Vec<Alg>| c.oauth.keys.id_token_algs = id;
    let s = TestServer::start_with(|c| algs(c, vec![Alg::RS256, Alg::EdDSA])).await;
    let before = s.store.catalog.signing_keys().await.unwrap();
    let restart_logged = async |s: TestServer, id: Vec<Alg>| {
        let dir = s.stop().await;
        let logs = crate::support::LogCapture::default();
        let guard = tracing::subscriber::set_default(logs.subscriber(tracing::Level::INFO));
        let s = TestServer::start_in(dir, |c| algs(c, id)).await;
        drop(guard);
        (s, logs.text())
    };
    let (s, text) = restart_logged(s, vec![Alg::RS256, Alg::EdDSA]).await;
    assert!(!text.contains("retire"), "{text}");
    let after = s.store.catalog.signing_keys().await.unwrap();
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|r| r.publish_until.is_none()), "{after:?}");

    let (_s, text) = restart_logged(s, vec![Alg::RS256]).await;
    let retired: Vec<&str> = text.lines().filter(|l| l.contains("retire")).collect();
    assert_eq!(retired.len(), 1, "{text}");
    assert!(retired[0].contains("\"alg\":\"EdDSA\""), "{text}");
}
