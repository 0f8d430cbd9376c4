//! Issue #7 item 6: request validation — JSON Schemas for bodies, path and query parameters
//! and headers, content types (415), body size (413), strict JSON — configured in TOML or
//! imported from OpenAPI 3.0 / 3.1 documents. Every refusal is checked to have left the
//! upstream untouched.

use super::upstream::Upstream;
use super::{assert_problem, base, gateway, raw};
use crate::support::TestServer;
use serde_json::Value;
use std::path::Path;
use warden::config::{Config, Overrides};
use warden::gateway::RouteConfig;

/// Orders of a shop: path, header, query (GET) and body (POST) schemas, a 256-byte limit.
const ORDERS: &str = r#"version = 1
[[gateway.routes]]
id = "orders"
path = "/shops/{shop}/orders"
methods = ["GET", "POST"]
upstream = "UPSTREAM"
auth = ["anonymous"]

[gateway.routes.validate]
max_body_size = 256
path_schema = { type = "object", properties = { shop = { type = "integer", minimum = 1 } } }
headers_schema = '{"type": "object", "properties": {"x-api-version": {"enum": ["1", "2"]}}, "required": ["x-api-version"]}'

[gateway.routes.validate.GET]
query_schema = { type = "object", properties = { limit = { type = "integer", maximum = 50 }, tag = { type = "array", items = { type = "string" } } }, additionalProperties = false }

[gateway.routes.validate.POST]
body_schema = { type = "object", required = ["item", "qty"], additionalProperties = false, properties = { item = { type = "string", minLength = 1 }, qty = { type = "integer", minimum = 1 }, note = { type = "string" } } }
"#;

/// Resolves a configuration file's routes the way `warden serve` does.
fn load_routes(text: &str) -> Vec<RouteConfig> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    std::fs::write(&file, text).unwrap();
    load_file(&file)
}

fn load_file(file: &Path) -> Vec<RouteConfig> {
    match Config::load(Some(file), Vec::<(String, String)>::new(), &Overrides::default()) {
        Ok(c) => c.gateway.routes,
        Err(e) => panic!("{e:?}"),
    }
}

async fn orders() -> (Upstream, TestServer) {
    let up = Upstream::start().await;
    let s = gateway(load_routes(&ORDERS.replace("UPSTREAM", &up.url())), |_| {}).await;
    (up, s)
}

/// The `errors` of a 400 as `(in, pointer, reason)`.
fn errors(problem: &Value) -> Vec<(String, String, String)> {
    assert_eq!(problem["type"], "urn:warden:problem:invalid-request", "{problem}");
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| (e["in"].as_str().unwrap().to_owned(), e["pointer"].as_str().unwrap().to_owned(), e["reason"].as_str().unwrap().to_owned()))
        .collect()
}

fn has(list: &[(String, String, String)], place: &str, pointer: &str, reason: &str) -> bool {
    list.iter().any(|(i, p, r)| i == place && p == pointer && r.contains(reason))
}

#[tokio::test]
async fn a_valid_request_reaches_the_upstream_with_its_body_byte_for_byte() {
    let (up, s) = orders().await;
    let body = "{\"item\":\"th\u{e9}\",  \"qty\": 2 ,\n\"note\":\"\\u00e9 \\\"x\\\"\"}";
    let resp = s
        .http
        .post(format!("{}/shops/7/orders?x=1", base(&s)))
        .header("content-type", "application/json; charset=utf-8")
        .header("x-api-version", "2")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.one();
    assert_eq!(&seen.body[..], body.as_bytes());
    assert_eq!(seen.headers["content-length"], body.len().to_string().as_str());
    assert_eq!(seen.headers["content-type"], "application/json; charset=utf-8");
    up.clear();

    // A chunked body (no length) is buffered and forwarded the same, bytes intact.
    let chunked = b"POST /shops/7/orders HTTP/1.1\r\nhost: a\r\nx-api-version: 1\r\ncontent-type: application/json\r\n\
        transfer-encoding: chunked\r\nconnection: close\r\n\r\n9\r\n{\"item\": \r\nc\r\n\"x\", \"qty\":1\r\n1\r\n}\r\n0\r\n\r\n";
    let r = raw(&s, chunked).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(&up.one().body[..], b"{\"item\": \"x\", \"qty\":1}");
    up.clear();

    // GET: repeated array parameters, numbers read as the schema says.
    // (A Content-Type on a request without a body is no reason to refuse it.)
    let resp = s
        .http
        .get(format!("{}/shops/7/orders?limit=50&tag=a&tag=b", base(&s)))
        .header("x-api-version", "1")
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.one().query.as_deref(), Some("limit=50&tag=a&tag=b"));
}

