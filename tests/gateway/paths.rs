//! Issue #7 item 2: routes and path normalisation. The upstream here is deliberately
//! lenient (it serves any path), so only the gateway stands between a path trick and it.

use super::upstream::Upstream;
use super::{assert_problem, base, gateway, raw_get, route};
use crate::blackbox::warden;

/// `/public/*` is the only route; `/admin` exists only on the (lenient) upstream.
#[tokio::test]
async fn path_tricks_reach_the_upstream_only_in_normalised_form() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("public", "/public/*", &["GET"], &up.url())], |_| {}).await;
    for (sent, received) in [
        ("/public/./x", "/public/x"),
        ("/public//x", "/public/x"),
        ("//public///x", "/public/x"),
        ("/public/%78", "/public/x"),
        ("/public/a/../x", "/public/x"),
        ("/public/a/%2E%2E/x", "/public/x"),
        ("/public/caf%c3%a9", "/public/caf%C3%A9"),
    ] {
        up.clear();
        let r = raw_get(&s, sent).await;
        assert_eq!(r.status, 200, "{sent}: {r:?}");
        assert_eq!(up.one().path, received, "{sent}");
    }
    up.clear();
    let r = raw_get(&s, "/public/x?b=%2F&a=..%2F&c").await;
    assert_eq!(r.status, 200);
    let seen = up.one();
    assert_eq!((seen.path.as_str(), seen.query.as_deref()), ("/public/x", Some("b=%2F&a=..%2F&c")), "the query passes unchanged");
}

#[tokio::test]
async fn path_tricks_that_leave_the_route_or_are_ambiguous_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("public", "/public/*", &["GET"], &up.url())], |_| {}).await;
    // Resolved out of /public/: no route.
    for sent in ["/public/../admin", "/public/%2e%2e/admin", "/public/./../admin", "/public/..", "/../admin"] {
        raw_get(&s, sent).await.assert_problem(404);
    }
    // Refused outright.
    for sent in [
        "/public/%2561dmin",
        "/public/admin;x=1/stats",
        "/public/a;jsessionid=1",
        "/public/a%2Fb",
        "/public/a%2fb",
        "/public/a%5Cb",
        "/public/a\\b",
        "/public/a%00",
        "/public/a%25",
        "/public/a%zz",
        "/public/a%4",
    ] {
        let p = raw_get(&s, sent).await.assert_problem(400);
        assert_eq!(p["type"], "urn:warden:problem:bad-path", "{sent}");
        assert!(!p["detail"].as_str().unwrap().contains("public"), "the detail does not echo the path");
    }
    assert!(up.seen().is_empty(), "the upstream saw {:#?}", up.seen());
}

#[tokio::test]
async fn no_route_is_404_and_an_unlisted_method_is_405_with_allow() {
    let up = Upstream::start().await;
    let s = gateway(
        vec![
            route("cars", "/cars/{vin}", &["GET"], &up.url()),
            route("car-write", "/cars/{vin}", &["PUT"], &up.url()),
            route("fleet", "/cars/*", &["GET", "DELETE"], &up.url()),
        ],
        |_| {},
    )
    .await;
    let http = &s.http;
    let p = assert_problem(http.get(format!("{}/nothing/here", base(&s))).send().await.unwrap(), 404).await;
    assert_eq!(p["type"], "urn:warden:problem:not-found");
    let resp = http.post(format!("{}/cars/1HGCM", base(&s))).body("x").send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET, HEAD, PUT");
    let p = assert_problem(resp, 405).await;
    assert_eq!(p["type"], "urn:warden:problem:method-not-allowed");
    // The less specific /cars/* allows DELETE, but /cars/{vin} decides: no fall-back.
    assert_problem(http.delete(format!("{}/cars/1HGCM", base(&s))).send().await.unwrap(), 405).await;
    assert!(up.seen().is_empty(), "the upstream saw {:#?}", up.seen());

    // The matched ones go through.
    assert_eq!(http.get(format!("{}/cars/1HGCM", base(&s))).send().await.unwrap().status(), 200);
    assert_eq!(http.delete(format!("{}/cars/1HGCM/trips", base(&s))).send().await.unwrap().status(), 200);
    let seen = up.seen();
    assert_eq!(seen.iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>(), ["GET /cars/1HGCM", "DELETE /cars/1HGCM/trips"]);
}

#[tokio::test]
async fn hosts_and_case_insensitive_routes() {
    let up = Upstream::start().await;
    let other = Upstream::start().await;
    let mut by_host = route("by-host", "/*", &["GET"], &other.url());
    by_host.hosts = vec!["api.example".into()];
    let mut ci = route("ci", "/Docs/*", &["GET"], &up.url());
    ci.case_insensitive = true;
    let s = gateway(vec![route("any", "/*", &["GET"], &up.url()), by_host, ci], |_| {}).await;
    // raw_get sends host: api.example.
    assert_eq!(raw_get(&s, "/x").await.status, 200);
    assert_eq!(other.one().path, "/x");
    assert!(up.seen().is_empty());
    let r = s.http.get(format!("{}/DOCS/Intro", base(&s))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.one().path, "/DOCS/Intro", "matched in any case, forwarded as sent (normalised)");
}

#[test]
fn config_check_refuses_a_route_without_authentication_with_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    let route = "[[gateway.routes]]\nid = \"orders\"\npath = \"/orders/\"\nmethods = [\"GET\"]\nupstream = \"http://127.0.0.1:9000\"\n";
    std::fs::write(&file, format!("version = 1\n{route}")).unwrap();
    let o = warden(dir.path(), &["config", "check", file.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gateway.routes[0].auth"), "{err}");
    assert!(err.contains("deny by default"), "{err}");
    std::fs::write(&file, format!("version = 1\n{route}auth = [\"anonymous\"]\n")).unwrap();
    let o = warden(dir.path(), &["config", "check", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The whole path from a `warden.toml` to a proxied request: `warden serve --role gateway`
/// as a subprocess, its route read from the file.
#[tokio::test]
async fn warden_serve_proxies_the_routes_of_its_config_file() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\n[gateway]\nlisten = \"127.0.0.1:0\"\n[[gateway.routes]]\nid = \"cars\"\npath = \"/cars/{{vin}}\"\n\
             methods = [\"GET\"]\nupstream = \"{}/v1\"\nauth = [\"anonymous\"]\n",
            up.url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--role", "gateway", "--config", file.to_str().unwrap()])
        .env("WARDEN_DATA_DIR", dir.path())
        .env_remove("WARDEN_MASTER_KEY")
        .env_remove("WARDEN_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
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
    let guard = Kill(child);
    // The reader comes back with the URL and stays open, so the server's later writes to
    // stderr never hit a closed pipe.
    let (url, _stderr) = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut seen = String::new();
        while let Some(Ok(line)) = lines.next() {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.split("gateway  listening on ").nth(1) {
                assert!(rest.contains("1 route(s)"), "{rest}");
                return (rest.split_whitespace().next().unwrap().to_owned(), lines);
            }
        }
        panic!("the server exited before listening: {seen}");
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let resp = http.get(format!("{url}/cars/1HGCM?fields=vin")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.one();
    assert_eq!((seen.path.as_str(), seen.query.as_deref()), ("/v1/cars/1HGCM", Some("fields=vin")));
    assert_problem(http.get(format!("{url}/cars")).send().await.unwrap(), 404).await;
    drop(guard);
}
