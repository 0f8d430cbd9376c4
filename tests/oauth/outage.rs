//! A database outage degrades, never hangs (issue #5 item 8).
//!
//! PostgreSQL goes away behind a fault-injecting TCP proxy started by the test (the shared
//! instance is never touched): first black-holed (connections accepted, bytes silently dropped,
//! no reset — the case that used to hang every request for the pool's 30 s), then refusing and
//! cutting connections. SQLite is made unwritable by another connection holding its write lock.
//! Each test shows, under concurrent load: every request answers within `BOUND`; errors are 503
//! with `Retry-After` and RFC 6749 JSON, no internals; cached clients keep getting tokens during
//! the grace (and no longer after it); writes fail closed; health reports the store degraded;
//! revocations made before the outage hold after it; and the server recovers without a restart.

use crate::support::{PgSchema, TestServer, jwt_parts};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use warden::config::Role;
use warden::oauth::clients;

/// The longest any request may take while the store is down (`database.timeout` is 1 s).
const BOUND: Duration = Duration::from_millis(2500);

// ---------------------------------------------------------------------------------------------
// A fault-injecting TCP proxy on 127.0.0.1.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Forward both ways.
    Pass,
    /// Accept, never answer: bytes in either direction are dropped, nothing is closed. A
    /// connection that lived through a black hole stays dead (its stream lost bytes), as after
    /// a firewall or NAT dropped its state.
    BlackHole,
    /// Close every open connection and every new one at once.
    Refuse,
}

struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