#[tokio::test]
async fn a_body_that_fails_its_schema_is_a_400_listing_every_failing_pointer() {
    let (up, s) = orders().await;
    let post = |body: &'static str| {
        s.http.post(format!("{}/shops/7/orders", base(&s))).header("content-type", "application/json").header("x-api-version", "1").body(body).send()
    };
    let p = assert_problem(post(r#"{"qty": 0, "extra": 1, "note": 5}"#).await.unwrap(), 400).await;
    let list = errors(&p);
    assert!(has(&list, "body", "/item", "is required"), "{list:?}");
    assert!(has(&list, "body", "/qty", "at least 1"), "{list:?}");
    assert!(has(&list, "body", "/extra", "not allowed"), "{list:?}");
    assert!(has(&list, "body", "/note", "type string"), "{list:?}");
    assert_eq!(list.len(), 4, "{list:?}");
    // The input is never echoed back.
    let p = assert_problem(post(r#"{"item": "", "qty": "SECRET-INPUT-1234"}"#).await.unwrap(), 400).await;
    assert!(!p.to_string().contains("SECRET-INPUT"), "{p}");
    assert!(has(&errors(&p), "body", "/item", "at least 1 characters"), "{p}");
    // Not JSON at all; no body where one is required.
    let p = assert_problem(post("{\"item\": ").await.unwrap(), 400).await;
    assert!(has(&errors(&p), "body", "", "ends too early"), "{p}");
    let p = assert_problem(post("").await.unwrap(), 400).await;
    assert!(has(&errors(&p), "body", "", "a body is required"), "{p}");
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn path_query_and_header_parameters_are_checked_against_their_schemas() {
    let (up, s) = orders().await;
    let get = |path: &str, version: Option<&str>| {
        let mut r = s.http.get(format!("{}{path}", base(&s)));
        if let Some(v) = version {
            r = r.header("x-api-version", v);
        }
        r.send()
    };
    // Path: {shop} must be an integer ≥ 1.
    for path in ["/shops/0/orders", "/shops/abc/orders"] {
        let p = assert_problem(get(path, Some("1")).await.unwrap(), 400).await;
        assert!(has(&errors(&p), "path", "/shop", ""), "{path}: {p}");
    }
    // Query: limit ≤ 50, an integer, no unknown parameters, no repeated scalar.
    let p = assert_problem(get("/shops/1/orders?limit=500&debug=1", Some("1")).await.unwrap(), 400).await;
    let list = errors(&p);
    assert!(has(&list, "query", "/limit", "at most 50"), "{list:?}");
    assert!(has(&list, "query", "/debug", "not allowed"), "{list:?}");
    let p = assert_problem(get("/shops/1/orders?limit=ten", Some("1")).await.unwrap(), 400).await;
    assert!(has(&errors(&p), "query", "/limit", "type integer"), "{p}");
    let p = assert_problem(get("/shops/1/orders?limit=1&limit=40", Some("1")).await.unwrap(), 400).await;
    assert!(has(&errors(&p), "query", "/limit", "given once"), "{p}");
    // Headers: x-api-version required, one of the listed values.
    let p = assert_problem(get("/shops/1/orders", None).await.unwrap(), 400).await;
    assert!(has(&errors(&p), "header", "/x-api-version", "is required"), "{p}");
    let p = assert_problem(get("/shops/1/orders", Some("3")).await.unwrap(), 400).await;
    assert!(has(&errors(&p), "header", "/x-api-version", "allowed values"), "{p}");
    // Several places at once: every failure listed.
    let p = assert_problem(get("/shops/0/orders?limit=99", None).await.unwrap(), 400).await;
    assert_eq!(errors(&p).len(), 3, "{p}");
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn a_body_of_another_content_type_is_a_415_naming_the_accepted_types() {
    let (up, s) = orders().await;
    for ct in [Some("text/plain"), Some("application/json; charset=iso-8859-1"), Some("application/x-www-form-urlencoded"), None] {
        let mut req = s.http.post(format!("{}/shops/7/orders", base(&s))).header("x-api-version", "1").body(r#"{"item": "x", "qty": 1}"#);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.headers().get("accept").map(|v| v.to_str().unwrap()), Some("application/json"), "{ct:?}");
        let p = assert_problem(resp, 415).await;
        assert_eq!(p["type"], "urn:warden:problem:unsupported-media-type");
    }
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_on_its_length_and_while_streaming() {
    let (up, s) = orders().await;
    // Content-Length over the limit: answered before the body is sent at all.
    let head = b"POST /shops/7/orders HTTP/1.1\r\nhost: a\r\nx-api-version: 1\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n";
    let r = raw(&s, head).await.expect("an answer before the body");
    let p = r.assert_problem(413);
    assert_eq!(p["type"], "urn:warden:problem:content-too-large");
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    // Chunked, no length: refused once 256 bytes have come, without waiting for the end.
    let mut req = b"POST /shops/7/orders HTTP/1.1\r\nhost: a\r\nx-api-version: 1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5 {
        req.extend_from_slice(format!("40\r\n{}\r\n", "a".repeat(64)).as_bytes());
    }
    let r = raw(&s, &req).await.expect("an answer while the body streams");
    r.assert_problem(413);
    // Exactly at the limit passes the size check (and fails the schema: it is no object).
    let body = format!("\"{}\"", "a".repeat(254));
    let resp = s.http.post(format!("{}/shops/7/orders", base(&s))).header("content-type", "application/json").header("x-api-version", "1").body(body).send().await.unwrap();
    assert_problem(resp, 400).await;
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn bad_utf8_duplicate_keys_and_deep_nesting_are_refused() {
    let (up, s) = orders().await;
    let post = |body: Vec<u8>| {
        s.http.post(format!("{}/shops/7/orders", base(&s))).header("content-type", "application/json").header("x-api-version", "1").body(body).send()
    };
    let p = assert_problem(post(b"{\"item\": \"\xff\xfe\", \"qty\": 1}".to_vec()).await.unwrap(), 400).await;
    assert!(has(&errors(&p), "body", "", "not valid UTF-8"), "{p}");
    // The upstream's parser might keep the first qty, the schema checker the last.
    let p = assert_problem(post(br#"{"item": "x", "qty": 1, "qty": -5}"#.to_vec()).await.unwrap(), 400).await;
    assert!(has(&errors(&p), "body", "/qty", "duplicate"), "{p}");
    let p = assert_problem(post(br#"{"item": "x", "qty": 1, "\u0071ty": 1}"#.to_vec()).await.unwrap(), 400).await;
    assert!(has(&errors(&p), "body", "/qty", "duplicate"), "{p}");
    let p = assert_problem(post(format!("{}{}", "[".repeat(100), "]".repeat(100)).into_bytes()).await.unwrap(), 400).await;
    assert!(errors(&p).iter().any(|(i, _, r)| i == "body" && r.contains("nested too deeply")), "{p}");
    let p = assert_problem(post(br#"{"item": "x", "qty": 1e400}"#.to_vec()).await.unwrap(), 400).await;
    assert_eq!(errors(&p).len(), 1, "{p}");
    assert!(up.seen().is_empty());
}

#[test]
fn config_check_names_a_bad_schema_or_validation_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.toml");
    let check = |text: String| {
        std::fs::write(&file, text).unwrap();
        Config::load(Some(&file), Vec::<(String, String)>::new(), &Overrides::default()).err().unwrap_or_default().into_iter().map(|e| e.key).collect::<Vec<_>>()
    };
    let good = ORDERS.replace("UPSTREAM", "http://127.0.0.1:9");
    assert!(check(good.clone()).is_empty());
    for (bad, key) in [
        (good.replace("minimum = 1 } } }\nheaders", "minimum = \"one\" } } }\nheaders"), "gateway.routes[0].validate.path_schema"),
        (good.replace("'{\"type\": \"object\",", "'{\"type\": \"object\""), "gateway.routes[0].validate.headers_schema"),
        (good.replace("[gateway.routes.validate.GET]", "[gateway.routes.validate.PUT]"), "gateway.routes[0].validate.PUT"),
        (good.replace("max_body_size = 256", "max_body_size = 256\nbody_schema = { file = \"/nonexistent/s.json\" }"), "gateway.routes[0].validate.body_schema"),
        (good.replace("max_body_size = 256", "max_body_size = 256\ncontent_types = [\"json\"]"), "gateway.routes[0].validate.content_types"),
        (good.replace("max_body_size = 256", "max_body_size = 256\nbogus = 1"), "gateway.routes[0].validate.bogus"),
        (good.replace("[gateway.routes.validate]", "response_schema = '{\"type\": 7}'\n[gateway.routes.validate]"), "gateway.routes[0].response_schema"),
    ] {
        let keys = check(bad);
        assert!(keys.iter().any(|k| k == key), "{key}: {keys:?}");
    }
    // A schema from a file, JSON or YAML.
    std::fs::write(dir.path().join("s.yaml"), "type: object\nrequired: [a]\n").unwrap();
    let with_file = good.replace("max_body_size = 256", &format!("max_body_size = 256\nbody_schema = {{ file = \"{}\" }}", dir.path().join("s.yaml").display()));
    assert!(check(with_file).is_empty());
}

fn warden(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env_remove("WARDEN_CONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// `import-openapi` → a file → `config check` → a gateway serving it.
async fn import(spec: &str, up: &Upstream) -> (TestServer, String) {
    let out = warden(&["gateway", "import-openapi", spec, "--upstream", &up.url(), "--auth", "anonymous"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toml = String::from_utf8(out.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.toml");
    std::fs::write(&file, &toml).unwrap();
    let check = warden(&["config", "check", file.to_str().unwrap()]);
    assert!(check.status.success(), "config check refused the import: {}\n{toml}", String::from_utf8_lossy(&check.stderr));
    let s = gateway(load_file(&file), |_| {}).await;
    (s, format!("{toml}\n--- stderr ---\n{}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn an_openapi_3_0_document_becomes_routes_that_the_gateway_enforces() {
    let up = Upstream::start().await;
    let (s, output) = import("tests/data/petstore-3.0.yaml", &up).await;
    assert!(output.contains("response_schema"), "{output}");
    // The upstream answers JSON with a field the document does not declare: the imported
    // response_schema filters it out (a non-JSON 2xx would be a 502 on a filtered route).
    up.set_mode(super::upstream::Mode::Json(r#"{"id": 12, "name": "Rex", "owner_ssn": "078-05-1120"}"#));
    assert!(output.contains("warning: /files/{name}.json: left out"), "{output}");
    let url = |p: &str| format!("{}{p}", base(&s));
    let post = |body: &'static str, tenant: &'static str| s.http.post(url("/pets")).header("content-type", "application/json").header("x-tenant", tenant).body(body).send();

    // Valid requests pass, the body intact.
    let body = r#"{"name": "Rex", "tag": null, "age": 3, "owner": {"email": "a@example.com", "friends": [{"email": "b@example.com"}]}}"#;
    assert_eq!(post(body, "acme").await.unwrap().status(), 200);
    assert_eq!(&up.one().body[..], body.as_bytes());
    let pet = s.http.get(url("/pets/12")).send().await.unwrap();
    assert_eq!(pet.status(), 200);
    let pet: serde_json::Value = pet.json().await.unwrap();
    assert_eq!((pet["name"].as_str(), pet.get("owner_ssn")), (Some("Rex"), None), "{pet}");
    assert_eq!(s.http.get(url("/pets?limit=10&tag=a&tag=b")).send().await.unwrap().status(), 200);
    up.clear();

    // 3.0 semantics: nullable, boolean exclusiveMinimum, additionalProperties, $ref chains.
    let p = assert_problem(post(r#"{"name": "", "age": 0, "owner": {"friends": [{}]}, "colour": "red"}"#, "acme").await.unwrap(), 400).await;
    let list = errors(&p);
    for (pointer, reason) in [("/name", "at least 1"), ("/age", "greater than 0"), ("/owner/email", "required"), ("/owner/friends/0/email", "required"), ("/colour", "not allowed")] {
        assert!(has(&list, "body", pointer, reason), "{pointer}: {list:?}");
    }
    let p = assert_problem(post(r#"{"name": "Rex"}"#, "ACME!").await.unwrap(), 400).await;
    assert!(has(&errors(&p), "header", "/x-tenant", "pattern"), "{p}");
    let p = assert_problem(s.http.get(url("/pets/0")).send().await.unwrap(), 400).await;
    assert!(has(&errors(&p), "path", "/petId", "at least 1"), "{p}");
    let p = assert_problem(s.http.get(url("/pets?limit=1000")).send().await.unwrap(), 400).await;
    assert!(has(&errors(&p), "query", "/limit", "at most 100"), "{p}");
    let resp = s.http.post(url("/pets")).header("content-type", "text/xml").header("x-tenant", "acme").body("<pet/>").send().await.unwrap();
    assert_problem(resp, 415).await;
    // No request body in the document: none accepted; a method it lacks is 405; a path it lacks 404.
    let resp = s.http.delete(url("/pets/3")).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_problem(resp, 413).await;
    assert_problem(s.http.put(url("/pets/3")).send().await.unwrap(), 405).await;
    assert_problem(s.http.get(url("/files/a.json")).send().await.unwrap(), 404).await;
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn an_openapi_3_1_document_becomes_routes_that_the_gateway_enforces() {
    let up = Upstream::start().await;
    let (s, output) = import("tests/data/orders-3.1.json", &up).await;
    up.set_mode(super::upstream::Mode::Json(r#"{"id": "ord_42"}"#));
    assert!(output.contains("path = \"/orders/{order_id}\""), "{output}");
    let put = |ct: &'static str, body: &'static str| {
        s.http.put(format!("{}/orders/ord_42", base(&s))).header("content-type", ct).header("if-match", "\"v1\"").body(body).send()
    };
    let body = r#"{"items": [{"sku": "A-1", "qty": 2}], "note": null, "priority": null}"#;
    assert_eq!(put("application/json", body).await.unwrap().status(), 200);
    assert_eq!(&up.one().body[..], body.as_bytes());
    up.clear();
    // Another JSON media type with a schema of its own (body_schemas).
    assert_eq!(put("application/merge-patch+json", r#"{"note": "x"}"#).await.unwrap().status(), 200);
    up.clear();
    let p = assert_problem(put("application/merge-patch+json", "[1]").await.unwrap(), 400).await;
    assert!(has(&errors(&p), "body", "", "type object"), "{p}");

    let p = assert_problem(put("application/json", r#"{"items": [{"sku": "", "qty": 0}], "priority": "urgent"}"#).await.unwrap(), 400).await;
    let list = errors(&p);
    for (pointer, reason) in [("/items/0/sku", "at least 1"), ("/items/0/qty", "greater than 0"), ("/priority", "allowed values")] {
        assert!(has(&list, "body", pointer, reason), "{pointer}: {list:?}");
    }
    let p = assert_problem(put("application/json", r#"{"items": []}"#).await.unwrap(), 400).await;
    assert!(has(&errors(&p), "body", "/items", "at least 1 items"), "{p}");
    let p = assert_problem(s.http.put(format!("{}/orders/42", base(&s))).header("content-type", "application/json").body(body).send().await.unwrap(), 400).await;
    let list = errors(&p);
    assert!(has(&list, "path", "/order_id", "pattern"), "{list:?}");
    assert!(has(&list, "header", "/if-match", "required"), "{list:?}");
    let p = assert_problem(s.http.get(format!("{}/orders/ord_1?expand=maybe", base(&s))).send().await.unwrap(), 400).await;
    assert!(has(&errors(&p), "query", "/expand", "type boolean"), "{p}");
    assert_problem(put("text/plain", "hi").await.unwrap(), 415).await;
    assert!(up.seen().is_empty());
    assert_eq!(s.http.get(format!("{}/orders/ord_1?expand=true", base(&s))).send().await.unwrap().status(), 200);
}
