//! Issue #7 item 9: the gateway's configuration reloads without a restart — on a change of
//! the file, and through the entry point `SIGHUP` calls (`ReloadHandle::reload`); once with
//! the built binary and a real `SIGHUP`. Requests in flight finish on the old routes, open
//! connections stay open, an invalid file changes nothing, and no background task or JWKS
//! fetch piles up across reloads.

use super::upstream::{Mode, Upstream};
use axum::Router;
use axum::extract::State;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use warden::app::reload::{ConfigSource, Outcome, ReloadHandle};
use warden::app::{self, Core, Listeners};
use warden::config::{Config, Overrides, Role};

/// A gateway-only server started from a configuration file, as `warden serve --config`.
struct FromFile {
    _dir: tempfile::TempDir,
    file: PathBuf,
    addr: SocketAddr,
    handle: ReloadHandle,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), app::AppError>>>,
}

impl Drop for FromFile {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The file: the gateway role on port 0, `watch` as `config_watch_interval`, then `routes`
/// (TOML for `[gateway]` keys and `[[gateway.routes]]` tables).
fn config_text(dir: &std::path::Path, watch: &str, gateway: &str) -> String {
    format!(
        "version = 1\nroles = [\"gateway\"]\ndata_dir = {:?}\n[log]\nlevel = \"warn\"\n[gateway]\nlisten = \"127.0.0.1:0\"\nconfig_watch_interval = \"{watch}\"\n{gateway}\n",
        dir.display().to_string()
    )
}

fn anonymous_route(id: &str, path: &str, upstream: &str) -> String {
    format!("[[gateway.routes]]\nid = \"{id}\"\npath = \"{path}\"\nmethods = [\"GET\"]\nupstream = \"{upstream}\"\nauth = [\"anonymous\"]\n")
}

impl FromFile {
    async fn start(watch: &str, gateway: &str) -> FromFile {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("warden.toml");
        std::fs::write(&file, config_text(dir.path(), watch, gateway)).unwrap();
        let overrides = Overrides::default();
        let cfg = Config::load(Some(&file), [], &overrides).expect("the file is valid");
        let core = Core::open(&cfg, None).await.unwrap();
        let listeners = Listeners::bind(&cfg).await.unwrap();
        let addr = listeners.addrs().into_iter().find(|(r, _)| *r == Role::Gateway).unwrap().1;
        let handle = ReloadHandle::default();
        let source = ConfigSource {
            file: file.clone(),
            env: vec![],
            overrides,
            loaded: cfg.clone(),
            poll: cfg.gateway.config_watch_interval,
            handle: handle.clone(),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app::run_with(cfg, core, listeners, shutdown.clone(), Some(source)));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let s = FromFile { _dir: dir, file, addr, handle, http, shutdown, task: Some(task) };
        until("the gateway answers", || async { s.http.get(s.url("/healthz")).send().await.is_ok_and(|r| r.status() == 200) }).await;
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Writes the file anew with this `[gateway]` content.
    fn rewrite(&self, watch: &str, gateway: &str) {
        let dir = self.file.parent().unwrap();
        std::fs::write(&self.file, config_text(dir, watch, gateway)).unwrap();
    }

    async fn status(&self, path: &str) -> u16 {
        self.http.get(self.url(path)).send().await.unwrap().status().as_u16()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(20), task).await.expect("shutdown in time").unwrap().unwrap();
    }
}

/// Polls `cond` every 25 ms for up to 10 s.
async fn until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The watched file changes: a new path, a new upstream and a route that now needs a token
/// are followed within seconds, without a signal; the route that went away answers 404.
#[tokio::test]
async fn a_changed_file_is_followed_within_seconds() {
    let (old_up, new_up) = (Upstream::start().await, Upstream::start().await);
    let s = FromFile::start("100ms", &anonymous_route("a", "/old/", &old_up.url())).await;
    assert_eq!(s.status("/old/x").await, 200);
    assert_eq!(old_up.one().path, "/old/x");

    let locked = anonymous_route("locked", "/locked/", &new_up.url()).replace("[\"anonymous\"]", "[\"warden\"]");
    s.rewrite("100ms", &format!("{}{locked}", anonymous_route("a", "/new/", &new_up.url())));
    until("the new route serves", || async { s.status("/new/x").await == 200 }).await;
    assert_eq!(new_up.seen().last().unwrap().path, "/new/x", "the new upstream got it");
    super::assert_problem(s.http.get(s.url("/old/x")).send().await.unwrap(), 404).await;
    let resp = s.http.get(s.url("/locked/x")).send().await.unwrap();
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    super::assert_problem(resp, 401).await;
    assert!(new_up.seen().iter().all(|r| r.path != "/locked/x"), "the refused request never reached the upstream");
    assert_eq!(old_up.seen().len(), 1, "the old upstream gets nothing more");
    assert_eq!(s.handle.stats().applied, 1);
    s.stop().await;
}

/// `SIGHUP`'s entry point applies the file at once, also when watching is off (the file
/// alone changes nothing); an unchanged file is no reload.
#[tokio::test]
async fn the_signal_entry_point_reloads_when_the_watcher_is_off() {
    let up = Upstream::start().await;
    let s = FromFile::start("0s", &anonymous_route("a", "/old/", &up.url())).await;
    assert_eq!(s.handle.reload().await, Outcome::Unchanged);
    s.rewrite("0s", &anonymous_route("a", "/new/", &up.url()));
    // Watching is off: nothing but the entry point reloads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.status("/old/x").await, 200, "not reloaded without the signal");
    assert_eq!(s.handle.reload().await, Outcome::Applied { routes: 1 });
    assert_eq!(s.status("/new/x").await, 200);
    assert_eq!(s.status("/old/x").await, 404);
    assert_eq!(s.handle.stats().applied, 1);
    s.stop().await;
}

/// An invalid file — bad values, an unknown key, broken TOML — is refused with every error
/// under its key; the running routes keep serving; the rejection is counted. A later valid
/// file applies.
#[tokio::test]
async fn an_invalid_file_is_refused_and_the_running_routes_stay() {
    let up = Upstream::start().await;
    let s = FromFile::start("0s", &anonymous_route("a", "/old/", &up.url())).await;
    let bad = format!("{}nonsense = 1\n", anonymous_route("a", "/new/", "ftp://nowhere").replace("[\"anonymous\"]", "[]"));
    s.rewrite("0s", &bad);
    let Outcome::Rejected(errors) = s.handle.reload().await else { panic!("an invalid file must be rejected") };
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for key in ["gateway.routes[0].upstream", "gateway.routes[0].auth", "gateway.routes[0].nonsense"] {
        assert!(keys.contains(&key), "{key} is named in {errors:?}");
    }
    assert_eq!(s.status("/old/x").await, 200, "the running routes stay");
    assert_eq!(s.status("/new/x").await, 404);

    std::fs::write(&s.file, "version = 1\n[gateway\n").unwrap();
    assert!(matches!(s.handle.reload().await, Outcome::Rejected(e) if e[0].message.contains("TOML")));
    assert_eq!(s.status("/old/x").await, 200);
    assert_eq!(s.handle.stats().rejected, 2);
    assert_eq!(s.handle.stats().applied, 0);
    assert!(up.seen().iter().all(|r| r.path == "/old/x"));

    s.rewrite("0s", &anonymous_route("a", "/new/", &up.url()));
    assert_eq!(s.handle.reload().await, Outcome::Applied { routes: 1 });
    assert_eq!(s.status("/new/x").await, 200);
    s.stop().await;
}

/// The watcher sees an invalid file too: it is rejected (counted), the routes stay.
#[tokio::test]
async fn the_watcher_rejects_an_invalid_file_and_keeps_serving() {
    let up = Upstream::start().await;
    let s = FromFile::start("100ms", &anonymous_route("a", "/old/", &up.url())).await;
    s.rewrite("100ms", &anonymous_route("a", "no-slash", &up.url()));
    until("the rejection is counted", || async { s.handle.stats().rejected >= 1 }).await;
    assert_eq!(s.status("/old/x").await, 200);
    assert_eq!(s.handle.stats().applied, 0);
    s.stop().await;
}

/// Reads one response (head + `content-length` body) off a kept-alive connection.
async fn read_response(c: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(c.read(&mut byte).await.unwrap(), 1, "the connection stays open");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).await.unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), String::from_utf8_lossy(&body).into_owned())
}