impl FaultProxy {
    async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (fault, rx) = watch::channel(Fault::Pass);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                conns.spawn(relay(client, upstream, rx.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        FaultProxy { addr, fault, task }
    }

    fn set(&self, f: Fault) {
        self.fault.send_replace(f);
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let mut dead = match *fault.borrow_and_update() {
        Fault::Refuse => return,
        Fault::BlackHole => true,
        Fault::Pass => false,
    };
    let mut server = if dead {
        None
    } else {
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream)).await {
            Ok(Ok(s)) => Some(s),
            _ => return,
        }
    };
    let (mut a, mut b) = ([0u8; 8192], [0u8; 8192]);
    loop {
        let from_server = async {
            match server.as_mut() {
                Some(s) => s.read(&mut b).await,
                None => std::future::pending::<std::io::Result<usize>>().await,
            }
        };
        tokio::select! {
            n = client.read(&mut a) => {
                let Ok(n @ 1..) = n else { return };
                if !dead && let Some(s) = server.as_mut() && s.write_all(&a[..n]).await.is_err() {
                    return;
                }
            }
            n = from_server => {
                let Ok(n @ 1..) = n else { return };
                if !dead && client.write_all(&b[..n]).await.is_err() {
                    return;
                }
            }
            changed = fault.changed() => {
                if changed.is_err() {
                    return;
                }
                match *fault.borrow_and_update() {
                    Fault::Refuse => return,
                    Fault::BlackHole => dead = true,
                    Fault::Pass => {}
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cleanup and load helpers.

/// One request's outcome.
#[derive(Debug)]
struct Outcome {
    what: &'static str,
    status: u16,
    elapsed: Duration,
    at: Instant,
    retry_after: Option<String>,
    content_type: String,
    body: Value,
}

/// What a request of the load is.
#[derive(Clone)]
enum Call {
    /// POST a form to a provider path, with HTTP Basic credentials.
    Form { what: &'static str, path: &'static str, basic: (String, String), form: Vec<(&'static str, String)> },
    /// POST JSON to a provider path.
    Json { what: &'static str, path: &'static str, body: Value },
    /// GET a URL.
    Get { what: &'static str, url: String },
}

/// A client whose own timeout is far above `BOUND`, so a hang shows as a slow answer (or an
/// error) instead of being cut to look fast.
fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(40)).build().unwrap()
}

async fn call(http: &reqwest::Client, base: &str, c: &Call) -> Outcome {
    let start = Instant::now();
    let (what, req) = match c {
        Call::Form { what, path, basic, form } => {
            (*what, http.post(format!("{base}{path}")).basic_auth(&basic.0, Some(&basic.1)).form(form))
        }
        Call::Json { what, path, body } => (*what, http.post(format!("{base}{path}")).json(body)),
        Call::Get { what, url } => (*what, http.get(url)),
    };
    let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: no answer after {:?}: {e}", start.elapsed()));
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = resp.text().await.unwrap_or_default();
    let elapsed = start.elapsed();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Outcome { what, status, elapsed, at: Instant::now(), retry_after, content_type, body }
}

/// `workers` tasks cycling through `calls` for `duration` (at most 400 requests each).
async fn load(base: &str, calls: &[Call], workers: usize, duration: Duration) -> Vec<Outcome> {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (base, calls) = (base.to_owned(), calls.to_vec());
            tokio::spawn(async move {
                let http = http();
                let mut out = Vec::new();
                for i in 0..400 {
                    if Instant::now() >= deadline {
                        break;
                    }
                    out.push(call(&http, &base, &calls[(w + i) % calls.len()]).await);
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// A 503 with `Retry-After`, `temporarily_unavailable` and nothing internal in the body.
fn assert_unavailable(o: &Outcome) {
    assert_eq!(o.status, 503, "{o:?}");
    assert!(o.retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)), "Retry-After: {o:?}");
    assert!(o.content_type.starts_with("application/json"), "{o:?}");
    assert_eq!(o.body["error"], "temporarily_unavailable", "{o:?}");
    assert_no_internals(o);
}

fn assert_no_internals(o: &Outcome) {
    let text = o.body.to_string();
    for leak in ["SELECT", "INSERT", "sqlx", "sqlite", "SQLITE", "postgres", "database is locked", "timed out", "/tmp", ".rs:", "127.0.0.1"] {
        assert!(!text.contains(leak), "internals leak in {text}");
    }
}

fn assert_bounded(outcomes: &[Outcome]) {
    for o in outcomes {
        assert!(o.elapsed <= BOUND, "{} took {:?} while the store was down (bound {BOUND:?})", o.what, o.elapsed);
    }
}

/// Prints count and worst latency per kind of request (shows in `--nocapture` runs).
fn report(label: &str, outcomes: &[Outcome]) {
    let mut kinds: Vec<&str> = outcomes.iter().map(|o| o.what).collect();
    kinds.sort();
    kinds.dedup();
    for k in kinds {
        let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.what == k).collect();
        let max = of.iter().map(|o| o.elapsed).max().unwrap_or_default();
        let mut statuses: Vec<u16> = of.iter().map(|o| o.status).collect();
        statuses.sort();
        statuses.dedup();
        eprintln!("[{label}] {k}: {} requests, statuses {statuses:?}, slowest {max:?}", of.len());
    }
}

fn cc_form() -> Vec<(&'static str, String)> {
    vec![("grant_type", "client_credentials".to_owned())]
}

fn token_call(what: &'static str, id: &str, secret: &str) -> Call {
    Call::Form { what, path: "/token", basic: (id.to_owned(), secret.to_owned()), form: cc_form() }
}

/// Polls `check` every 100 ms for at most `within`; returns how long it took.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {within:?}");
}

/// The three listeners' `/healthz` bodies and statuses.
async fn health(s: &TestServer) -> Vec<(u16, Value)> {
    let http = http();
    let mut out = Vec::new();
    for role in [Role::Provider, Role::Gateway, Role::Admin] {
        let start = Instant::now();
        let resp = http.get(format!("http://{}/healthz", s.addr(role))).send().await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(1), "health answers without waiting for the store");
        let status = resp.status().as_u16();
        if status == 503 {
            assert!(resp.headers().contains_key("retry-after"));
        }
        out.push((status, resp.json().await.unwrap()));
    }
    out
}

async fn assert_healthy(s: &TestServer) {
    for (status, body) in health(s).await {
        assert_eq!((status, &body["status"], &body["store"]), (200, &json!("ok"), &json!("ok")), "{body}");
    }
}

async fn is_degraded(s: &TestServer) -> bool {
    health(s).await.iter().all(|(status, body)| *status == 503 && body["status"] == "degraded" && body["store"] == "unavailable")
}

/// Liveness never depends on the store.
async fn assert_alive(s: &TestServer) {
    for role in [Role::Provider, Role::Gateway, Role::Admin] {
        let resp = http().get(format!("http://{}/livez", s.addr(role))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

async fn introspect_active(s: &TestServer, id: &str, secret: &str, token: &str) -> bool {
    s.introspect(id, secret, token).await["active"] == true
}

fn token_of(o: &Outcome) -> String {
    o.body["access_token"].as_str().unwrap_or_else(|| panic!("no token in {o:?}")).to_owned()
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL.

/// A server on PostgreSQL through a proxy of its own, and the schema to drop afterwards
/// (fields drop in order: server, proxy, schema).
struct PgSetup {
    server: TestServer,
    proxy: FaultProxy,
    _schema: PgSchema,
}

async fn pg_server(guard: PgSchema, cache_ttl: Duration, grace: Duration) -> PgSetup {
    let schema = guard.schema.clone();
    let parsed = url::Url::parse(&guard.url).unwrap();
    let upstream = tokio::net::lookup_host((parsed.host_str().unwrap(), parsed.port().unwrap_or(5432)))
        .await
        .unwrap()
        .next()
        .unwrap();
    assert!(upstream.ip().is_loopback(), "fault tests only talk to 127.0.0.1");
    let proxy = FaultProxy::start(upstream).await;
    let mut proxied = parsed.clone();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.addr.port())).unwrap();
    let proxied = proxied.to_string();
    let server = TestServer::start_with(move |c| {
        c.database.url = proxied;
        c.database.schema = schema;
        c.oauth.client_cache_ttl = cache_ttl;
        c.oauth.store_outage_grace = grace;
        c.oauth.registration.mode = warden::oauth::RegistrationMode::Open;
        c.oauth.registration.per_address = 1_000_000;
    })
    .await;
    PgSetup { server, proxy, _schema: guard }
}

#[tokio::test]
async fn postgres_black_hole_under_load_fails_fast_serves_cached_clients_for_the_grace_and_recovers() {
    let Some(schema) = PgSchema::new("warden_outage").await else { return };
    let ttl = Duration::from_secs(3);
    let grace = Duration::from_secs(12);
    let pg = pg_server(schema, ttl, grace).await;
    let (s, proxy) = (&pg.server, &pg.proxy);
    let (a, a_secret) = s.cc_client().await;
    let (b, b_secret) = s.cc_client().await;
    // Changes made elsewhere (as by the CLI or another node: through the store, not this
    // node's cache) more than the TTL before the outage must hold during the grace:
    // D deleted and E deleted after being cached; R's secret rotated.
    let (d, d_secret) = s.cc_client().await;
    let (e, e_secret) = s.cc_client().await;
    let (r, r_old) = s.cc_client().await;
    for (id, secret) in [(&d, &d_secret), (&e, &e_secret), (&r, &r_old)] {
        s.token(id, secret, &[]).await;
    }
    let elsewhere = |id: &str| warden::model::ClientId(id.to_owned());
    clients::delete(&s.store, &elsewhere(&d)).await.unwrap();
    clients::delete(&s.store, &elsewhere(&e)).await.unwrap();
    let (_, r_new) = clients::rotate_secret(&s.store, &s.master, &elsewhere(&r)).await.unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    // This node reads D and R again (E it does not: its entry, stale, still says it exists).
    assert_eq!(s.post_form("/token", Some((&d, &d_secret)), &[("grant_type", "client_credentials")]).await.status(), 401);
    s.token(&r, &r_new, &[]).await;

    let revoked = s.token(&a, &a_secret, &[]).await;
    assert_eq!(s.post_form("/revoke", Some((&a, &a_secret)), &[("token", &revoked)]).await.status(), 200);
    let live = s.token(&a, &a_secret, &[]).await; // A is now in the cache, fresh.
    assert_healthy(s).await;

    proxy.set(Fault::BlackHole);
    let outage = Instant::now();
    // B was never looked up: the store has to answer, and cannot. This also makes the outage
    // visible to the node while A's entry is still fresh.
    let first = call(&http(), &s.base, &token_call("uncached token", &b, &b_secret)).await;
    assert_unavailable(&first);
    assert!(first.elapsed <= BOUND, "first request after the outage took {:?}", first.elapsed);
    let visible_by = Instant::now();

    let calls = [
        token_call("cached token", &a, &a_secret),
        token_call("uncached token", &b, &b_secret),
        Call::Form { what: "revoke", path: "/revoke", basic: (a.clone(), a_secret.clone()), form: vec![("token", live.clone())] },
        Call::Form { what: "introspect", path: "/introspect", basic: (a.clone(), a_secret.clone()), form: vec![("token", live.clone())] },
        Call::Json { what: "register", path: "/register", body: json!({"grant_types": ["client_credentials"], "scope": "openid"}) },
        Call::Get { what: "gateway healthz", url: format!("http://{}/healthz", s.addr(Role::Gateway)) },
    ];
    // Load past A's cache TTL, so tokens near the end come from the grace, not the fresh
    // cache: six workers on the mix above, two more on A's tokens alone.
    let (mixed, cached) = tokio::join!(
        load(&s.base, &calls, 6, Duration::from_secs(5)),
        load(&s.base, &calls[..1], 2, Duration::from_secs(5)),
    );
    let during: Vec<Outcome> = mixed.into_iter().chain(cached).collect();
    report("pg black hole", &during);
    assert_bounded(&during);
    let mut cached_past_ttl = 0;
    for o in &during {
        match o.what {
            "cached token" => {
                assert_eq!(o.status, 200, "a cached client keeps getting tokens during the grace: {o:?}");
                let t = token_of(o);
                assert_eq!(jwt_parts(&t).1["client_id"], a.as_str());
                if o.at.duration_since(outage) > ttl + Duration::from_millis(200) {
                    cached_past_ttl += 1;
                }
            }
            "gateway healthz" => {
                // Degraded as soon as the probe or a failed call saw the outage.
                if o.at.duration_since(visible_by) > Duration::from_millis(100) {
                    assert_eq!(o.status, 503, "{o:?}");
                    assert_eq!(o.body["status"], "degraded");
                }
            }
            _ => assert_unavailable(o),
        }
    }
    assert!(cached_past_ttl > 0, "some cached-client tokens were issued from the grace, past the TTL");

    // Still within the grace: what this node knew before the outage holds.
    let h = http();
    let d_during = call(&h, &s.base, &token_call("deleted client", &d, &d_secret)).await;
    assert_eq!((d_during.status, &d_during.body["error"]), (401, &json!("invalid_client")), "{d_during:?}");
    let e_during = call(&h, &s.base, &token_call("deleted, stale in cache", &e, &e_secret)).await;
    assert_unavailable(&e_during);
    let r_during = call(&h, &s.base, &token_call("rotated, old secret", &r, &r_old)).await;
    assert_eq!((r_during.status, &r_during.body["error"]), (401, &json!("invalid_client")), "{r_during:?}");
    let r_during = call(&h, &s.base, &token_call("rotated, new secret", &r, &r_new)).await;
    assert_eq!(r_during.status, 200, "{r_during:?}");
    assert!(Instant::now() < visible_by + grace, "the checks above ran within the grace");
    assert!(is_degraded(s).await, "health reports the store degraded");
    assert_alive(s).await;

    // The grace ends `grace` after the outage became visible (at the latest `visible_by`).
    tokio::time::sleep((visible_by + grace + Duration::from_millis(500)).saturating_duration_since(Instant::now())).await;
    let after_grace = call(&http(), &s.base, &token_call("cached token after the grace", &a, &a_secret)).await;
    assert_unavailable(&after_grace);
    assert!(after_grace.elapsed <= BOUND);
    eprintln!("[pg black hole] after the grace: {} in {:?}", after_grace.status, after_grace.elapsed);

    // The database answers again; the connections that lived through the black hole stay
    // dead, so the pool must drop them by itself.
    proxy.set(Fault::Pass);
    let healed = Instant::now();
    let http = http();
    let recovered = eventually("a token for a client not cached", Duration::from_secs(20), || {
        let c = token_call("uncached token", &b, &b_secret);
        let (http, base) = (http.clone(), s.base.clone());
        async move { call(&http, &base, &c).await.status == 200 }
    })
    .await;
    eventually("health ok", Duration::from_secs(10), || async { health(s).await.iter().all(|(st, _)| *st == 200) }).await;
    eprintln!("[pg black hole] recovered {recovered:?} after the database came back, healthy after {:?}", healed.elapsed());
    assert_healthy(s).await;

    // Nothing lost, and writes work again.
    assert!(!introspect_active(s, &a, &a_secret, &revoked).await, "a revocation from before the outage holds");
    assert!(introspect_active(s, &a, &a_secret, &live).await);
    assert_eq!(s.post_form("/revoke", Some((&a, &a_secret)), &[("token", &live)]).await.status(), 200);
    assert!(!introspect_active(s, &a, &a_secret, &live).await);
}

#[tokio::test]
async fn postgres_refusing_and_cutting_connections_fails_fast_and_recovers() {
    let Some(schema) = PgSchema::new("warden_outage").await else { return };
    let pg = pg_server(schema, Duration::from_secs(1), Duration::ZERO).await;
    let (s, proxy) = (&pg.server, &pg.proxy);
    let (a, a_secret) = s.cc_client().await;
    let (b, b_secret) = s.cc_client().await;
    let revoked = s.token(&a, &a_secret, &[]).await;
    assert_eq!(s.post_form("/revoke", Some((&a, &a_secret)), &[("token", &revoked)]).await.status(), 200);
    let live = s.token(&a, &a_secret, &[]).await;
    let (web, _) = s.client(json!({"grant_types": ["authorization_code"], "redirect_uris": ["https://app.example/cb"], "scope": "openid"})).await;
    // A sign-in already on its login page when the store goes away.
    use crate::oauth::oidc_login_consent::{PASSWORD, open_login, submit_login, user, web_client};
    user(s, "olga").await;
    let mut browser = crate::support::browser::Browser::new(s);
    let (login_page, _) = open_login(&mut browser, s, &web_client(s, json!({})).await, &[]).await;

    // Every pooled connection is cut and new ones are closed at once.
    proxy.set(Fault::Refuse);
    let calls = [
        token_call("token", &b, &b_secret),
        Call::Form { what: "revoke", path: "/revoke", basic: (a.clone(), a_secret.clone()), form: vec![("token", live.clone())] },
        Call::Json { what: "register", path: "/register", body: json!({"grant_types": ["client_credentials"]}) },
    ];
    let during = load(&s.base, &calls, 4, Duration::from_secs(3)).await;
    report("pg refused", &during);
    assert_bounded(&during);
    // The grace is off here, and B was never cached: everything needs the store.
    for o in &during {
        assert_unavailable(o);
    }
    eventually("health degraded", Duration::from_secs(5), || is_degraded(s)).await;
    // A browser asking to sign in to a client the store must load gets a 503 page, never a
    // redirect.
    let url = format!("{}?client_id={web}&response_type=code&scope=openid&redirect_uri=https://app.example/cb", s.url("/authorize"));
    let page = call(&http(), &s.base, &Call::Get { what: "authorize", url }).await;
    assert_eq!((page.status, page.content_type.starts_with("text/html")), (503, true), "{page:?}");
    assert!(page.body.as_str().is_some_and(|html| html.contains("Temporarily unavailable")), "{page:?}");
    assert_no_internals(&page);
    // The sign-in's next step gets the same 503 page, not a 500 one.
    let resp = submit_login(&mut browser, &login_page, "olga", PASSWORD).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.text().await.unwrap().contains("Temporarily unavailable"));

    proxy.set(Fault::Pass);
    let recovered = eventually("recovery", Duration::from_secs(15), || async {
        s.post_form("/token", Some((&b, &b_secret)), &[("grant_type", "client_credentials")]).await.status() == 200
    })
    .await;
    eprintln!("[pg refused] recovered {recovered:?} after the database came back");
    eventually("health ok", Duration::from_secs(10), || async { health(s).await.iter().all(|(st, _)| *st == 200) }).await;
    assert!(!introspect_active(s, &a, &a_secret, &revoked).await, "a revocation from before the outage holds");
    assert_eq!(s.post_form("/revoke", Some((&a, &a_secret)), &[("token", &live)]).await.status(), 200);
    assert!(!introspect_active(s, &a, &a_secret, &live).await);
}

/// Once the client and its redirect URI are verified (the client from the cache), a store
/// failure sends the browser back to the client with `temporarily_unavailable` (OIDC Core
/// §3.1.2.6), not to an error page and not as a `server_error`.
#[tokio::test]
async fn postgres_refusing_after_the_redirect_uri_is_verified_sends_the_browser_back_to_the_client() {
    let Some(schema) = PgSchema::new("warden_outage").await else { return };
    let pg = pg_server(schema, Duration::from_secs(60), Duration::ZERO).await;
    let (s, proxy) = (&pg.server, &pg.proxy);
    use crate::oauth::oidc_login_consent::{answer, authorize_url, web_client};
    let web = web_client(s, json!({})).await;
    let url = authorize_url(s, &web, &[]);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 303, "to the login page (and the client is cached)");

    proxy.set(Fault::Refuse);
    let start = Instant::now();
    let resp = http.get(&url).send().await.unwrap();
    assert!(start.elapsed() < BOUND, "{:?}", start.elapsed());
    assert_eq!(resp.status(), 303);
    let loc = resp.headers()["location"].to_str().unwrap().to_owned();
    let back = answer(&loc);
    assert_eq!(back["error"], "temporarily_unavailable", "{loc}");
    assert_eq!(back["state"], "xyz", "{loc}");
    assert!(!loc.contains("code="), "{loc}");
    proxy.set(Fault::Pass);
}

// ---------------------------------------------------------------------------------------------
// SQLite.

mod jwt {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{Value, json};

    pub struct Key {
        encoding: EncodingKey,
        pub jwk: Value,
    }

    pub fn key() -> Key {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k",
                         "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
        let der = pair.to_pkcs8v1().unwrap();
        Key { encoding: EncodingKey::from_ec_der(der.as_ref()), jwk }
    }

    pub fn assertion(key: &Key, id: &str, aud: &str, jti: &str) -> String {
        let now = warden::model::unix_now();
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k".into());
        let claims = json!({"iss": id, "sub": id, "aud": aud, "exp": now + 60, "iat": now, "jti": jti});
        jsonwebtoken::encode(&h, &claims, &key.encoding).unwrap()
    }
}

async fn jwt_token(s: &TestServer, assertion: &str) -> Outcome {
    let form = vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
        ("client_assertion", assertion.to_owned()),
    ];
    let start = Instant::now();
    let resp = http().post(s.url("/token")).form(&form).send().await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = resp.json().await.unwrap_or(Value::Null);
    Outcome { what: "private_key_jwt token", status, elapsed: start.elapsed(), at: Instant::now(), retry_after, content_type, body }
}

/// Holds SQLite's write lock from a connection of its own until dropped or released.
struct WriteLock(Option<sqlx::SqliteConnection>);

impl WriteLock {
    async fn take(path: &std::path::Path) -> WriteLock {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
        WriteLock(Some(conn))
    }

    async fn release(mut self) {
        use sqlx::Connection;
        if let Some(mut conn) = self.0.take() {
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
}

#[tokio::test]
async fn sqlite_locked_against_writes_fails_writes_fast_and_closed_and_recovers() {
    let s = TestServer::start_with(|c| {
        c.oauth.registration.mode = warden::oauth::RegistrationMode::Open;
        c.oauth.registration.per_address = 1_000_000;
    })
    .await;
    let (a, a_secret) = s.cc_client().await;
    let key = jwt::key();
    let (k, _) = s
        .client(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                       "jwks": {"keys": [key.jwk]}, "scope": "read"}))
        .await;
    let aud = s.issuer.clone();
    assert_eq!(jwt_token(&s, &jwt::assertion(&key, &k, &aud, "before")).await.status, 200);
    let revoked = s.token(&a, &a_secret, &[]).await;
    assert_eq!(s.post_form("/revoke", Some((&a, &a_secret)), &[("token", &revoked)]).await.status(), 200);
    let live = s.token(&a, &a_secret, &[]).await;
    assert_healthy(&s).await;

    let lock = WriteLock::take(&s.data_dir().join("warden.db")).await;

    // A replay check that cannot be recorded must not pass.
    let jwt = jwt_token(&s, &jwt::assertion(&key, &k, &aud, "during")).await;
    assert_unavailable(&jwt);
    assert!(jwt.elapsed <= BOUND, "private_key_jwt took {:?}", jwt.elapsed);

    let mut calls = vec![
        Call::Form { what: "revoke", path: "/revoke", basic: (a.clone(), a_secret.clone()), form: vec![("token", live.clone())] },
        Call::Json { what: "register", path: "/register", body: json!({"grant_types": ["client_credentials"]}) },
        token_call("secret token (reads only)", &a, &a_secret),
        Call::Form { what: "introspect (reads only)", path: "/introspect", basic: (a.clone(), a_secret.clone()), form: vec![("token", revoked.clone())] },
    ];
    calls.push(calls[0].clone());
    let during = load(&s.base, &calls, 4, Duration::from_secs(3)).await;
    report("sqlite locked", &during);
    assert_bounded(&during);
    for o in &during {
        match o.what {
            "secret token (reads only)" => assert_eq!(o.status, 200, "reads still work: {o:?}"),
            "introspect (reads only)" => {
                assert_eq!(o.status, 200, "{o:?}");
                assert_eq!(o.body, json!({"active": false}), "the earlier revocation holds");
            }
            _ => assert_unavailable(o),
        }
    }
    eventually("health degraded", Duration::from_secs(5), || is_degraded(&s)).await;
    assert_alive(&s).await;

    lock.release().await;
    let released = Instant::now();
    let recovered = eventually("revocation works again", Duration::from_secs(10), || async {
        s.post_form("/revoke", Some((&a, &a_secret)), &[("token", &live)]).await.status() == 200
    })
    .await;
    eventually("health ok", Duration::from_secs(5), || async { health(&s).await.iter().all(|(st, _)| *st == 200) }).await;
    eprintln!("[sqlite locked] writes recovered {recovered:?} after the lock went, healthy after {:?}", released.elapsed());
    assert!(!introspect_active(&s, &a, &a_secret, &revoked).await);
    assert!(!introspect_active(&s, &a, &a_secret, &live).await);
    assert_eq!(jwt_token(&s, &jwt::assertion(&key, &k, &aud, "after")).await.status, 200);
    let replay = jwt_token(&s, &jwt::assertion(&key, &k, &aud, "after")).await;
    assert_eq!(replay.status, 401, "replay protection is back: {replay:?}");
}
