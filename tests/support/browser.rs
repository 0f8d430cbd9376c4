//! A minimal browser for the browser flows: its own cookie jar, no redirect following (tests
//! look at each hop), and helpers to read the pages.

use super::TestServer;
use reqwest::{Response, StatusCode};
use std::collections::HashMap;

/// One browser: its own cookie jar; never follows redirects (tests look at each hop).
pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    base: String,
}

impl Browser {
    pub fn new(s: &TestServer) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, cookies: HashMap::new(), base: s.url("") }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", url::Url::parse(&self.base).unwrap().origin().ascii_serialization()) }
    }

    fn keep(&mut self, resp: &Response) {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if v.contains("Max-Age=0") { self.cookies.remove(k); } else { self.cookies.insert(k.into(), val.into()); }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub async fn get(&mut self, url: &str) -> Response {
        let resp = self.http.get(self.absolute(url)).header("cookie", self.cookie_header()).send().await.unwrap();
        self.keep(&resp);
        resp
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Response {
        let resp = self.http.post(self.absolute(url)).header("cookie", self.cookie_header()).form(form).send().await.unwrap();
        self.keep(&resp);
        resp
    }
}

pub fn path_of(url: &str) -> String {
    url::Url::parse(url).unwrap().path().trim_end_matches('/').to_owned()
}

pub fn location(resp: &Response) -> String {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "expected a 303");
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// The value of a hidden or text input in a page.
pub fn input(html: &str, name: &str) -> String {
    let at = html.find(&format!(r#"name="{name}""#)).unwrap_or_else(|| panic!("no input {name} in {html}"));
    let rest = &html[at..];
    let v = rest.split(r#"value=""#).nth(1).unwrap();
    v[..v.find('"').unwrap()].to_owned()
}

pub fn form_action(html: &str) -> String {
    let v = html.split(r#"action=""#).nth(1).unwrap();
    v[..v.find('"').unwrap()].replace("&#x2f;", "/")
}
