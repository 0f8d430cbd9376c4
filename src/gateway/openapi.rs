//! OpenAPI 3.0 / 3.1 → gateway routes as TOML (`warden gateway import-openapi`).
//!
//! One `[[gateway.routes]]` entry per path and method (an operation), with the operation's
//! path template (`{petId}`), and a `[gateway.routes.validate]` table holding JSON Schemas
//! (draft 2020-12) for its path, query and header parameters and its JSON request body
//! (`body_schemas` for further JSON media types with schemas of their own), the
//! accepted content types and whether a body is required (an operation without a request
//! body accepts none: `max_body_size = 0`). The schema of its `200` (else first `2xx`) JSON
//! response is written as the route's `response_schema`.
//!
//! Schemas are made self-contained: `#/components/schemas/X` references become
//! `#/$defs/X` with the schemas they reach copied under `$defs` (recursive schemas stay
//! references); `$ref`s to `#/components/parameters|requestBodies|responses/…` are resolved
//! in place. OpenAPI 3.0 schemas are translated: `nullable: true` adds `"null"` to `type`
//! (and `null` to `enum`), boolean `exclusiveMinimum` / `exclusiveMaximum` become numbers,
//! and a `$ref`'s siblings are dropped (3.0 ignores them). References outside the document
//! are refused: nothing is fetched.
//!
//! Operations the gateway cannot express exactly are left out, each with a warning: a
//! parameter that is part of a segment (`/files/{name}.json`), a path ending in `/` (a
//! prefix route here) and a literal that is not in normalised form.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What to write besides the document's own content.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The upstream of every route (default: the document's first absolute `servers` URL).
    pub upstream: Option<String>,
    /// The routes' `auth` (default: `["warden"]`).
    pub auth: Vec<String>,
    /// Where the document came from, for the header comment.
    pub source: String,
}

