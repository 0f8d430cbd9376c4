//! End-users who sign in at the provider: the account (username, disabled flag, password hash)
//! and the OpenID Connect Core 1.0 §5.1 standard claims stored for them.

use serde::{Deserialize, Serialize};
use std::fmt;

string_id!(
    /// A user's stable subject identifier (`sub`, OIDC Core §2): 128 random bits, base64url,
    /// generated at creation. Never the username, never reused, never changed.
    UserId
);

/// The longest username, in characters.
pub const USERNAME_MAX: usize = 64;

/// A username as entered (surrounding whitespace trimmed) and its normalised form: ASCII
/// lower-case, which is what uniqueness and look-ups use, so `Alice` and `alice` are one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    /// Checks and normalises a username: 1 to [`USERNAME_MAX`] characters from `A-Z a-z 0-9`
    /// and `. _ - @ +`, starting with a letter or a digit (so an e-mail address is a valid
    /// username, and nothing in it can be mistaken for an option or a path).
    pub fn parse(raw: &str) -> Result<Username, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("a username must not be empty".into());
        }
        if s.chars().count() > USERNAME_MAX {
            return Err(format!("a username has at most {USERNAME_MAX} characters"));
        }
        if let Some(bad) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || ".-_@+".contains(*c))) {
            return Err(format!(
                "a username may contain only letters A-Z, digits and . _ - @ + (found {bad:?})"
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("a username must start with a letter or a digit".into());
        }
        Ok(Username { display: s.to_owned(), key: s.to_ascii_lowercase() })
    }

    /// As entered, trimmed.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The normalised (lower-case) form: unique across users.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// The normalised form of a username for a look-up, without checking it: a name that could
/// never have been created simply finds nobody.
pub fn username_key(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

/// An Argon2id password hash in PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$…`).
/// Not the password, but still offline-attackable: `Debug` is redacted and it is never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// `address` (OIDC Core §5.1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Full mailing address, formatted for display (may contain newlines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// Street address (house number, street name, P.O. box, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// City or locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// State, province, prefecture or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Zip or postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl Address {
    /// Whether no member is set.
    pub fn is_empty(&self) -> bool {
        *self == Address::default()
    }
}

/// The standard claims of OIDC Core §5.1, as stored for a user. `sub` is [`User::id`] and
/// `updated_at` is [`User::updated_at`]; every other member is optional. Serialized with the
/// spec's member names, absent members omitted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Full name, in displayable form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given (first) name(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Surname(s) or family name(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Middle name(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Casual name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// Shorthand name the user wishes to be referred to at the client (not unique).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Profile page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Profile picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Web page or blog URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Preferred e-mail address (RFC 5322 addr-spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the e-mail address was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Gender (`female`, `male`, or another value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Birthday, ISO 8601 `YYYY-MM-DD`, `YYYY` or `0000-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// Time zone from the IANA database, e.g. `Europe/Paris`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    /// BCP 47 language tag, e.g. `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Preferred telephone number, E.164 recommended (`+1 (425) 555-1212`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Whether the phone number was verified.
    #[serde(default)]
    pub phone_number_verified: bool,
    /// Preferred postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// The longest value of one claim, in characters.
pub const CLAIM_MAX: usize = 512;

impl Claims {
    /// Checks every value: a clear message naming the claim for the first bad one.
    /// - no value is empty, longer than [`CLAIM_MAX`] characters, or holds control characters
    ///   (the formatted address may hold line breaks);
    /// - `email` is one `local@domain` without spaces;
    /// - `profile`, `picture`, `website` are absolute `https://` or `http://` URLs;
    /// - `birthdate` is `YYYY-MM-DD`, `YYYY` or `0000-MM-DD`;
    /// - `phone_number` holds digits and `+ - ( ) .` spaces, `;ext=` style extensions, at least
    ///   one digit;
    /// - `locale` is a BCP 47-shaped tag (`en`, `en-US`, `zh-Hant-TW`), `zoneinfo` an IANA
    ///   name shape (`Europe/Paris`, `UTC`);
    /// - `email_verified` / `phone_number_verified` need the value they vouch for.
    pub fn validate(&self) -> Result<(), String> {
        let text: [(&str, &Option<String>); 15] = [
            ("name", &self.name),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("middle_name", &self.middle_name),
            ("nickname", &self.nickname),
            ("preferred_username", &self.preferred_username),
            ("profile", &self.profile),
            ("picture", &self.picture),
            ("website", &self.website),
            ("email", &self.email),
            ("gender", &self.gender),
            ("birthdate", &self.birthdate),
            ("zoneinfo", &self.zoneinfo),
            ("locale", &self.locale),
            ("phone_number", &self.phone_number),
        ];
        for (claim, value) in text {
            if let Some(v) = value {
                plain_text(claim, v, false)?;
            }
        }
        if let Some(a) = &self.address {
            let parts = [
                ("address.formatted", &a.formatted, true),
                ("address.street_address", &a.street_address, true),
                ("address.locality", &a.locality, false),
                ("address.region", &a.region, false),
                ("address.postal_code", &a.postal_code, false),
                ("address.country", &a.country, false),
            ];
            for (claim, value, lines) in parts {
                if let Some(v) = value {
                    plain_text(claim, v, lines)?;
                }
            }
        }
        if let Some(e) = &self.email {
            let ok = matches!(e.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
                && !e.contains(char::is_whitespace);
            if !ok {
                return Err(format!("email \"{e}\" is not an e-mail address (local@domain)"));
            }
        }
        for (claim, value) in [("profile", &self.profile), ("picture", &self.picture), ("website", &self.website)] {
            if let Some(u) = value {
                let ok = ["https://", "http://"].iter().any(|p| {
                    u.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)) && u.len() > p.len()
                }) && !u.contains(char::is_whitespace);
                if !ok {
                    return Err(format!("{claim} \"{u}\" must be an absolute https:// or http:// URL"));
                }
            }
        }
        if let Some(b) = &self.birthdate
            && !is_birthdate(b)
        {
            return Err(format!("birthdate \"{b}\" must be YYYY-MM-DD, YYYY or 0000-MM-DD"));
        }
        if let Some(p) = &self.phone_number {
            let ok = p.chars().any(|c| c.is_ascii_digit())
                && p.chars().all(|c| c.is_ascii_alphanumeric() || " +-().;=".contains(c));
            if !ok {
                return Err(format!("phone_number \"{p}\" must be a telephone number, e.g. +1 (425) 555-1212"));
            }
        }
        if let Some(l) = &self.locale {
            let ok = l.split(['-', '_']).enumerate().all(|(i, part)| {
                (1..=8).contains(&part.len())
                    && part.chars().all(|c| c.is_ascii_alphanumeric())
                    && (i > 0 || part.chars().all(|c| c.is_ascii_alphabetic()))
            });
            if !ok {
                return Err(format!("locale \"{l}\" must be a BCP 47 language tag, e.g. en-US"));
            }
        }
        if let Some(z) = &self.zoneinfo {
            let ok = z.split('/').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
            });
            if !ok {
                return Err(format!("zoneinfo \"{z}\" must be a time zone name, e.g. Europe/Paris"));
            }
        }
        if self.email_verified && self.email.is_none() {
            return Err("email_verified needs an email".into());
        }
        if self.phone_number_verified && self.phone_number.is_none() {
            return Err("phone_number_verified needs a phone_number".into());
        }
        Ok(())
    }
}

