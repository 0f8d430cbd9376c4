//! CSRF tokens for the login and consent forms, bound to the browser: each browser gets a
//! random cookie, and a form's token is an HMAC of that cookie and the interaction id under a
//! key derived from the master key. A form fetched in one browser and posted from another (or
//! by a cross-site page, which cannot read the cookie or the token) fails; every node computes
//! the same tokens without storing them.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Derives and checks tokens.
pub struct Csrf {
    key: hmac::Key,
}

impl Csrf {
    /// With 32 secret bytes every node shares.
    pub fn new(key: &[u8; 32]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, key) }
    }

    fn message(cookie: &str, interaction: &str) -> Vec<u8> {
        format!("csrf/v1\n{cookie}\n{interaction}").into_bytes()
    }

    /// The token a form for `interaction` carries in the browser holding `cookie`.
    pub fn token(&self, cookie: &str, interaction: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, &Self::message(cookie, interaction)))
    }

    /// Whether `token` is the one for this cookie and interaction (constant time). An empty
    /// cookie never matches.
    pub fn check(&self, cookie: &str, interaction: &str, token: &str) -> bool {
        if cookie.is_empty() {
            return false;
        }
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else { return false };
        hmac::verify(&self.key, &Self::message(cookie, interaction), &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_only_for_its_browser_and_interaction() {
        let c = Csrf::new(&[1; 32]);
        let t = c.token("browser-a", "i1");
        assert!(c.check("browser-a", "i1", &t));
        assert!(!c.check("browser-b", "i1", &t), "another browser");
        assert!(!c.check("browser-a", "i2", &t), "another interaction");
        assert!(!c.check("", "i1", &c.token("", "i1")), "no cookie, no token");
        assert!(!Csrf::new(&[2; 32]).check("browser-a", "i1", &t), "another key");
        assert!(!c.check("browser-a", "i1", ""));
        assert!(!c.check("browser-a", "i1", "!!"));
    }
}
