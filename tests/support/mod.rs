//! Test harness: an in-process server per test, a client factory and OAuth assertions.

#![allow(dead_code)]

pub mod code_flow;
pub mod browser;

use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use warden::app::{self, Core, Listeners};
use warden::config::{Config, Overrides, Role};
use warden::model::Origin;
use warden::oauth::clients;
use warden::oauth::register::metadata::{Policy, RegistrationRequest};
use warden::secrets::MasterKey;
use warden::store::Store;

/// A running server. Dropping it stops the server; `stop` waits for a graceful end.
pub struct TestServer {
    pub cfg: Config,
    pub issuer: String,
    /// Where requests go: the provider's bound address plus the issuer's path. Equal to the
    /// issuer unless a test fixed the issuer (nodes behind one name).
    pub base: String,
    pub addrs: Vec<(Role, SocketAddr)>,
    pub store: Store,
    pub master: Arc<MasterKey>,
    pub http: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), app::AppError>>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The configuration every test starts from: defaults, loopback port 0, quick key refresh.
pub fn test_config(data_dir: &Path) -> Config {
    let overrides = Overrides { data_dir: Some(data_dir.to_path_buf()), roles: None };
    let mut cfg = Config::load(None, [], &overrides).expect("defaults are valid");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    cfg.oauth.listen = any;
    cfg.gateway.listen = any;
    cfg.admin.listen = any;
    cfg.oauth.keys.refresh_interval = Duration::from_millis(200);
    cfg.log.level = "warn".into();
    cfg
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_in(dir, edit).await
    }

    /// Starts a node with a given master key (nodes of one cluster share it), keeping the
    /// issuer the test sets instead of deriving it from the port.
    pub async fn start_shared(master_key: &str, edit: impl FnOnce(&mut Config)) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::boot(dir, Some(master_key), false, edit).await
    }

    /// Starts on an existing data directory (restart tests).
    pub async fn start_in(dir: Arc<tempfile::TempDir>, edit: impl FnOnce(&mut Config)) -> TestServer {
        Self::boot(dir, None, true, edit).await
    }

    /// Another node of the same deployment, running beside this one: the same data
    /// directory (store and master key) and the same issuer.
    pub async fn another_node(&self, edit: impl FnOnce(&mut Config)) -> TestServer {
        let (issuer, audience) = (self.issuer.clone(), self.cfg.oauth.default_audience.clone());
        Self::boot(self.dir.clone(), None, false, move |c| {
            c.oauth.issuer = issuer;
            c.oauth.default_audience = audience;
            edit(c);
        })
        .await
    }

    async fn boot(dir: Arc<tempfile::TempDir>, master_key: Option<&str>, follow_port: bool, edit: impl FnOnce(&mut Config)) -> TestServer {
        let mut cfg = test_config(dir.path());
        let pristine_audience = cfg.oauth.default_audience.clone();
        edit(&mut cfg);
        let listeners = Listeners::bind(&cfg).await.unwrap();
        let addrs = listeners.addrs();
        if let Some((_, addr)) = addrs.iter().find(|(r, _)| *r == Role::Provider).filter(|_| follow_port) {
            // Keep any path the test gave the issuer; take host and port from the listener.
            let path = url::Url::parse(&cfg.oauth.issuer).map(|u| u.path().trim_end_matches('/').to_owned()).unwrap_or_default();
            let issuer = format!("http://{addr}{path}");
            if cfg.oauth.default_audience == pristine_audience {
                cfg.oauth.default_audience = issuer.clone();
            }
            cfg.oauth.issuer = issuer;
        }
        let core = Core::open(&cfg, master_key).await.unwrap();
        let (store, master) = (core.store.clone(), core.master.clone());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app::run(cfg.clone(), core, listeners, shutdown.clone()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let issuer_path = url::Url::parse(&cfg.oauth.issuer).map(|u| u.path().trim_end_matches('/').to_owned()).unwrap_or_default();
        let base = match addrs.iter().find(|(r, _)| *r == Role::Provider) {
            Some((_, addr)) => format!("http://{addr}{issuer_path}"),
            None => cfg.oauth.issuer.clone(),
        };
        let server = TestServer { issuer: cfg.oauth.issuer.clone(), base, cfg, addrs, store, master, http, dir, shutdown, task: Some(task) };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Some((role, addr)) = self.addrs.first() {
                let url = if *role == Role::Provider { self.url("/jwks") } else { format!("http://{addr}/healthz") };
                if self.http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server did not become ready");
    }

    pub fn addr(&self, role: Role) -> SocketAddr {
        self.addrs.iter().find(|(r, _)| *r == role).expect("role is running").1
    }

    /// A URL on the provider.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops gracefully and returns the data directory for a restart.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        self.shutdown.cancel();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(20), task).await.expect("shutdown in time").unwrap().unwrap();
        self.dir.clone()
    }

    /// Registers a client the way the CLI does; returns (client_id, secret).
    pub async fn client(&self, spec: serde_json::Value) -> (String, String) {
        let req: RegistrationRequest = serde_json::from_value(spec).unwrap();
        let algs = self.cfg.oauth.keys.signing_algs();
        let policy = Policy { scopes: None, audiences: None, max_lifetime: Some(self.cfg.oauth.max_access_token_lifetime), signing_algs: &algs };
        let created = clients::create(&self.store, &self.master, req, &policy, Origin::Operator, None).await.unwrap();
        (created.client.client_id.0, created.client_secret.unwrap_or_default())
    }

    /// A client_credentials client with scopes "read write".
    pub async fn cc_client(&self) -> (String, String) {
        self.client(serde_json::json!({"grant_types": ["client_credentials"], "scope": "read write", "client_name": "test"})).await
    }

    /// POSTs a form to a provider path with HTTP Basic credentials.
    pub async fn post_form(&self, path: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.unwrap()
    }

    /// A client-credentials access token.
    pub async fn token(&self, id: &str, secret: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let resp = self.post_form("/token", Some((id, secret)), &form).await;
        assert_eq!(resp.status(), StatusCode::OK, "token request failed");
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Introspects with the given client credentials; returns the JSON body.
    pub async fn introspect(&self, id: &str, secret: &str, token: &str) -> Value {
        let resp = self.post_form("/introspect", Some((id, secret)), &[("token", token)]).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// Whether the store holds a live artifact of `kind` under `key` at time `at` (Unix
    /// seconds): how tests see a lifetime's both ends without waiting it out.
    pub async fn holds(&self, kind: warden::store::ArtifactKind, key: &str, at: i64) -> bool {
        self.store.artifacts.get(kind, key, at).await.unwrap().is_some()
    }

    /// A JWT signed with this server's own key for `alg` (from its store, unsealed with its
    /// master key): what only the server itself could have made.
    pub async fn sign_with_own_key(&self, alg: warden::jose::Alg, typ: &str, claims: &Value) -> String {
        let rec = self.store.catalog.signing_keys().await.unwrap().into_iter().find(|r| r.alg == alg.as_str()).expect("a key for alg");
        let pkcs8 = self.master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
        warden::jose::SigningKey::from_pkcs8(rec.kid, alg, &pkcs8).unwrap().sign_jwt(typ, claims).unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// Asserts an RFC 6749 §5.2 error: status, `error` code, a description, `no-store`.
pub async fn assert_oauth_error(resp: reqwest::Response, status: u16, code: &str) -> reqwest::header::HeaderMap {
    let headers = resp.headers().clone();
    assert_eq!(resp.status().as_u16(), status, "status for {code}");
    assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], code, "body: {body}");
    let description = body["error_description"].as_str().unwrap_or("");
    assert!(!description.is_empty(), "error_description present");
    assert_ne!(description, code, "error_description says more than the code");
    for leak in ["SELECT", "sqlite", "postgres", "/tmp", "panicked", ".rs:"] {
        assert!(!description.contains(leak), "internals leak in {description}");
    }
    headers
}

/// The decoded (unverified) parts of a JWT, for inspecting what we issued.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let mut parts = token.split('.');
    let mut decode = || -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let header = decode();
    let claims = decode();
    (header, claims)
}

/// PostgreSQL for tests: `WARDEN_TEST_PG_URL` (default postgres://postgres@127.0.0.1:5432/test).
/// `None` (with a visible message) when it is unreachable, unless `WARDEN_REQUIRE_PG=1`,
/// which CI sets: then an unreachable server fails the test.
pub async fn postgres_url() -> Option<String> {
    let url = std::env::var("WARDEN_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let reachable = tokio::time::timeout(Duration::from_secs(5), async {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&url).await
    })
    .await
    .is_ok_and(|r| r.is_ok());
    if reachable {
        return Some(url);
    }
    if std::env::var("WARDEN_REQUIRE_PG").is_ok_and(|v| v == "1") {
        panic!("PostgreSQL at {url} is unreachable and WARDEN_REQUIRE_PG=1");
    }
    // Written to the process's stderr directly, not through `eprintln!`, which the test
    // harness captures and hides for a passing test: a skip must show in the output.
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (no PostgreSQL): {url} is unreachable; set WARDEN_TEST_PG_URL (WARDEN_REQUIRE_PG=1 makes this a failure)"
        );
    }
    None
}