fn plain_text(claim: &str, v: &str, lines: bool) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err(format!("{claim} must not be empty"));
    }
    if v.chars().count() > CLAIM_MAX {
        return Err(format!("{claim} has at most {CLAIM_MAX} characters"));
    }
    if v.chars().any(|c| c.is_control() && !(lines && (c == '\n' || c == '\r'))) {
        return Err(format!("{claim} must not contain control characters"));
    }
    Ok(())
}

fn is_birthdate(b: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_digit());
    match b.split('-').collect::<Vec<_>>()[..] {
        [y] => digits(y, 4),
        [y, m, d] => {
            digits(y, 4)
                && digits(m, 2)
                && digits(d, 2)
                && (1..=12).contains(&m.parse::<u8>().unwrap_or(0))
                && (1..=31).contains(&d.parse::<u8>().unwrap_or(0))
        }
        _ => false,
    }
}

/// A user account.
#[derive(Clone, Debug)]
pub struct User {
    /// The stable subject identifier (`sub`).
    pub id: UserId,
    /// The username, unique case-insensitively.
    pub username: Username,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// The OIDC standard claims.
    pub claims: Claims,
    /// The Argon2id hash of the password; `None`: no password set, password sign-in fails.
    pub password_hash: Option<PasswordHash>,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change of the record (unix seconds); the `updated_at` claim.
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_compared_in_lower_case() {
        let u = Username::parse("  Alice.Smith@example.com ").unwrap();
        assert_eq!(u.as_str(), "Alice.Smith@example.com");
        assert_eq!(u.key(), "alice.smith@example.com");
        assert_eq!(username_key(" ALICE "), "alice");
        assert!(Username::parse(&"a".repeat(USERNAME_MAX)).is_ok());
    }