/// The TOML and what was left out.
#[derive(Debug)]
pub struct Imported {
    /// A configuration file (`version = 1` and the routes).
    pub toml: String,
    /// Operations left out and why.
    pub warnings: Vec<String>,
    /// How many routes were written.
    pub routes: usize,
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Parses a document (JSON or YAML) and writes its routes.
pub fn import(text: &str, opts: &ImportOptions) -> Result<Imported, String> {
    let doc: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| format!("not YAML: {e}"))?
    };
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or_default();
    let v30 = if version.starts_with("3.0") {
        true
    } else if version.starts_with("3.1") {
        false
    } else {
        return Err(format!("not an OpenAPI 3.0 or 3.1 document (openapi: \"{version}\")"));
    };
    let upstream = match &opts.upstream {
        Some(u) => u.clone(),
        None => doc
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .filter(|u| (u.starts_with("http://") || u.starts_with("https://")) && !u.contains('{'))
            .map(str::to_owned)
            .ok_or("the document names no absolute server URL: give --upstream")?,
    };
    super::proxy::Upstream::parse(&upstream).map_err(|e| format!("upstream: {e}"))?;
    let auth = if opts.auth.is_empty() { vec!["warden".to_owned()] } else { opts.auth.clone() };
    let mut ctx = Ctx { doc: &doc, v30, used: Vec::new() };
    let mut out = String::new();
    let title = doc.pointer("/info/title").and_then(Value::as_str).unwrap_or("API");
    let _ = writeln!(out, "# Routes of {} (OpenAPI {version}), imported from {}.", one_line(title), one_line(&opts.source));
    let _ = writeln!(out, "# Review each route's auth before serving it.");
    out.push_str("version = 1\n");
    let mut warnings = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let empty = Map::new();
    let paths = doc.get("paths").and_then(Value::as_object).unwrap_or(&empty);
    for (path, item) in paths {
        let item = ctx.resolve(item)?;
        let Some((pattern, renames)) = template(path) else {
            warnings.push(format!("{path}: left out: the gateway matches only whole-segment {{parameters}} and paths without a trailing /"));
            continue;
        };
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let op = ctx.resolve(op)?;
            let upper = method.to_ascii_uppercase();
            let mut id = op.get("operationId").and_then(Value::as_str).map(sanitize_id).filter(|s| !s.is_empty()).unwrap_or_else(|| sanitize_id(&format!("{method}{path}")));
            if ids.contains(&id) {
                let mut n = 2;
                while ids.contains(&format!("{id}-{n}")) {
                    n += 1;
                }
                id = format!("{id}-{n}");
            }
            ids.push(id.clone());
            let route = ctx.route(&item, &op, &renames).map_err(|e| format!("{upper} {path}: {e}"))?;
            for w in &route.warnings {
                warnings.push(format!("{upper} {path}: {w}"));
            }
            out.push('\n');
            if let Some(summary) = op.get("summary").and_then(Value::as_str) {
                let _ = writeln!(out, "# {upper} {path}: {}", one_line(summary));
            } else {
                let _ = writeln!(out, "# {upper} {path}");
            }
            out.push_str("[[gateway.routes]]\n");
            let _ = writeln!(out, "id = {}", toml_str(&id));
            let _ = writeln!(out, "path = {}", toml_str(&pattern));
            let _ = writeln!(out, "methods = [{}]", toml_str(&upper));
            let _ = writeln!(out, "upstream = {}", toml_str(&upstream));
            let _ = writeln!(out, "auth = [{}]", auth.iter().map(|a| toml_str(a)).collect::<Vec<_>>().join(", "));
            if let Some(s) = &route.response {
                let _ = writeln!(out, "response_schema = {}", toml_json(s));
            }
            out.push_str("\n[gateway.routes.validate]\n");
            match &route.content_types {
                Some(types) => {
                    let _ = writeln!(out, "content_types = [{}]", types.iter().map(|t| toml_str(t)).collect::<Vec<_>>().join(", "));
                    let _ = writeln!(out, "body_required = {}", route.body_required);
                }
                None => out.push_str("max_body_size = 0\n"),
            }
            for (key, schema) in [("path_schema", &route.path), ("query_schema", &route.query), ("headers_schema", &route.headers), ("body_schema", &route.body)] {
                if let Some(s) = schema {
                    let _ = writeln!(out, "{key} = {}", toml_json(s));
                }
            }
            if !route.body_by_type.is_empty() {
                out.push_str("\n[gateway.routes.validate.body_schemas]\n");
                for (media, s) in &route.body_by_type {
                    let _ = writeln!(out, "{} = {}", toml_str(media), toml_json(s));
                }
            }
        }
    }
    Ok(Imported { toml: out, warnings, routes: ids.len() })
}

/// One operation's schemas.
#[derive(Default)]
struct Route {
    path: Option<Value>,
    query: Option<Value>,
    headers: Option<Value>,
    body: Option<Value>,
    /// Schemas of other JSON media types, when they differ from `body`'s.
    body_by_type: Vec<(String, Value)>,
    body_required: bool,
    /// `None`: the operation has no request body.
    content_types: Option<Vec<String>>,
    response: Option<Value>,
    warnings: Vec<String>,
}

struct Ctx<'d> {
    doc: &'d Value,
    v30: bool,
    /// `components/schemas` names referenced by the schema being converted.
    used: Vec<String>,
}

