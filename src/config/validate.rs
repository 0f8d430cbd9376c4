//! `[gateway.routes.validate]` (and its per-method tables) → [`ValidationConfig`], and a
//! route's `response_schema`. The schemas are compiled here with the gateway's own code
//! (`Validate::new`), so `warden config check` reports a bad schema under its key.
//!
//! A schema is given as a TOML table (`body_schema = { type = "object", … }` or a
//! `[gateway.routes.validate.body_schema]` table), a JSON string
//! (`body_schema = '{"type": "object"}'`) or a file (`body_schema = { file = "order.json" }`,
//! JSON or YAML, relative to the working directory like the other file keys).

use super::raw::Reader;
use crate::gateway::validate::{Validate, compile};
use crate::gateway::{ValidationConfig, ValidationRules};
use serde_json::Value;

/// The keys of a validation table that are lists of rules, as read (before defaults).
#[derive(Clone, Default)]
struct Raw {
    body_schema: Option<Value>,
    body_schemas: Option<Vec<(String, Value)>>,
    body_required: Option<bool>,
    query_schema: Option<Value>,
    path_schema: Option<Value>,
    headers_schema: Option<Value>,
    content_types: Option<Vec<String>>,
    max_body_size: Option<usize>,
}

impl Raw {
    fn read(r: &mut Reader<'_>, ok: &mut bool) -> Raw {
        let body_required = r.has("body_required").then(|| r.bool("body_required", false));
        let content_types = r.has("content_types").then(|| {
            let list: Vec<String> = r.strings("content_types", &[]).into_iter().map(|t| t.trim().to_ascii_lowercase()).collect();
            if list.iter().any(|t| t.split('/').count() != 2 || t.contains([';', ' ', ',']) || t.starts_with('/') || t.ends_with('/')) {
                r.invalid("content_types", "media types such as \"application/json\" (no parameters)");
                *ok = false;
            }
            list
        });
        let max_body_size = r.has("max_body_size").then(|| r.uint("max_body_size", 1024 * 1024, 0..=1 << 30) as usize);
        let body_schemas = r.has("body_schemas").then(|| {
            let mut t = r.section("body_schemas");
            let mut list = Vec::new();
            for media in t.keys() {
                if let Some(s) = schema(&mut t, &media, ok) {
                    list.push((media.trim().to_ascii_lowercase(), s));
                }
            }
            t.finish();
            list
        });
        Raw {
            body_schema: schema(r, "body_schema", ok),
            body_schemas,
            body_required,
            query_schema: schema(r, "query_schema", ok),
            path_schema: schema(r, "path_schema", ok),
            headers_schema: schema(r, "headers_schema", ok),
            content_types,
            max_body_size,
        }
    }

    /// `self` (a method's table) over `base` (the route-wide keys).
    fn over(self, base: &Raw) -> Raw {
        Raw {
            body_schema: self.body_schema.or_else(|| base.body_schema.clone()),
            body_schemas: self.body_schemas.or_else(|| base.body_schemas.clone()),
            body_required: self.body_required.or(base.body_required),
            query_schema: self.query_schema.or_else(|| base.query_schema.clone()),
            path_schema: self.path_schema.or_else(|| base.path_schema.clone()),
            headers_schema: self.headers_schema.or_else(|| base.headers_schema.clone()),
            content_types: self.content_types.or_else(|| base.content_types.clone()),
            max_body_size: self.max_body_size.or(base.max_body_size),
        }
    }

    fn rules(self) -> ValidationRules {
        let d = ValidationRules::default();
        ValidationRules {
            body_required: self.body_required.unwrap_or(self.body_schema.is_some()),
            body_schemas: self.body_schemas.unwrap_or_default(),
            body_schema: self.body_schema,
            query_schema: self.query_schema,
            path_schema: self.path_schema,
            headers_schema: self.headers_schema,
            content_types: self.content_types.unwrap_or(d.content_types),
            max_body_size: self.max_body_size.unwrap_or(d.max_body_size),
        }
    }
}

/// A JSON Schema under `key`: a table, a JSON string, `true`/`false` or `{ file = "…" }`.
pub(super) fn schema(r: &mut Reader<'_>, key: &str, ok: &mut bool) -> Option<Value> {
    let raw = r.value(key)?;
    let parsed = match raw {
        toml::Value::String(text) => serde_json::from_str::<Value>(&text).map_err(|e| format!("not JSON: {e}")),
        toml::Value::Boolean(b) => Ok(Value::Bool(b)),
        toml::Value::Table(t) if t.len() == 1 && t.get("file").is_some_and(toml::Value::is_str) => {
            let file = t.get("file").and_then(toml::Value::as_str).unwrap_or_default();
            std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}")).and_then(|text| {
                if file.ends_with(".yaml") || file.ends_with(".yml") {
                    serde_saphyr::from_str::<Value>(&text).map_err(|e| format!("{file} is not YAML: {e}"))
                } else {
                    serde_json::from_str::<Value>(&text).map_err(|e| format!("{file} is not JSON: {e}"))
                }
            })
        }
        toml::Value::Table(t) => serde_json::to_value(t).map_err(|e| format!("not a schema: {e}")),
        _ => Err("a JSON Schema: a table, a JSON string or { file = \"schema.json\" }".into()),
    };
    match parsed.and_then(|v| compile(&v).map(|_| v)) {
        Ok(v) => Some(v),
        Err(message) => {
            r.invalid(key, message);
            *ok = false;
            None
        }
    }
}

/// `validate` of a route (`None` inside: the route has none); the outer `None` when a key
/// was unusable (its error is recorded).
pub(super) fn resolve(r: &mut Reader<'_>, methods: &[String]) -> Option<Option<ValidationConfig>> {
    if !r.has("validate") {
        return Some(None);
    }
    let mut ok = true;
    let mut v = r.section("validate");
    let method_keys: Vec<String> = v.keys().into_iter().filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase())).collect();
    let base = Raw::read(&mut v, &mut ok);
    let mut per_method = Vec::new();
    for name in method_keys {
        if !methods.contains(&name) {
            v.invalid(&name, format!("the route does not list {name} in methods"));
            ok = false;
        }
        let mut m = v.section(&name);
        let raw = Raw::read(&mut m, &mut ok);
        m.finish();
        per_method.push((name, raw.over(&base).rules()));
    }
    v.finish();
    let cfg = ValidationConfig { any: base.rules(), methods: per_method };
    if ok && let Err((key, message)) = Validate::new(&cfg) {
        r.invalid(&format!("validate.{key}"), message);
        ok = false;
    }
    ok.then_some(Some(cfg))
}