    #[test]
    fn bad_usernames_are_refused_with_the_reason() {
        for (raw, reason) in [
            ("   ", "empty"),
            ("al ice", "only letters"),
            ("álvaro", "only letters"),
            ("a/b", "only letters"),
            ("-rf", "start with"),
            (".hidden", "start with"),
        ] {
            let e = Username::parse(raw).unwrap_err();
            assert!(e.contains(reason), "{raw:?}: {e}");
        }
        assert!(Username::parse(&"a".repeat(USERNAME_MAX + 1)).unwrap_err().contains("at most 64"));
    }

    #[test]
    fn claims_are_checked_one_by_one() {
        let ok = Claims {
            name: Some("Ada Lovelace".into()),
            email: Some("ada@example.com".into()),
            email_verified: true,
            phone_number: Some("+44 (20) 7946-0958;ext=12".into()),
            phone_number_verified: true,
            birthdate: Some("1815-12-10".into()),
            locale: Some("en-GB".into()),
            zoneinfo: Some("Europe/London".into()),
            website: Some("https://ada.example".into()),
            address: Some(Address { formatted: Some("1 St James's Square\nLondon".into()), ..Default::default() }),
            ..Default::default()
        };
        ok.validate().unwrap();
        let bad: Vec<(Claims, &str)> = vec![
            (Claims { email: Some("ada".into()), ..ok.clone() }, "email"),
            (Claims { email: Some("a da@x".into()), ..ok.clone() }, "email"),
            (Claims { website: Some("javascript:alert(1)".into()), ..ok.clone() }, "website"),
            (Claims { picture: Some("https://".into()), ..ok.clone() }, "picture"),
            (Claims { birthdate: Some("10/12/1815".into()), ..ok.clone() }, "birthdate"),
            (Claims { birthdate: Some("1815-13-10".into()), ..ok.clone() }, "birthdate"),
            (Claims { phone_number: Some("call me".into()), ..ok.clone() }, "phone_number"),
            (Claims { locale: Some("en US".into()), ..ok.clone() }, "locale"),
            (Claims { locale: Some("12-US".into()), ..ok.clone() }, "locale"),
            (Claims { zoneinfo: Some("Europe//Paris".into()), ..ok.clone() }, "zoneinfo"),
            (Claims { name: Some(" ".into()), ..ok.clone() }, "name must not be empty"),
            (Claims { name: Some("x".repeat(CLAIM_MAX + 1)), ..ok.clone() }, "at most"),
            (Claims { nickname: Some("a\u{7}b".into()), ..ok.clone() }, "control"),
            (Claims { address: Some(Address { locality: Some("a\nb".into()), ..Default::default() }), ..ok.clone() }, "address.locality"),
            (Claims { email: None, ..ok.clone() }, "email_verified"),
            (Claims { phone_number: None, ..ok.clone() }, "phone_number_verified"),
        ];
        for (c, what) in bad {
            let e = c.validate().unwrap_err();
            assert!(e.contains(what), "expected {what:?} in {e:?}");
        }
        for b in ["1815", "0000-12-10"] {
            Claims { birthdate: Some(b.into()), ..Default::default() }.validate().unwrap();
        }
    }

    #[test]
    fn claims_serialize_with_the_spec_names_and_omit_absent_ones() {
        let c = Claims { given_name: Some("Ada".into()), ..Default::default() };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v, serde_json::json!({"given_name": "Ada", "email_verified": false, "phone_number_verified": false}));
        let back: Claims = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        assert_eq!(format!("{:?}", PasswordHash("$argon2id$secret".into())), "PasswordHash(..)");
    }
}