/// A fresh PostgreSQL schema for one test, dropped when the guard goes out of scope — also
/// when the test fails and unwinds. `None` (with a visible message) without PostgreSQL.
pub struct PgSchema {
    pub url: String,
    pub schema: String,
}

impl PgSchema {
    pub async fn new(prefix: &str) -> Option<PgSchema> {
        let url = postgres_url().await?;
        Some(PgSchema { url, schema: unique_schema(prefix) })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop may run inside the test's runtime, even while it unwinds: use a thread with a
        // runtime of its own, and never panic here.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            // The timeout is created inside `block_on`: it needs the runtime's timer.
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(20), async {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.ok()
                })
                .await
            })
            .ok()
            .flatten()
        })
        .join();
    }
}

/// A fresh, unique PostgreSQL schema name for one test.
pub fn unique_schema(prefix: &str) -> String {
    format!("{prefix}_{}", warden::secrets::random_text(6).unwrap().to_lowercase().replace(['-', '_'], "x"))
}

/// The `oauth2` / `openidconnect` crates' async HTTP client contract, carried by reqwest (it
/// follows no redirects when `http` is built so).
pub async fn oauth2_send(http: reqwest::Client, req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let mut r = http.request(parts.method, parts.uri.to_string()).body(body);
    for (k, v) in &parts.headers {
        r = r.header(k, v);
    }
    let resp = r.send().await?;
    let mut out = axum::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    Ok(out.body(resp.bytes().await?.to_vec()).unwrap())
}

