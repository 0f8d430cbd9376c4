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

/// The built-in templates.
const TEMPLATES: [(&str, &str); 7] = [
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
    ("form_post.html", include_str!("templates/form_post.html")),
    ("login.html", include_str!("templates/login.html")),
    ("consent.html", include_str!("templates/consent.html")),
    ("logout.html", include_str!("templates/logout.html")),
    ("message.html", include_str!("templates/message.html")),
];

/// The stylesheet with the operator's accent colour, if any (`[branding] accent_color`, checked
/// to be `#rrggbb` by the configuration).
pub fn stylesheet(accent: Option<&str>) -> String {
    match accent {
        Some(c) => format!("{STYLESHEET}:root {{ --accent: {c}; }}\n"),
        None => STYLESHEET.to_owned(),
    }
}

/// The page templates, compiled once.
pub struct Pages {
    env: Environment<'static>,
    brand: String,
    logo: Option<String>,
    assets: String,
    /// The stylesheet with the operator's accent colour, rendered once.
    css: bytes::Bytes,
}

impl Pages {
    /// The built-in templates, naming the product `brand`, with assets under `assets` (the
    /// issuer's path + `/assets`).
    pub fn built_in(brand: &str, assets: &str) -> Self {
        let mut env = Environment::new();
        // Autoescaping is on for `.html` names; every template is one.
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                // The templates are part of the binary; a test renders each one.
                tracing::error!(template = name, error = %e, "built-in template does not compile");
            }
        }
        Self { env, brand: brand.to_owned(), logo: None, assets: assets.to_owned(), css: bytes::Bytes::from_static(STYLESHEET.as_bytes()) }
    }

    /// The pages as `[branding]` configures them: the built-in templates, each replaced by a
    /// file of the same name in `template_dir` when there is one. An override that cannot be
    /// read, does not compile, or does not render is an error naming the file.
    pub fn new(branding: &super::Branding, assets: &str) -> Result<Self, String> {
        let mut pages = Self::built_in(&branding.name, assets);
        pages.logo = branding.logo_url.clone();
        pages.css = stylesheet(branding.accent_color.as_deref()).into();
        let Some(dir) = &branding.template_dir else { return Ok(pages) };
        if !dir.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        for (name, _) in TEMPLATES {
            let path = dir.join(name);
            if !path.exists() {
                continue;
            }
            let source = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            pages.env.add_template_owned(name.to_owned(), source).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        // Render each page once with sample values, so a template that compiles but fails
        // (an unknown filter, a broken block) is caught here and not by a user.
        pages.try_all().map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(pages)
    }

    /// The stylesheet pages link to (`/assets/warden.css`); a cheap clone per request.
    pub fn css(&self) -> bytes::Bytes {
        self.css.clone()
    }

    fn try_all(&self) -> Result<(), minijinja::Error> {
        let base = context! { brand => &self.brand, logo => &self.logo, assets => &self.assets };
        let samples = [
            ("error.html", context! { title => "t", message => "m", request_id => "r", ..base.clone() }),
            ("form_post.html", context! { action => "https://a.example/cb", fields => vec![vec!["k", "v"]], script => FORM_POST_SCRIPT, ..base.clone() }),
            ("login.html", context! { action => "/a", csrf => "c", client_name => "App", username => "u", error => "e", ..base.clone() }),
            ("consent.html", context! { action => "/a", csrf => "c", client_name => "App", username => "u", scopes => vec!["s"], links => Vec::<minijinja::Value>::new(), client_logo => "https://a.example/l.png", ..base.clone() }),
            ("logout.html", context! { action => "/a", csrf => "c", logout => "l", username => "u", client_name => "App", ..base.clone() }),
            ("message.html", context! { title => "t", message => "m", ..base }),
        ];
        for (name, ctx) in samples {
            self.env.get_template(name)?.render(ctx)?;
        }
        Ok(())
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
            context! { brand => &self.brand, logo => &self.logo, assets => &self.assets, title, message, request_id },
        )
    }

    /// The login page for an interaction: posts to `action` with the CSRF token; shows
    /// `error` (one message for every failed attempt) and keeps the username typed.
    pub fn login(&self, action: &str, csrf: &str, client_name: &str, username: &str, error: Option<&str>) -> String {
        self.render(
            "login.html",
            context! { brand => &self.brand, logo => &self.logo, assets => &self.assets, action, csrf, client_name, username, error },
        )
    }

    /// The consent page: who asks, for what (in plain words), with links to the client's
    /// policy and terms when it registered them.
    pub fn consent(&self, action: &str, csrf: &str, client: (&str, Option<&str>), username: &str, scopes: &[String], links: &[(&str, &str)]) -> String {
        let (client_name, client_logo) = client;
        let links: Vec<minijinja::Value> = links.iter().map(|&(label, url)| context! { label, url }).collect();
        let scopes: Vec<minijinja::Value> = scopes.iter().map(|s| minijinja::Value::from(s.as_str())).collect();
        self.render(
            "consent.html",
            context! { brand => &self.brand, logo => &self.logo, assets => &self.assets, action, csrf, client_name, client_logo, username, scopes, links },
        )
    }

    /// The logout confirmation (OIDC RP-Initiated Logout §2: the OP asks the user).
    pub fn logout(&self, action: &str, csrf: &str, logout: &str, username: &str, client_name: Option<&str>) -> String {
        self.render(
            "logout.html",
            context! { brand => &self.brand, logo => &self.logo, assets => &self.assets, action, csrf, logout, username, client_name },
        )
    }

    /// A plain message page (e.g. "You are signed out").
    pub fn message(&self, title: &str, message: &str) -> String {
        self.render("message.html", context! { brand => &self.brand, logo => &self.logo, assets => &self.assets, title, message })
    }

    /// OAuth 2.0 Form Post Response Mode §2: a page that posts `fields` to `action`.
    pub fn form_post(&self, action: &str, fields: &[(&str, &str)]) -> String {
        self.render(
            "form_post.html",
            context! { brand => &self.brand, logo => &self.logo, assets => &self.assets, action, fields => fields.iter().map(|(k, v)| minijinja::Value::from_iter([*k, *v])).collect::<minijinja::Value>(), script => FORM_POST_SCRIPT },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_page_escapes_what_it_shows() {
        let p = Pages::built_in("Warden", "/assets");
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
        let p = Pages::built_in("Warden", "/assets");
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

#[cfg(test)]
mod branding_tests {
    use super::*;
    use crate::oauth::Branding;

    fn branding(dir: Option<&std::path::Path>) -> Branding {
        Branding { name: "Acme ID".into(), logo_url: Some("https://acme.example/logo.png".into()), accent_color: Some("#aa3300".into()), template_dir: dir.map(Into::into) }
    }

    #[test]
    fn the_operator_names_the_product_shows_a_logo_and_colours_the_stylesheet() {
        let p = Pages::new(&branding(None), "/assets").unwrap();
        let html = p.message("Hello", "there");
        assert!(html.contains(r#"alt="Acme ID""#) && html.contains("acme.example"), "{html}");
        assert!(stylesheet(Some("#aa3300")).ends_with(":root { --accent: #aa3300; }\n"));
        assert_eq!(stylesheet(None), STYLESHEET);
        assert!(std::str::from_utf8(&p.css()).unwrap().ends_with(":root { --accent: #aa3300; }\n"), "rendered once for /assets/warden.css");
    }

    #[test]
    fn a_template_directory_replaces_pages_by_name_and_a_broken_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("message.html"), "<p>custom {{ title }} for {{ brand }}</p>").unwrap();
        let p = Pages::new(&branding(Some(dir.path())), "/assets").unwrap();
        assert_eq!(p.message("T", "m"), "<p>custom T for Acme ID</p>");
        assert!(p.login("/a", "c", "App", "u", None).contains("Sign in"), "the others stay built in");
        std::fs::write(dir.path().join("login.html"), "{% if %}").unwrap();
        let err = Pages::new(&branding(Some(dir.path())), "/assets").err().unwrap();
        assert!(err.contains("login.html"), "{err}");
        std::fs::write(dir.path().join("login.html"), "{{ username | no_such_filter }}").unwrap();
        assert!(Pages::new(&branding(Some(dir.path())), "/assets").is_err(), "a template that fails to render is caught too");
        assert!(Pages::new(&branding(Some(&dir.path().join("missing"))), "/assets").is_err());
    }
}
