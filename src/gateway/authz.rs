//! The authorization policy (issue #7 item 4): what a verified caller may do on a route.
//!
//! The checks, in order, each on the [`Caller`] the authentication policy put in the context:
//! 1. a caller without a token (an anonymous route) meets none of the rules below: 401 with
//!    a `Bearer` challenge, as for a route that needs a token;
//! 2. `scopes_all`: every listed scope is one of the token's (exact match on each
//!    space-delimited scope) — else 403 `insufficient_scope` naming them (RFC 6750 §3.1);
//! 3. `scopes_any`: at least one listed scope is — else 403 `insufficient_scope` naming them;
//! 4. claim conditions: the claim equals a value (a string, or the JSON text of a number or
//!    boolean), or contains it (an array with that string, or a space-delimited string with
//!    that word) — else 403;
//! 5. object rules (the Nissan Leaf fix): a path template parameter or query parameter must
//!    be in a token claim (`{vin}` in the `vins` array) or equal it (`{user_id}` equal to
//!    `sub`) — else 403. A query parameter given twice is refused (400: which one would the
//!    upstream read?); one not given binds nothing.
//!
//! Every refusal carries `Cache-Control: no-store` and never reaches the upstream.

use super::context::{Caller, Flow, Identity, Policy, RequestContext};
use super::credentials::{self, Scheme};
use hyper::http::request::Parts;
use serde_json::Value;

/// A route's authorization rules (`scopes_all`, `scopes_any`, `claims`, `objects`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Every one required.
    pub scopes_all: Vec<String>,
    /// At least one required (when not empty).
    pub scopes_any: Vec<String>,
    /// Claim conditions, all required.
    pub claims: Vec<ClaimCondition>,
    /// Object rules, all required.
    pub objects: Vec<ObjectRule>,
}

impl Rules {
    /// Whether the route has any rule.
    pub fn is_empty(&self) -> bool {
        self.scopes_all.is_empty() && self.scopes_any.is_empty() && self.claims.is_empty() && self.objects.is_empty()
    }
}

/// `{ claim = "tenant", equals = "acme" }` or `{ claim = "groups", contains = "admin" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimCondition {
    /// The claim is this value.
    Equals {
        /// Claim name.
        claim: String,
        /// Required value.
        value: String,
    },
    /// The claim (an array, or a space-delimited string) contains this value.
    Contains {
        /// Claim name.
        claim: String,
        /// Required member.
        value: String,
    },
}

/// Where an object rule reads its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamSource {
    /// A `{name}` of the route's path template.
    Path(String),
    /// A query parameter.
    Query(String),
}

/// `{ param = "vin", in = "vins" }` or `{ query = "user_id", equals = "sub" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRule {
    /// The request value.
    pub source: ParamSource,
    /// The token claim it is checked against.
    pub claim: String,
    /// `true`: the value must be a member of the claim (an array, or a space-delimited
    /// string); `false`: equal to it.
    pub member: bool,
}

/// The compiled policy.
#[derive(Debug)]
pub struct Authorize {
    rules: Rules,
    /// The challenges a 401 carries (the route's schemes).
    schemes: &'static [Scheme],
}

impl Authorize {
    /// The policy for a route's rules.
    pub fn new(rules: Rules, dpop: bool) -> Self {
        Self { rules, schemes: if dpop { &[Scheme::Bearer, Scheme::Dpop] } else { &[Scheme::Bearer] } }
    }
}

/// A claim's value as text when it is a scalar (string, number, boolean).
fn scalar(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        Value::Bool(b) => Some(b.to_string().into()),
        _ => None,
    }
}

fn claim_equals(caller: &Caller, claim: &str, value: &str) -> bool {
    caller.claims.get(claim).and_then(scalar).is_some_and(|v| v == value)
}

fn claim_contains(caller: &Caller, claim: &str, value: &str) -> bool {
    match caller.claims.get(claim) {
        Some(Value::Array(items)) => items.iter().any(|i| scalar(i).is_some_and(|v| v == value)),
        Some(Value::String(s)) => s.split(' ').any(|w| w == value),
        _ => false,
    }
}