/// Log lines captured while a test holds a subscriber writing JSON to it
/// (`tracing::subscriber::set_default(capture.subscriber(level))`).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// A JSON-lines subscriber writing into this capture, at `level` and above.
    pub fn subscriber(&self, level: tracing::Level) -> impl tracing::Subscriber + Send + Sync + use<> {
        tracing_subscriber::fmt().json().with_max_level(level).with_writer(self.clone()).finish()
    }

    /// Everything captured.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The JSON events whose `event` field is `event`.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.text().lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|e| e["fields"]["event"] == event).collect()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> LogCapture {
        self.clone()
    }
}

/// Two provider nodes of one deployment over the PostgreSQL schema `pg`: one master key,
/// one issuer (as behind a load balancer), each also changed by `edit`.
pub async fn provider_nodes_over_postgres(pg: &PgSchema, edit: impl Fn(&mut Config)) -> (TestServer, TestServer) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [42u8; 32]);
    let node = |c: &mut Config| {
        c.database.url = pg.url.clone();
        c.database.schema = pg.schema.clone();
        c.roles = vec![warden::config::Role::Provider];
        c.oauth.issuer = issuer.clone();
        c.oauth.default_audience = issuer.clone();
        edit(c);
    };
    (TestServer::start_shared(&master, node).await, TestServer::start_shared(&master, node).await)
}
