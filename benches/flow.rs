//! Load driver for `bench/flow.sh`: repeats one browser-flow step sequence against a running
//! Warden and reports flows per second, latency and the server's CPU time per flow.
//!
//!   flow --mode code|refresh|cc --issuer URL --client-id ID --client-secret SECRET
//!        [--cookie NAME=VALUE] [--redirect-uri URI]
//!        [--connections 16] [--seconds 10] [--pid SERVER_PID]
//!
//! - `code`: `GET /authorize` with a signed-in session cookie and `prompt=none` (no page: the
//!   user consented before), then `POST /token` with the code and its PKCE verifier — one
//!   full authorization code flow with login excluded;
//! - `refresh`: `POST /token` with `grant_type=refresh_token`; each worker first gets its own
//!   refresh token from a code flow (scope `openid offline_access`) and then follows its own
//!   rotation chain, so rotations never collide;
//! - `cc`: `POST /token` with `grant_type=client_credentials`, the baseline.
//!
//! Prints `BENCH key value` lines that the script parses. Not a test; never run by CI.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    mode: String,
    issuer: String,
    client_id: String,
    client_secret: String,
    cookie: String,
    redirect_uri: String,
    connections: usize,
    seconds: u64,
    pid: Option<u32>,
}

fn args() -> Args {
    let mut m: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if let Some(name) = k.strip_prefix("--") {
            m.insert(name.to_owned(), it.next().unwrap_or_default());
        }
    }
    let get = |k: &str, d: &str| m.get(k).cloned().unwrap_or_else(|| d.to_owned());
    Args {
        mode: get("mode", "code"),
        issuer: get("issuer", "http://127.0.0.1:8080"),
        client_id: get("client-id", ""),
        client_secret: get("client-secret", ""),
        cookie: get("cookie", ""),
        redirect_uri: get("redirect-uri", "https://rp.example/cb"),
        connections: get("connections", "16").parse().unwrap_or(16),
        seconds: get("seconds", "10").parse().unwrap_or(10),
        pid: m.get("pid").and_then(|p| p.parse().ok()),
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn pkce() -> (String, String) {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
    (verifier, challenge)
}

struct Worker {
    http: reqwest::Client,
    a: Arc<Args>,
}

impl Worker {
    /// One code flow: authorize silently, exchange the code. Returns the token response.
    async fn code_flow(&self, scope: &str) -> Result<serde_json::Value, String> {
        let a = &self.a;
        let (verifier, challenge) = pkce();
        let mut url = url::Url::parse(&format!("{}/authorize", a.issuer)).unwrap();
        url.query_pairs_mut().extend_pairs([
            ("client_id", a.client_id.as_str()),
            ("redirect_uri", a.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", scope),
            ("state", "s"),
            ("prompt", "none"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let resp = self.http.get(url).header("cookie", &a.cookie).send().await.map_err(|e| e.to_string())?;
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).ok_or(format!("authorize: {}", resp.status()))?;
        let code = url::Url::parse(location)
            .map_err(|e| e.to_string())?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or(format!("no code in {location}"))?;
        self.token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &a.redirect_uri), ("code_verifier", &verifier)]).await
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<serde_json::Value, String> {
        let a = &self.a;
        let resp = self
            .http
            .post(format!("{}/token", a.issuer))
            .basic_auth(&a.client_id, Some(&a.client_secret))
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("token: {status} {body}"));
        }
        Ok(body)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = Arc::new(args());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).pool_max_idle_per_host(a.connections).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    // Warm-up and, for refresh, one chain per worker.
    let mut chains = Vec::new();
    for _ in 0..a.connections {
        let w = Worker { http: http.clone(), a: a.clone() };
        let start = match a.mode.as_str() {
            "refresh" => match w.code_flow("openid offline_access").await {
                Ok(t) => t["refresh_token"].as_str().map(str::to_owned),
                Err(e) => {
                    println!("BENCH error {e}");
                    std::process::exit(1);
                }
            },
            _ => None,
        };
        chains.push(start);
    }
    let cpu0 = a.pid.map(cpu_seconds);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for chain in chains {
        let (w, stop, done, failed, latencies, first_error) =
            (Worker { http: http.clone(), a: a.clone() }, stop.clone(), done.clone(), failed.clone(), latencies.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let mut refresh = chain;
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = match w.a.mode.as_str() {
                    "code" => w.code_flow("openid").await.map(|_| ()),
                    "refresh" => {
                        let rt = refresh.clone().unwrap_or_default();
                        w.token(&[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await.map(|b| {
                            refresh = b["refresh_token"].as_str().map(str::to_owned);
                        })
                    }
                    _ => w.token(&[("grant_type", "client_credentials")]).await.map(|_| ()),
                };
                match r {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        mine.push(t.elapsed().as_micros() as u64);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().unwrap().get_or_insert(e);
                        if w.a.mode == "refresh" {
                            break;
                        }
                    }
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = a.pid.map(cpu_seconds).zip(cpu0).map(|(b, a)| b - a);
    for t in tasks {
        let _ = t.await;
    }
    let n = done.load(Ordering::Relaxed);
    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    let pct = |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0);
    println!("BENCH flows {n}");
    println!("BENCH rate {:.1}", n as f64 / elapsed);
    println!("BENCH p50_us {}", pct(0.50));
    println!("BENCH p99_us {}", pct(0.99));
    println!("BENCH failed {}", failed.load(Ordering::Relaxed));
    if let Some(cpu) = cpu {
        println!("BENCH cpu_pct {:.0}", 100.0 * cpu / elapsed);
        println!("BENCH cpu_us_per_flow {:.1}", if n > 0 { 1e6 * cpu / n as f64 } else { 0.0 });
    }
    if let Some(e) = first_error.lock().unwrap().as_ref() {
        println!("BENCH first_error {e}");
    }
}