impl Ctx<'_> {
    /// Follows `$ref`s to `#/…` (at most 32 in a row).
    fn resolve(&self, v: &Value) -> Result<Value, String> {
        let mut v = v.clone();
        for _ in 0..32 {
            let Some(r) = v.get("$ref").and_then(Value::as_str) else { return Ok(v) };
            let target = r.strip_prefix('#').ok_or_else(|| format!("$ref \"{r}\" points outside the document (nothing is fetched)"))?;
            v = self.doc.pointer(target).cloned().ok_or_else(|| format!("$ref \"{r}\" points to nothing"))?;
        }
        Err("$ref chain too long".into())
    }

    fn route(&mut self, item: &Value, op: &Value, renames: &[(String, String)]) -> Result<Route, String> {
        let mut route = Route::default();
        // Operation parameters override the path item's (same name and place).
        let mut params: Vec<Value> = Vec::new();
        for list in [item.get("parameters"), op.get("parameters")].into_iter().flatten() {
            for p in list.as_array().into_iter().flatten() {
                let p = self.resolve(p)?;
                let key = |x: &Value| (x.get("name").cloned(), x.get("in").cloned());
                params.retain(|q| key(q) != key(&p));
                params.push(p);
            }
        }
        let mut groups: BTreeMap<&str, (Map<String, Value>, Vec<Value>)> = BTreeMap::new();
        for p in &params {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let place = p.get("in").and_then(Value::as_str).unwrap_or_default();
            let schema = match p.get("schema") {
                Some(s) => s.clone(),
                None => p.get("content").and_then(Value::as_object).and_then(|c| c.values().next()).and_then(|m| m.get("schema")).cloned().unwrap_or(json!({})),
            };
            let (group, name) = match place {
                "path" => ("path", renames.iter().find(|(from, _)| from == name).map_or(name.to_owned(), |(_, to)| to.clone())),
                "query" => ("query", name.to_owned()),
                "header" => {
                    let lower = name.to_ascii_lowercase();
                    // OpenAPI ignores these as parameters.
                    if matches!(lower.as_str(), "accept" | "content-type" | "authorization") {
                        continue;
                    }
                    ("header", lower)
                }
                other => {
                    route.warnings.push(format!("parameter {name} in {other}: not validated"));
                    continue;
                }
            };
            let required = place == "path" || p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let entry = groups.entry(group).or_default();
            entry.0.insert(name.clone(), schema);
            if required {
                entry.1.push(Value::String(name));
            }
        }
        for (group, (props, required)) in groups {
            let mut converted = Map::new();
            for (name, schema) in props {
                converted.insert(name, self.schema(&schema)?);
            }
            let mut s = json!({"type": "object", "properties": converted});
            if !required.is_empty() {
                s["required"] = Value::Array(required);
            }
            let s = Some(self.finish(s));
            match group {
                "path" => route.path = s,
                "query" => route.query = s,
                _ => route.headers = s,
            }
        }
        if let Some(body) = op.get("requestBody") {
            let body = self.resolve(body)?;
            route.body_required = body.get("required").and_then(Value::as_bool).unwrap_or(false);
            let mut types = Vec::new();
            let mut any = false;
            for (media, m) in body.get("content").and_then(Value::as_object).into_iter().flatten() {
                let media = media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
                if media.contains('*') {
                    any = true;
                    continue;
                }
                let json_like = media == "application/json" || media.ends_with("+json");
                if json_like && let Some(s) = m.get("schema") {
                    let s = self.schema(s)?;
                    let s = self.finish(s);
                    match &route.body {
                        None => route.body = Some(s),
                        Some(first) if *first != s => route.body_by_type.push((media.clone(), s)),
                        Some(_) => {}
                    }
                }
                types.push(media);
            }
            route.content_types = Some(if any { Vec::new() } else { types });
        }
        let responses = op.get("responses").and_then(Value::as_object);
        let ok = responses.and_then(|r| r.get("200").or_else(|| r.iter().find(|(k, _)| k.starts_with('2')).map(|(_, v)| v)));
        if let Some(resp) = ok {
            let resp = self.resolve(resp)?;
            let content = resp.get("content").and_then(Value::as_object);
            let json_schema = content.and_then(|c| c.iter().find(|(k, _)| k.starts_with("application/json") || k.contains("+json"))).and_then(|(_, m)| m.get("schema"));
            if let Some(s) = json_schema {
                let s = self.schema(s)?;
                route.response = Some(self.finish(s));
            }
        }
        Ok(route)
    }

    /// Adds `$defs` with every component schema the converted schema reaches.
    fn finish(&mut self, mut schema: Value) -> Value {
        let mut defs = Map::new();
        let mut i = 0;
        while i < self.used.len() {
            let name = self.used[i].clone();
            i += 1;
            let target = self.doc.pointer(&format!("/components/schemas/{}", escape(&name))).cloned().unwrap_or(Value::Bool(false));
            let converted = self.schema(&target).unwrap_or(Value::Bool(false));
            defs.insert(name, converted);
        }
        self.used.clear();
        if !defs.is_empty() {
            match schema.as_object_mut() {
                Some(obj) => {
                    obj.insert("$defs".into(), Value::Object(defs));
                }
                None => schema = json!({"allOf": [schema], "$defs": defs}),
            }
        }
        schema
    }

    /// An OpenAPI schema as a draft 2020-12 schema (module doc).
    fn schema(&mut self, s: &Value) -> Result<Value, String> {
        let Some(obj) = s.as_object() else { return Ok(s.clone()) };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let converted = if let Some(name) = r.strip_prefix("#/components/schemas/") {
                let name = unescape(name);
                if !self.used.contains(&name) {
                    self.used.push(name.clone());
                }
                json!({"$ref": format!("#/$defs/{}", escape(&name))})
            } else if r.starts_with('#') {
                let target = self.resolve(s)?;
                return self.schema(&target);
            } else {
                return Err(format!("$ref \"{r}\" points outside the document (nothing is fetched)"));
            };
            if self.v30 || obj.len() == 1 {
                return Ok(converted);
            }
            let mut out = obj.clone();
            out.insert("$ref".into(), converted["$ref"].clone());
            return self.schema_members(out);
        }
        self.schema_members(obj.clone())
    }

    fn schema_members(&mut self, mut obj: Map<String, Value>) -> Result<Value, String> {
        const MAPS: [&str; 5] = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
        const LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
        const ONE: [&str; 11] =
            ["items", "additionalProperties", "not", "contains", "if", "then", "else", "propertyNames", "unevaluatedProperties", "unevaluatedItems", "additionalItems"];
        for (key, value) in obj.iter_mut() {
            if MAPS.contains(&key.as_str()) && let Some(m) = value.as_object_mut() {
                for v in m.values_mut() {
                    *v = self.schema(v)?;
                }
            } else if LISTS.contains(&key.as_str()) && let Some(list) = value.as_array_mut() {
                for v in list.iter_mut() {
                    *v = self.schema(v)?;
                }
            } else if ONE.contains(&key.as_str()) {
                *value = self.schema(value)?;
            }
        }
        if self.v30 {
            if obj.remove("nullable") == Some(Value::Bool(true)) {
                match obj.get_mut("type") {
                    Some(Value::String(t)) => {
                        let t = t.clone();
                        obj.insert("type".into(), json!([t, "null"]));
                    }
                    Some(Value::Array(ts)) if !ts.contains(&json!("null")) => ts.push(json!("null")),
                    _ => {}
                }
                if let Some(Value::Array(e)) = obj.get_mut("enum")
                    && !e.contains(&Value::Null)
                {
                    e.push(Value::Null);
                }
            }
            for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
                if let Some(Value::Bool(b)) = obj.get(flag).cloned() {
                    obj.remove(flag);
                    if b && let Some(limit) = obj.remove(bound) {
                        obj.insert(flag.into(), limit);
                    }
                }
            }
        }
        Ok(Value::Object(obj))
    }
}

