//! Server-rendered pages of the browser flows (minijinja, autoescaped): the error page shown
//! when a request cannot go back to the client, and the `form_post` response page. The
//! handler adds the headers every page gets ([`CONTENT_SECURITY_POLICY`] and friends).
//!
//! Pages load one stylesheet from the issuer (`/assets/warden.css`, [`STYLESHEET`]) and run no
//! script except the `form_post` page's one-line auto-submit, allowed by its hash
//! ([`form_post_csp`]).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use minijinja::{Environment, context};

/// The stylesheet every page links to.
pub const STYLESHEET: &str = include_str!("templates/warden.css");

/// The `form_post` page's script: submits the form at once (the page has a button for when
/// scripts are off).
const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

/// The policy of every page but the `form_post` one: nothing but our stylesheet, no framing,
/// forms post only back to us.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of the login, consent and logout confirmation pages: [`CONTENT_SECURITY_POLICY`],
/// except that their forms may also lead to the client (`origin` of its redirect or
/// post-logout redirect URI, as for [`form_post_csp`]): browsers check `form-action` on every
/// redirect that follows a form's submission (CSP 3 §6.2.1; Chromium does), and signing in,
/// answering the consent page or confirming a logout ends with a 303 to the client.
pub fn interaction_csp(origin: &str) -> String {
    format!("default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self' {origin}; frame-ancestors 'none'; base-uri 'none'")
}

/// The policy of a `form_post` page: its one script by hash, and a form that posts to the
/// client's redirect URI (`origin`, e.g. `https://app.example`; a private-use scheme
/// `com.example.app:`).
pub fn form_post_csp(origin: &str) -> String {
    let hash = STANDARD.encode(digest::digest(&digest::SHA256, FORM_POST_SCRIPT.as_bytes()));
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' https: data:; script-src 'sha256-{hash}'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The page templates, compiled once.
pub struct Pages {
    env: Environment<'static>,
    brand: String,
    assets: String,
}

impl Pages {
    /// The built-in templates, naming the product `brand`, with assets under `assets` (the
    /// issuer's path + `/assets`).
    pub fn new(brand: &str, assets: &str) -> Self {
        let mut env = Environment::new();
        // Autoescaping is on for `.html` names; every template below is one.
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("error.html", include_str!("templates/error.html")),
            ("form_post.html", include_str!("templates/form_post.html")),
            ("login.html", include_str!("templates/login.html")),
            ("consent.html", include_str!("templates/consent.html")),
            ("logout.html", include_str!("templates/logout.html")),
            ("message.html", include_str!("templates/message.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                // The templates are part of the binary; a test renders each one.
                tracing::error!(template = name, error = %e, "built-in template does not compile");
            }
        }
        Self { env, brand: brand.to_owned(), assets: assets.to_owned() }
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        self.env.get_template(name).and_then(|t| t.render(ctx)).unwrap_or_else(|e| {
            tracing::error!(template = name, error = %e, "page rendering failed");
            "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
        })
    }

    /// The error page: a title, the reason, and the request id to quote.
    pub fn error(&self, title: &str, message: &str, request_id: Option<&str>) -> String {
        self.render(
            "error.html",
            context! { brand => &self.brand, assets => &self.assets, title, message, request_id },
        )
    }

    /// The login page for an interaction: posts to `action` with the CSRF token; shows
    /// `error` (one message for every failed attempt) and keeps the username typed.
    pub fn login(&self, action: &str, csrf: &str, client_name: &str, username: &str, error: Option<&str>) -> String {
        self.render(
            "login.html",
            context! { brand => &self.brand, assets => &self.assets, action, csrf, client_name, username, error },
        )
    }

    /// The consent page: who asks, for what (in plain words), with links to the client's
    /// policy and terms when it registered them.
    pub fn consent(&self, action: &str, csrf: &str, client_name: &str, username: &str, scopes: &[String], links: &[(&str, &str)]) -> String {
        let links: Vec<minijinja::Value> = links.iter().map(|&(label, url)| context! { label, url }).collect();
        let scopes: Vec<minijinja::Value> = scopes.iter().map(|s| minijinja::Value::from(s.as_str())).collect();
        self.render(
            "consent.html",
            context! { brand => &self.brand, assets => &self.assets, action, csrf, client_name, username, scopes, links },
        )
    }

    /// The logout confirmation (OIDC RP-Initiated Logout §2: the OP asks the user).
    pub fn logout(&self, action: &str, csrf: &str, logout: &str, username: &str, client_name: Option<&str>) -> String {
        self.render(
            "logout.html",
            context! { brand => &self.brand, assets => &self.assets, action, csrf, logout, username, client_name },
        )
    }

    /// A plain message page (e.g. "You are signed out").
    pub fn message(&self, title: &str, message: &str) -> String {
        self.render("message.html", context! { brand => &self.brand, assets => &self.assets, title, message })
    }

    /// OAuth 2.0 Form Post Response Mode §2: a page that posts `fields` to `action`.
    pub fn form_post(&self, action: &str, fields: &[(&str, &str)]) -> String {
        self.render(
            "form_post.html",
            context! { brand => &self.brand, assets => &self.assets, action, fields => fields.iter().map(|(k, v)| minijinja::Value::from_iter([*k, *v])).collect::<minijinja::Value>(), script => FORM_POST_SCRIPT },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_page_escapes_what_it_shows() {
        let p = Pages::new("Warden", "/assets");
        let html = p.error("Bad <request>", "redirect_uri \"<script>alert(1)</script>\" is not registered", Some("r-1"));
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("Bad &lt;request&gt;"));
        // minijinja escapes "/" too (as &#x2f;), which HTML decodes back in text and attributes.
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
        assert!(!html.contains("<script>"), "no script on error pages");
        assert!(html.contains("<code>r-1</code>"));
        assert!(html.contains(r#"href="&#x2f;assets/warden.css""#));
    }

    #[test]
    fn the_form_post_page_escapes_values_and_its_script_matches_the_policy_hash() {
        let p = Pages::new("Warden", "/assets");
        let html = p.form_post("https://app.example/cb?x=1&y=2", &[("state", "\"><img src=x>"), ("code", "c1")]);
        assert!(html.contains(r#"action="https:&#x2f;&#x2f;app.example&#x2f;cb?x=1&amp;y=2""#));
        assert!(html.contains(r#"name="state" value="&quot;&gt;&lt;img src=x&gt;""#));
        assert!(html.contains(r#"name="code" value="c1""#));
        // The one script on the page is the one the policy's hash allows.
        let script = html.split("<script>").nth(1).and_then(|s| s.split("</script>").next()).unwrap();
        let hash = STANDARD.encode(digest::digest(&digest::SHA256, script.as_bytes()));
        assert!(form_post_csp("https://app.example").contains(&format!("'sha256-{hash}'")));
    }
}
