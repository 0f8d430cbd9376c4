//! Which of a user's claims a client receives (OIDC Core §5.4, §5.5): the one mapping from
//! granted scopes and a `claims` request member to a JSON object, used for the ID token and
//! for userinfo.
//!
//! - scopes (§5.4): `profile`, `email`, `address`, `phone` each stand for a set of claims.
//!   When the token endpoint issues an access token, these go to userinfo only — the ID token
//!   gets none by scope (the caller passes no scopes then);
//! - the `claims` request member (§5.5) names claims one by one, for the ID token
//!   (`id_token`) or for userinfo (`userinfo`); `null`, `{"essential": true}` and value
//!   requests all ask for the claim (Warden returns what it holds; it never invents a value
//!   to satisfy `value`/`values`);
//! - a claim the user has no value for is omitted, never `null` (§5.3.2); `email_verified`
//!   and `phone_number_verified` only with the value they vouch for.

use crate::model::User;
use serde_json::{Map, Value};

/// The claims each scope stands for (OIDC Core §5.4).
pub(super) const SCOPE_CLAIMS: &[(&str, &[&str])] = &[
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// The user's value of one standard claim (§5.1), if they have one.
fn claim_value(user: &User, name: &str) -> Option<Value> {
    let c = &user.claims;
    let text = |v: &Option<String>| v.as_ref().map(|s| Value::String(s.clone()));
    match name {
        "name" => text(&c.name),
        "family_name" => text(&c.family_name),
        "given_name" => text(&c.given_name),
        "middle_name" => text(&c.middle_name),
        "nickname" => text(&c.nickname),
        "preferred_username" => text(&c.preferred_username),
        "profile" => text(&c.profile),
        "picture" => text(&c.picture),
        "website" => text(&c.website),
        "gender" => text(&c.gender),
        "birthdate" => text(&c.birthdate),
        "zoneinfo" => text(&c.zoneinfo),
        "locale" => text(&c.locale),
        "updated_at" => Some(Value::from(user.updated_at)),
        "email" => text(&c.email),
        "email_verified" => c.email.as_ref().map(|_| Value::Bool(c.email_verified)),
        "address" => c.address.as_ref().filter(|a| !a.is_empty()).and_then(|a| serde_json::to_value(a).ok()),
        "phone_number" => text(&c.phone_number),
        "phone_number_verified" => c.phone_number.as_ref().map(|_| Value::Bool(c.phone_number_verified)),
        _ => None,
    }
}

/// The user's claims released for `scopes` and the `requested` member of a `claims`
/// request (an object whose keys are claim names), without `sub` (the caller sets it).
pub(super) fn user_claims(user: &User, scopes: &[&str], requested: Option<&Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut add = |name: &str| {
        if !out.contains_key(name)
            && let Some(v) = claim_value(user, name)
        {
            out.insert(name.to_owned(), v);
        }
    };
    for (scope, names) in SCOPE_CLAIMS {
        if scopes.contains(scope) {
            names.iter().for_each(|n| add(n));
        }
    }
    if let Some(Value::Object(members)) = requested {
        members.keys().for_each(|n| add(n));
    }
    out
}

/// The member `name` (`id_token` or `userinfo`) of a `claims` request parameter.
pub(super) fn requested_member<'a>(claims: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    claims.and_then(|c| c.get(name)).filter(|v| v.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Claims, UserId, Username};
    use serde_json::json;

    fn user() -> User {
        User {
            id: UserId("u1".into()),
            username: Username::parse("ada").unwrap(),
            disabled: false,
            claims: Claims {
                name: Some("Ada Lovelace".into()),
                email: Some("ada@example.com".into()),
                email_verified: true,
                address: Some(Address { locality: Some("London".into()), ..Default::default() }),
                ..Default::default()
            },
            password_hash: None,
            created_at: 1,
            updated_at: 42,
        }
    }

    #[test]
    fn scopes_release_their_claims_and_nothing_absent() {
        let u = user();
        let v = Value::Object(user_claims(&u, &["profile", "email"], None));
        assert_eq!(v, json!({"name": "Ada Lovelace", "updated_at": 42, "email": "ada@example.com", "email_verified": true}));
        let v = Value::Object(user_claims(&u, &["phone", "openid"], None));
        assert_eq!(v, json!({}), "no phone number: neither it nor phone_number_verified");
        let v = Value::Object(user_claims(&u, &["address"], None));
        assert_eq!(v, json!({"address": {"locality": "London"}}));
    }

    /// Each scope's every claim, each with the user's own value for it (not another's).
    #[test]
    fn every_standard_claim_is_released_with_its_own_value() {
        let mut u = user();
        let mut all = serde_json::Map::new();
        for (_, names) in SCOPE_CLAIMS {
            for name in names.iter().filter(|n| !["updated_at", "email_verified", "phone_number_verified", "address"].contains(n)) {
                all.insert((*name).to_owned(), json!(format!("{name} of ada")));
            }
        }
        all.insert("phone_number_verified".into(), json!(true));
        u.claims = serde_json::from_value(Value::Object(all.clone())).unwrap();
        let released = Value::Object(user_claims(&u, &["profile", "email", "phone"], None));
        let mut expected = all;
        expected.insert("updated_at".into(), json!(42));
        expected.insert("email_verified".into(), json!(false));
        assert_eq!(released, Value::Object(expected));
    }

    #[test]
    fn a_claims_request_adds_single_claims() {
        let u = user();
        let req = json!({"email": {"essential": true}, "nickname": null, "unknown": null});
        let v = Value::Object(user_claims(&u, &[], Some(&req)));
        assert_eq!(v, json!({"email": "ada@example.com"}));
        let claims = json!({"id_token": {"name": null}, "userinfo": "x"});
        assert!(requested_member(Some(&claims), "id_token").is_some());
        assert!(requested_member(Some(&claims), "userinfo").is_none());
        assert!(requested_member(None, "userinfo").is_none());
    }
}