/// An OpenAPI path as a route pattern, with renamed parameters (`{pet-id}` → `{pet_id}`);
/// `None` when the gateway cannot match it exactly.
fn template(path: &str) -> Option<(String, Vec<(String, String)>)> {
    if !path.starts_with('/') || (path.len() > 1 && path.ends_with('/')) || path == "/" {
        return None;
    }
    let mut out = String::new();
    let mut renames = Vec::new();
    for seg in path[1..].split('/') {
        out.push('/');
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if name.contains(['{', '}']) {
                return None;
            }
            let mut clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
            if clean.is_empty() || clean.starts_with(|c: char| c.is_ascii_digit()) {
                clean.insert(0, '_');
            }
            out.push_str(&format!("{{{clean}}}"));
            renames.push((name.to_owned(), clean));
        } else {
            if seg.is_empty() || seg.contains(['{', '}', '*']) {
                return None;
            }
            match super::path::normalise(&format!("/{seg}")) {
                Ok(n) if n[1..] == *seg => out.push_str(seg),
                _ => return None,
            }
        }
    }
    Some((out, renames))
}

fn sanitize_id(s: &str) -> String {
    let mut id = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' };
        if !(c == '-' && (id.is_empty() || id.ends_with('-'))) {
            id.push(c);
        }
    }
    id.trim_end_matches('-').to_owned()
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn unescape(name: &str) -> String {
    name.replace("~1", "/").replace("~0", "~")
}