/// Decodes `%XX` escapes (a normalised path segment keeps those of reserved characters).
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Checks one request against `rules`; `Err` is the refusal.
pub fn check_rules(rules: &Rules, caller: &Caller, ctx: &RequestContext, query: Option<&str>) -> Result<(), super::Denial> {
    let has = |s: &String| caller.scopes.iter().any(|c| c == s);
    if !rules.scopes_all.iter().all(has) {
        return Err(credentials::insufficient_scope(&rules.scopes_all.join(" ")));
    }
    if !rules.scopes_any.is_empty() && !rules.scopes_any.iter().any(has) {
        return Err(credentials::insufficient_scope(&rules.scopes_any.join(" ")));
    }
    for c in &rules.claims {
        let (ok, claim) = match c {
            ClaimCondition::Equals { claim, value } => (claim_equals(caller, claim, value), claim),
            ClaimCondition::Contains { claim, value } => (claim_contains(caller, claim, value), claim),
        };
        if !ok {
            return Err(credentials::forbidden(format!("the token's \"{claim}\" claim does not allow this request")));
        }
    }
    for rule in &rules.objects {
        let values: Vec<String> = match &rule.source {
            ParamSource::Path(name) => ctx.param(name).and_then(percent_decode).into_iter().collect(),
            ParamSource::Query(name) => form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .collect(),
        };
        if values.len() > 1 {
            return Err(credentials::bad_request("a query parameter that an authorization rule checks is given more than once"));
        }
        for value in values {
            let ok = if rule.member { claim_contains(caller, &rule.claim, &value) } else { claim_equals(caller, &rule.claim, &value) };
            if !ok {
                return Err(credentials::forbidden(format!("the token's \"{}\" claim does not cover this object", rule.claim)));
            }
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Policy for Authorize {
    fn name(&self) -> &'static str {
        "authorize"
    }

    async fn on_request(&self, ctx: &mut RequestContext, head: &mut Parts) -> Flow {
        let caller = match &ctx.identity {
            Identity::Token(c) => c.clone(),
            _ => return Flow::Stop(credentials::unauthorized(self.schemes, None, "this request needs an access token")),
        };
        match check_rules(&self.rules, &caller, ctx, head.uri.query()) {
            Ok(()) => Flow::Continue,
            Err(d) => Flow::Stop(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn caller(claims: Value) -> Caller {
        let claims = claims.as_object().unwrap().clone();
        let scopes = claims.get("scope").and_then(Value::as_str).unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        Caller { source: "warden".into(), sub: claims.get("sub").and_then(Value::as_str).map(str::to_owned), client_id: None, consumer: None, plan: None, scopes, claims }
    }

    fn ctx(params: &[(&str, &str)]) -> RequestContext {
        RequestContext { params: params.iter().map(|(k, v)| (Arc::from(*k), v.to_string())).collect(), ..RequestContext::new(String::new(), crate::http::client_ip::ClientAddr { peer: ([127, 0, 0, 1], 1).into(), ip: [127, 0, 0, 1].into() }, false) }
    }

    fn status(r: Result<(), crate::gateway::Denial>) -> u16 {
        r.map_or_else(|d| d.problem.status, |()| 200)
    }

    #[test]
    fn scopes_match_exactly_on_each_space_delimited_scope() {
        let c = caller(json!({"scope": "cars:read cars:write-all"}));
        let all = |s: &[&str]| Rules { scopes_all: s.iter().map(|x| x.to_string()).collect(), ..Default::default() };
        assert_eq!(status(check_rules(&all(&["cars:read"]), &c, &ctx(&[]), None)), 200);
        assert_eq!(status(check_rules(&all(&["cars:write"]), &c, &ctx(&[]), None)), 403, "a prefix is not a scope");
        assert_eq!(status(check_rules(&all(&["cars"]), &c, &ctx(&[]), None)), 403);
        assert_eq!(status(check_rules(&all(&["cars:read", "admin"]), &c, &ctx(&[]), None)), 403, "all of");
        let any = Rules { scopes_any: vec!["admin".into(), "cars:read".into()], ..Default::default() };
        assert_eq!(status(check_rules(&any, &c, &ctx(&[]), None)), 200);
        let none = Rules { scopes_any: vec!["admin".into(), "root".into()], ..Default::default() };
        let d = check_rules(&none, &c, &ctx(&[]), None).unwrap_err();
        assert_eq!(d.headers.iter().find(|(n, _)| n == "www-authenticate").unwrap().1, "Bearer error=\"insufficient_scope\", scope=\"admin root\"");
    }

    #[test]
    fn claim_conditions_and_object_rules() {
        let c = caller(json!({"sub": "u-1", "tenant": "acme", "level": 3, "vins": ["VIN1", "VIN2"], "groups": "a b"}));
        let cond = |c: ClaimCondition| Rules { claims: vec![c], ..Default::default() };
        let eq = |claim: &str, value: &str| ClaimCondition::Equals { claim: claim.into(), value: value.into() };
        let has = |claim: &str, value: &str| ClaimCondition::Contains { claim: claim.into(), value: value.into() };
        assert_eq!(status(check_rules(&cond(eq("tenant", "acme")), &c, &ctx(&[]), None)), 200);
        assert_eq!(status(check_rules(&cond(eq("level", "3")), &c, &ctx(&[]), None)), 200);
        assert_eq!(status(check_rules(&cond(eq("tenant", "evil")), &c, &ctx(&[]), None)), 403);
        assert_eq!(status(check_rules(&cond(eq("missing", "x")), &c, &ctx(&[]), None)), 403);
        assert_eq!(status(check_rules(&cond(has("groups", "b")), &c, &ctx(&[]), None)), 200);
        assert_eq!(status(check_rules(&cond(has("vins", "VIN2")), &c, &ctx(&[]), None)), 200);
        assert_eq!(status(check_rules(&cond(has("groups", "a b")), &c, &ctx(&[]), None)), 403);
        let vin = Rules { objects: vec![ObjectRule { source: ParamSource::Path("vin".into()), claim: "vins".into(), member: true }], ..Default::default() };
        assert_eq!(status(check_rules(&vin, &c, &ctx(&[("vin", "VIN1")]), None)), 200);
        assert_eq!(status(check_rules(&vin, &c, &ctx(&[("vin", "VIN3")]), None)), 403);
        assert_eq!(status(check_rules(&vin, &c, &ctx(&[("vin", "VIN")]), None)), 403, "no substring match");
        assert_eq!(status(check_rules(&vin, &c, &ctx(&[("vin", "VIN%31")]), None)), 200, "escapes are decoded before comparing");
        let user = Rules { objects: vec![ObjectRule { source: ParamSource::Query("user_id".into()), claim: "sub".into(), member: false }], ..Default::default() };
        assert_eq!(status(check_rules(&user, &c, &ctx(&[]), Some("user_id=u-1"))), 200);
        assert_eq!(status(check_rules(&user, &c, &ctx(&[]), Some("user_id=u-2"))), 403);
        assert_eq!(status(check_rules(&user, &c, &ctx(&[]), Some("user_id=u-1&user_id=u-2"))), 400);
        assert_eq!(status(check_rules(&user, &c, &ctx(&[]), Some("other=1"))), 200, "absent binds nothing");
    }
}