/// A request in flight when the configuration changes finishes on the old route: one whose
/// upstream is slow to answer, and one whose response body is still streaming. A kept-alive
/// connection is not dropped: its next request follows the new routes.
#[tokio::test]
async fn requests_in_flight_finish_across_a_reload_and_connections_stay_open() {
    let (slow, streaming, fresh) = (Upstream::start().await, Upstream::start().await, Upstream::start().await);
    slow.set_mode(Mode::Slow(Duration::from_millis(1500)));
    let routes = format!("{}{}", anonymous_route("slow", "/slow/", &slow.url()), anonymous_route("s", "/s/", &streaming.url()));
    let s = FromFile::start("0s", &routes).await;

    let mut kept = TcpStream::connect(s.addr).await.unwrap();
    kept.write_all(b"GET /s/x HTTP/1.1\r\nhost: api\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut kept).await.0, 200);

    let slow_req = tokio::spawn({
        let (http, url) = (s.http.clone(), s.url("/slow/a"));
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    });
    let mut stream_resp = s.http.get(s.url("/s/stream")).send().await.unwrap();
    assert_eq!(stream_resp.status(), 200);
    assert_eq!(&stream_resp.chunk().await.unwrap().unwrap()[..], b"first;");
    until("the slow request reached its upstream", || async { !slow.seen().is_empty() }).await;

    s.rewrite("0s", &anonymous_route("fresh", "/fresh/", &fresh.url()));
    assert_eq!(s.handle.reload().await, Outcome::Applied { routes: 1 });
    assert_eq!(s.status("/slow/b").await, 404, "new requests see the new routes");

    streaming.release();
    assert_eq!(&stream_resp.chunk().await.unwrap().unwrap()[..], b"second", "the streaming response completes");
    assert_eq!(slow_req.await.unwrap(), 200, "the slow request completes on the old route");

    kept.write_all(b"GET /fresh/y HTTP/1.1\r\nhost: api\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut kept).await.0, 200, "the open connection serves the new routes");
    assert_eq!(fresh.one().path, "/fresh/y");
    s.stop().await;
}

/// A JWK Set server that counts its fetches.
async fn jwks_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let master = warden::secrets::MasterKey::from_bytes(&[7; 32]);
    let now = warden::model::unix_now();
    let rec = warden::jose::generate_key_record(warden::jose::Alg::ES256, &master, now, now).unwrap();
    let set = json!({"keys": [rec.public_jwk]});
    let count = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/jwks",
            axum::routing::get(|State((set, count)): State<(serde_json::Value, Arc<AtomicUsize>)>| async move {
                count.fetch_add(1, Ordering::SeqCst);
                axum::Json(set)
            }),
        )
        .with_state((set, count.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, count)
}

/// Reloads leave nothing behind: the old gateway's loops (revocation polling, JWKS refresh)
/// stop, so the runtime's task count comes back to where it was; an unchanged issuer's key
/// set is taken over, not fetched again; a changed issuer is fetched once.
#[tokio::test]
async fn reloads_leak_no_tasks_and_refetch_no_unchanged_key_set() {
    let up = Upstream::start().await;
    let (jwks, fetches) = jwks_server().await;
    let issuer = |url: &str| {
        format!("[[gateway.issuers]]\nname = \"partner\"\nissuer = \"https://idp.example\"\njwks_url = \"{url}\"\naudience = \"https://api.example\"\nrefresh_interval = \"1h\"\n")
    };
    let gw = |path: &str, jwks_url: &str| {
        format!("{}{}", issuer(jwks_url), anonymous_route("a", path, &up.url()).replace("[\"anonymous\"]", "[\"issuer:partner\", \"anonymous\"]"))
    };
    let url = format!("http://{jwks}/jwks");
    let s = FromFile::start("0s", &gw("/p0/", &url)).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched once at start");
    // Counted once a proxied request has opened the upstream connection (its tasks, on both
    // sides, are replaced by the new gateway's on each reload). Each gateway runs two loops
    // (revocations, the issuer's JWKS): six leaked gateways would add twelve tasks.
    assert_eq!(s.status("/p0/x").await, 200);
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();

    for i in 1..=6 {
        s.rewrite("0s", &gw(&format!("/p{i}/"), &url));
        assert_eq!(s.handle.reload().await, Outcome::Applied { routes: 1 });
        assert_eq!(s.status(&format!("/p{i}/x")).await, 200);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "an unchanged issuer's keys are not fetched again");
    until("the old gateways' tasks are gone", || async { metrics.num_alive_tasks() <= before }).await;

    // A changed issuer (another jwks_url: the same server under another name) is new.
    s.rewrite("0s", &gw("/p7/", &format!("http://localhost:{}/jwks", jwks.port())));
    assert_eq!(s.handle.reload().await, Outcome::Applied { routes: 1 });
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    s.stop().await;
}

/// The binary itself: `warden serve --config FILE` with watching off, a real `SIGHUP`, the new
/// route served; the process keeps running (SIGHUP's default would end it).
#[cfg(unix)]
#[tokio::test]
async fn the_binary_reloads_on_sighup() {
    use std::io::BufRead;
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    std::fs::write(&file, config_text(dir.path(), "0s", &anonymous_route("a", "/old/", &up.url()))).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--config", file.to_str().unwrap()])
        .env_remove("WARDEN_CONFIG")
        .env_remove("WARDEN_MASTER_KEY")
        .env_remove("WARDEN_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().unwrap();
    let mut child = Kill(child);
    // "  gateway  listening on http://127.0.0.1:PORT — 1 route(s)"
    let addr = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stderr).lines();
        let addr = lines.by_ref().map_while(Result::ok).find_map(|l| {
            let rest = l.split("listening on http://").nth(1)?;
            rest.split_whitespace().next().map(str::to_owned)
        });
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        addr
    })
    .await
    .unwrap()
    .expect("the binary names its gateway address");
    let http = reqwest::Client::new();
    let status = |path: &str| {
        let (http, url) = (http.clone(), format!("http://{addr}{path}"));
        async move { http.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    until("the binary serves", || async { status("/old/x").await == 200 }).await;

    std::fs::write(&file, config_text(dir.path(), "0s", &anonymous_route("a", "/new/", &up.url()))).unwrap();
    let pid = child.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    until("the new route serves after SIGHUP", || async { status("/new/x").await == 200 }).await;
    assert_eq!(status("/old/x").await, 404);
    assert!(child.0.try_wait().unwrap().is_none(), "SIGHUP did not end the process");
}

/// The upstream connection pool outlives a reload: an upstream still reached the same way
/// gets the next request on the connection it already had.
#[tokio::test]
async fn an_unchanged_upstream_keeps_its_connections_across_a_reload() {
    let up = Upstream::start().await;
    let s = FromFile::start("0s", &anonymous_route("a", "/old/", &up.url())).await;
    assert_eq!(s.status("/old/x").await, 200);
    s.rewrite("0s", &anonymous_route("a", "/new/", &up.url()));
    assert_eq!(s.handle.reload().await, Outcome::Applied { routes: 1 });
    assert_eq!(s.status("/new/x").await, 200);
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].peer, seen[1].peer, "the same gateway-side connection");
    s.stop().await;
}

/// Settings only a restart applies — here the gateway's listen address, `[log]` and
/// `[http]` — are reported (and logged), not applied: the listener stays where it is, and
/// the routes changed in the same file are applied.
#[tokio::test]
async fn settings_that_need_a_restart_are_reported_not_applied() {
    let up = Upstream::start().await;
    let s = FromFile::start("0s", &anonymous_route("a", "/old/", &up.url())).await;
    let dir = s.file.parent().unwrap().to_owned();
    let text = config_text(&dir, "0s", &anonymous_route("a", "/new/", &up.url()))
        .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"")
        .replace("level = \"warn\"", "level = \"debug\"\n[http]\nmax_connections = 7");
    std::fs::write(&s.file, text).unwrap();
    assert_eq!(s.handle.reload().await, Outcome::Applied { routes: 1 });
    assert_eq!(s.handle.pending_restart(), ["http", "gateway.listen", "log"]);
    assert_eq!(s.status("/new/x").await, 200, "still on the address it started on, with the new routes");
    s.stop().await;
}