fn one_line(s: &str) -> String {
    let mut t: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if t.len() > 120 {
        let mut end = 120;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        t.truncate(end);
        t.push('…');
    }
    t
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A schema as a TOML string of pretty JSON (a multi-line literal string when it can be).
fn toml_json(v: &Value) -> String {
    let compact = serde_json::to_string(v).unwrap_or_default();
    if compact.len() <= 100 {
        return if compact.contains(['\'', '\n']) { toml_str(&compact) } else { format!("'{compact}'") };
    }
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    if text.contains("'''") {
        toml_str(&text)
    } else {
        format!("'''\n{text}'''")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_keep_whole_segment_parameters_only() {
        assert_eq!(template("/pets/{pet-id}/toys"), Some(("/pets/{pet_id}/toys".into(), vec![("pet-id".into(), "pet_id".into())])));
        assert_eq!(template("/files/{name}.json"), None);
        assert_eq!(template("/pets/"), None);
        assert_eq!(template("/a/./b"), None);
        assert_eq!(template("/"), None);
    }

    #[test]
    fn the_upstream_defaults_to_the_first_absolute_server_url() {
        let doc = |servers: &str| format!("{{\"openapi\": \"3.1.0\", \"servers\": {servers}, \"paths\": {{\"/a/{{id}}\": {{\"get\": {{}}, \"post\": {{\"operationId\": \"a b\"}}}}}}}}");
        let out = import(&doc(r#"[{"url": "https://api.example/v1"}]"#), &ImportOptions::default()).unwrap();
        assert!(out.toml.contains("upstream = \"https://api.example/v1\""), "{}", out.toml);
        assert!(out.toml.contains("auth = [\"warden\"]"), "deny by default: tokens unless told otherwise");
        assert!(out.toml.contains("id = \"get-a-id\"") && out.toml.contains("id = \"a-b\""), "{}", out.toml);
        for servers in [r#"[{"url": "/v1"}]"#, r#"[{"url": "https://{region}.example"}]"#, "[]"] {
            assert!(import(&doc(servers), &ImportOptions::default()).unwrap_err().contains("--upstream"), "{servers}");
        }
        let opts = ImportOptions { upstream: Some("http://127.0.0.1:9".into()), ..Default::default() };
        assert!(import(&doc("[]"), &opts).is_ok());
        assert!(import("swagger: \"2.0\"\n", &opts).unwrap_err().contains("not an OpenAPI 3.0 or 3.1"));
        assert!(import("openapi: [", &opts).unwrap_err().starts_with("not YAML"));
    }

    #[test]
    fn openapi_3_0_schemas_become_2020_12() {
        let doc = json!({"components": {"schemas": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}}}}});
        let mut ctx = Ctx { doc: &doc, v30: true, used: Vec::new() };
        let s = ctx.schema(&json!({"type": "integer", "nullable": true, "minimum": 0, "exclusiveMinimum": true, "enum": [1, 2]})).unwrap();
        assert_eq!(s, json!({"type": ["integer", "null"], "exclusiveMinimum": 0, "enum": [1, 2, null]}));
        let s = ctx.schema(&json!({"type": "array", "items": {"$ref": "#/components/schemas/Node", "description": "ignored"}})).unwrap();
        let s = ctx.finish(s);
        assert_eq!(s["items"], json!({"$ref": "#/$defs/Node"}));
        assert_eq!(s["$defs"]["Node"]["properties"]["next"], json!({"$ref": "#/$defs/Node"}));
        assert!(super::super::validate::compile(&s).is_ok());
        assert!(ctx.schema(&json!({"$ref": "https://example.com/s.json"})).is_err());
    }
}
