//! The validation policy (issue #7 item 6): a request must match the API's contract before
//! the API sees it.
//!
//! Per route and method (`[gateway.routes.validate]`, per-method tables beside it), compiled
//! once when the gateway is built:
//!
//! - **path parameters** (`{vin}`), **query parameters** and **headers** against JSON Schemas
//!   (draft 2020-12) of an object whose members are the parameters. Values arrive as text
//!   and are read as the schema's `type` asks (`"42"` is the integer 42 where the property
//!   says `integer`, `"true"` a boolean); a query parameter given twice is refused unless its
//!   schema is an `array`. Header names are lower-case;
//! - the **content type** of a request with a body: one of `content_types` (415 with the list
//!   in `Accept` otherwise); a JSON body must be UTF-8 (a `charset` other than utf-8 is 415);
//! - the **body size**: at most `max_body_size` bytes (413, on `Content-Length` before reading
//!   and while reading a body of unknown length — the pipeline's body phase);
//! - a **JSON body** (`application/json`, `*/*+json`) read strictly: UTF-8, one document,
//!   **no duplicate member names** (parsers disagree on which copy wins: the classic way past
//!   a validating proxy), at most [`MAX_DEPTH`] levels of nesting, finite numbers — then the
//!   `body_schema` (or the schema `body_schemas` names for the body's media type).
//!
//! A refusal is a 400 problem whose `errors` member lists each failure as `{in, pointer,
//! reason}`: where (`body`, `query`, `path`, `header`), the JSON pointer of the failing value
//! in that document, and a short reason that never repeats the input (at most
//! [`MAX_ERRORS`] entries). Schemas never load anything remote: `$ref` resolves only inside
//! the schema itself (`$defs`).

use super::context::{Denial, Flow, Policy, RequestContext};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::Method;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Deepest nesting of arrays and objects accepted in a JSON body.
pub const MAX_DEPTH: usize = 64;
/// Most failures listed in one answer.
pub const MAX_ERRORS: usize = 20;
/// Longest pointer quoted in an answer (a longer one is cut).
const MAX_POINTER: usize = 200;

/// `[gateway.routes.validate]`: the route's validation rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidationConfig {
    /// The rules of every method without a table of its own.
    pub any: ValidationRules,
    /// `[gateway.routes.validate.METHOD]` tables (upper-case method, the route-wide keys
    /// laid under the method's own).
    pub methods: Vec<(String, ValidationRules)>,
}

/// One method's validation rules.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidationRules {
    /// JSON Schema of a JSON body.
    pub body_schema: Option<Value>,
    /// JSON Schemas of JSON bodies of a given media type (lower-case), in place of
    /// `body_schema` for that type.
    pub body_schemas: Vec<(String, Value)>,
    /// A request without a body is refused (default: whether `body_schema` is set).
    pub body_required: bool,
    /// JSON Schema of the object of query parameters.
    pub query_schema: Option<Value>,
    /// JSON Schema of the object of path parameters.
    pub path_schema: Option<Value>,
    /// JSON Schema of the object of headers (lower-case names).
    pub headers_schema: Option<Value>,
    /// Accepted media types of a body, lower-case, without parameters (empty: any).
    pub content_types: Vec<String>,
    /// Largest body accepted, bytes.
    pub max_body_size: usize,
}

impl Default for ValidationRules {
    fn default() -> Self {
        Self {
            body_schema: None,
            body_schemas: Vec::new(),
            body_required: false,
            query_schema: None,
            path_schema: None,
            headers_schema: None,
            content_types: vec!["application/json".into()],
            max_body_size: 1024 * 1024,
        }
    }
}

/// Compiles one JSON Schema (draft 2020-12, formats asserted, no remote or file `$ref`).
/// The error names what is wrong, for `warden config check`.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    if !(schema.is_object() || schema.is_boolean()) {
        return Err("a JSON Schema is an object (or true / false)".into());
    }
    jsonschema::draft202012::options().should_validate_formats(true).build(schema).map_err(|e| {
        let mut text = e.to_string();
        cut(&mut text, 300);
        format!("not a usable JSON Schema: {text}")
    })
}

/// How a parameter's text is read: the types its schema allows.
#[derive(Debug, Default, Clone)]
struct Kind {
    array: bool,
    /// `type` of the value (of the items, for an array).
    types: Vec<String>,
}

/// A compiled schema of an object of parameters, with how to read each member's text.
#[derive(Debug)]
struct Params {
    validator: jsonschema::Validator,
    kinds: HashMap<String, Kind>,
}

impl Params {
    fn new(schema: &Value) -> Result<Params, String> {
        let validator = compile(schema)?;
        let mut kinds = HashMap::new();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, s) in props {
                let types = types_of(s);
                let kind = if types.iter().any(|t| t == "array") {
                    Kind { array: true, types: s.get("items").map(types_of).unwrap_or_default() }
                } else {
                    Kind { array: false, types }
                };
                kinds.insert(name.clone(), kind);
            }
        }
        Ok(Params { validator, kinds })
    }

    /// Builds the object from `(name, text)` pairs and validates it; failures go to `errors`.
    fn check<'a>(&self, place: &'static str, pairs: impl Iterator<Item = (&'a str, &'a str)>, errors: &mut Vec<FieldError>) {
        let mut grouped: Vec<(&str, Vec<&str>)> = Vec::new();
        for (name, text) in pairs {
            match grouped.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(text),
                None => grouped.push((name, vec![text])),
            }
        }
        let mut doc = Map::new();
        let none = Kind::default();
        for (name, values) in grouped {
            let kind = self.kinds.get(name).unwrap_or(&none);
            let value = if kind.array {
                Value::Array(values.iter().map(|t| coerce(t, &kind.types)).collect())
            } else if values.len() > 1 {
                errors.push(FieldError::new(place, pointer_of(&[name]), "must be given once".into()));
                continue;
            } else {
                coerce(values[0], &kind.types)
            };
            doc.insert(name.to_owned(), value);
        }
        schema_errors(&self.validator, &Value::Object(doc), place, errors);
    }
}

/// The `type`s a schema names (`"integer"` or `["integer", "null"]`).
fn types_of(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// A parameter's text as the value its schema's types ask for; text otherwise (and then the
/// schema says what is wrong).
fn coerce(text: &str, types: &[String]) -> Value {
    let wants = |t: &str| types.iter().any(|x| x == t);
    if wants("integer") || wants("number") {
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return Value::from(u);
        }
        if wants("number")
            && let Ok(f) = text.parse::<f64>()
            && f.is_finite()
            && text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
            && let Some(n) = serde_json::Number::from_f64(f)
        {
            return Value::Number(n);
        }
    }
    if wants("boolean") {
        match text {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
    }
    if wants("null") && text.is_empty() && !wants("string") {
        return Value::Null;
    }
    Value::String(text.to_owned())
}

/// One failure, as listed in the `errors` member of the 400 answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// `body`, `query`, `path` or `header`.
    pub place: &'static str,
    /// JSON pointer of the failing value in that document (`""`: the whole).
    pub pointer: String,
    /// What is wrong, in a few words, without the input.
    pub reason: String,
}

impl FieldError {
    fn new(place: &'static str, mut pointer: String, reason: String) -> Self {
        cut(&mut pointer, MAX_POINTER);
        Self { place, pointer, reason }
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary), marking the cut.
fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

/// The JSON pointer (RFC 6901) of a path of member names.
fn pointer_of(parts: &[&str]) -> String {
    let mut p = String::new();
    for part in parts {
        p.push('/');
        p.push_str(&part.replace('~', "~0").replace('/', "~1"));
    }
    p
}

/// Runs `validator` on `instance`; each failure (up to [`MAX_ERRORS`] in all) as a
/// [`FieldError`] with a reason of our own words.
fn schema_errors(validator: &jsonschema::Validator, instance: &Value, place: &'static str, errors: &mut Vec<FieldError>) {
    use jsonschema::error::ValidationErrorKind as K;
    for e in validator.iter_errors(instance) {
        if errors.len() >= MAX_ERRORS {
            return;
        }
        let at = e.instance_path().as_str().to_owned();
        let limit = |v: &dyn std::fmt::Display| {
            let mut s = v.to_string();
            cut(&mut s, 40);
            s
        };
        let (pointer, reason) = match e.kind() {
            K::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                (format!("{at}{}", pointer_of(&[name])), "is required".to_owned())
            }
            K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
                for name in unexpected {
                    if errors.len() >= MAX_ERRORS {
                        return;
                    }
                    errors.push(FieldError::new(place, format!("{at}{}", pointer_of(&[name])), "is not allowed".into()));
                }
                continue;
            }
            K::Type { kind } => {
                let names: Vec<String> = match kind {
                    jsonschema::error::TypeKind::Single(t) => vec![t.to_string()],
                    jsonschema::error::TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
                };
                (at, format!("must be of type {}", names.join(" or ")))
            }
            K::Minimum { limit: l } => (at, format!("must be at least {}", limit(l))),
            K::Maximum { limit: l } => (at, format!("must be at most {}", limit(l))),
            K::ExclusiveMinimum { limit: l } => (at, format!("must be greater than {}", limit(l))),
            K::ExclusiveMaximum { limit: l } => (at, format!("must be less than {}", limit(l))),
            K::MultipleOf { .. } => (at, "is not an allowed multiple".into()),
            K::MinLength { limit: l } => (at, format!("must be at least {l} characters long")),
            K::MaxLength { limit: l } => (at, format!("must be at most {l} characters long")),
            K::MinItems { limit: l } => (at, format!("must have at least {l} items")),
            K::MaxItems { limit: l } => (at, format!("must have at most {l} items")),
            K::MinProperties { limit: l } => (at, format!("must have at least {l} members")),
            K::MaxProperties { limit: l } => (at, format!("must have at most {l} members")),
            K::UniqueItems => (at, "must not repeat items".into()),
            K::Pattern { .. } => (at, "does not match the required pattern".into()),
            K::Format { format } => (at, format!("must be a valid {}", limit(format))),
            K::Enum { .. } => (at, "is not one of the allowed values".into()),
            K::Constant { .. } => (at, "is not the required value".into()),
            K::AnyOf { .. } | K::OneOfNotValid { .. } => (at, "matches none of the allowed schemas".into()),
            K::OneOfMultipleValid { .. } => (at, "matches more than one of the allowed schemas".into()),
            K::Not { .. } => (at, "matches a schema it must not match".into()),
            K::FalseSchema => (at, "is not allowed".into()),
            K::Contains => (at, "contains no allowed item".into()),
            K::AdditionalItems { .. } | K::UnevaluatedItems { .. } => (at, "has items that are not allowed".into()),
            K::PropertyNames { .. } => (at, "has a member name that is not allowed".into()),
            _ => (at, "is not valid".into()),
        };
        errors.push(FieldError::new(place, pointer, reason));
    }
}

/// A method's compiled rules.
#[derive(Debug)]
struct Compiled {
    body: Option<jsonschema::Validator>,
    body_by_type: Vec<(String, jsonschema::Validator)>,
    body_required: bool,
    query: Option<Params>,
    path: Option<Params>,
    headers: Option<Params>,
    content_types: Vec<String>,
    /// `Accept` for a 415.
    accept: HeaderValue,
    max_body_size: usize,
}

impl Compiled {
    fn new(r: &ValidationRules) -> Result<Compiled, (&'static str, String)> {
        let params = |key: &'static str, s: &Option<Value>| s.as_ref().map(Params::new).transpose().map_err(|m| (key, m));
        let accept = if r.content_types.is_empty() { "*/*".to_owned() } else { r.content_types.join(", ") };
        Ok(Compiled {
            body: r.body_schema.as_ref().map(compile).transpose().map_err(|m| ("body_schema", m))?,
            body_by_type: r.body_schemas.iter().map(|(t, s)| compile(s).map(|v| (t.clone(), v))).collect::<Result<_, _>>().map_err(|m| ("body_schemas", m))?,
            body_required: r.body_required,
            query: params("query_schema", &r.query_schema)?,
            path: params("path_schema", &r.path_schema)?,
            headers: params("headers_schema", &r.headers_schema)?,
            content_types: r.content_types.clone(),
            accept: HeaderValue::from_str(&accept).map_err(|_| ("content_types", "media types are plain text".to_owned()))?,
            max_body_size: r.max_body_size,
        })
    }

    /// 415 unless `content_type` is accepted; JSON must be UTF-8.
    fn check_type(&self, content_type: &str) -> Result<(), Denial> {
        let (media, params) = split_media_type(content_type);
        let accepted = self.content_types.is_empty() || self.content_types.contains(&media);
        let charset_ok = !is_json(&media) || params.iter().all(|(k, v)| k != "charset" || v.eq_ignore_ascii_case("utf-8"));
        if accepted && charset_ok {
            return Ok(());
        }
        let detail = if accepted {
            "a JSON body is UTF-8".to_owned()
        } else {
            format!("the body's content type must be one of: {}", self.accept.to_str().unwrap_or_default())
        };
        Err(Denial::new(415, "urn:warden:problem:unsupported-media-type", "Unsupported Media Type", detail).with_header(header::ACCEPT, self.accept.clone()))
    }
}

/// `type/subtype; a=b` → (`type/subtype` lower-case, parameters with lower-case names).
fn split_media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_owned()))
        .collect();
    (media, params)
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// The validation policy of one route.
#[derive(Debug)]
pub struct Validate {
    any: Compiled,
    methods: Vec<(Method, Compiled)>,
}

impl Validate {
    /// Compiles every schema. The error names the key at fault (`body_schema`, or
    /// `POST.body_schema` for a method's table) and what is wrong.
    pub fn new(cfg: &ValidationConfig) -> Result<Validate, (String, String)> {
        let any = Compiled::new(&cfg.any).map_err(|(k, m)| (k.to_owned(), m))?;
        let mut methods = Vec::new();
        for (name, rules) in &cfg.methods {
            let method = Method::from_bytes(name.as_bytes()).map_err(|_| (name.clone(), "not a method".to_owned()))?;
            methods.push((method, Compiled::new(rules).map_err(|(k, m)| (format!("{name}.{k}"), m))?));
        }
        Ok(Validate { any, methods })
    }

    fn rules(&self, method: &Method) -> &Compiled {
        let find = |m: &Method| self.methods.iter().find(|(x, _)| x == m).map(|(_, c)| c);
        find(method).or_else(|| if *method == Method::HEAD { find(&Method::GET) } else { None }).unwrap_or(&self.any)
    }
}

fn invalid(errors: Vec<FieldError>) -> Flow {
    let list: Vec<Value> = errors.iter().map(|e| json!({"in": e.place, "pointer": e.pointer, "reason": e.reason})).collect();
    let detail = if errors.len() == 1 { "the request does not match the API's schema (1 error)".to_owned() } else { format!("the request does not match the API's schema ({} errors)", errors.len()) };
    Flow::Stop(Denial::new(400, "urn:warden:problem:invalid-request", "Bad Request", detail).with_extension("errors", Value::Array(list)))
}

#[async_trait::async_trait]
impl Policy for Validate {
    fn name(&self) -> &'static str {
        "validate"
    }

    /// Content type (415), then path, query and header parameters (400).
    async fn on_request(&self, ctx: &mut RequestContext, head: &mut Parts) -> Flow {
        let rules = self.rules(&head.method);
        // Before the body is read, when one is announced (a stray Content-Type on a request
        // without a body is no reason to refuse it; `on_body` checks every body again).
        let announced = head.headers.contains_key(header::TRANSFER_ENCODING)
            || head.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0");
        if announced && let Some(ct) = head.headers.get(header::CONTENT_TYPE) {
            let checked = ct.to_str().map_err(|_| Denial::new(415, "urn:warden:problem:unsupported-media-type", "Unsupported Media Type", "the content type is not plain text")).and_then(|t| rules.check_type(t));
            if let Err(d) = checked {
                return Flow::Stop(d);
            }
        }
        let mut errors = Vec::new();
        if let Some(p) = &rules.path {
            p.check("path", ctx.params.iter().map(|(n, v)| (&**n, v.as_str())), &mut errors);
        }
        if let Some(q) = &rules.query {
            let query = head.uri.query().unwrap_or("");
            let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            q.check("query", pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &mut errors);
        }
        if let Some(h) = &rules.headers {
            let mut pairs = Vec::new();
            for (name, value) in &head.headers {
                match value.to_str() {
                    Ok(v) => pairs.push((name.as_str(), v)),
                    Err(_) => errors.push(FieldError::new("header", pointer_of(&[name.as_str()]), "is not plain text".into())),
                }
            }
            h.check("header", pairs.into_iter(), &mut errors);
        }
        if errors.is_empty() { Flow::Continue } else { invalid(errors) }
    }

    fn body_limit(&self, head: &Parts) -> Option<usize> {
        Some(self.rules(&head.method).max_body_size)
    }

    /// The body: required or not, its content type, strict JSON, the schema.
    async fn on_body(&self, _ctx: &mut RequestContext, head: &Parts, body: &Bytes) -> Flow {
        let rules = self.rules(&head.method);
        if body.is_empty() {
            return if rules.body_required { invalid(vec![FieldError::new("body", String::new(), "a body is required".into())]) } else { Flow::Continue };
        }
        let Some(ct) = head.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
            if rules.content_types.is_empty() {
                return Flow::Continue;
            }
            let detail = format!("a body needs a Content-Type, one of: {}", rules.accept.to_str().unwrap_or_default());
            return Flow::Stop(Denial::new(415, "urn:warden:problem:unsupported-media-type", "Unsupported Media Type", detail).with_header(header::ACCEPT, rules.accept.clone()));
        };
        if let Err(d) = rules.check_type(ct) {
            return Flow::Stop(d);
        }
        let media = split_media_type(ct).0;
        if !is_json(&media) {
            return Flow::Continue;
        }
        let doc = match strict::parse(body) {
            Ok(doc) => doc,
            Err(e) => return invalid(vec![e]),
        };
        let schema = rules.body_by_type.iter().find(|(t, _)| *t == media).map(|(_, v)| v).or(rules.body.as_ref());
        if let Some(schema) = schema {
            let mut errors = Vec::new();
            schema_errors(schema, &doc, "body", &mut errors);
            if !errors.is_empty() {
                return invalid(errors);
            }
        }
        Flow::Continue
    }
}

/// Strict JSON: UTF-8, one document, no duplicate member names, bounded depth.
pub mod strict {
    use super::{FieldError, MAX_DEPTH, pointer_of};
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};
    use std::cell::RefCell;
    use std::fmt;

    /// Where the reader is (member names and indexes) and the first failure found.
    #[derive(Default)]
    struct State {
        path: Vec<String>,
        failure: Option<(String, &'static str)>,
    }

    impl State {
        fn fail<E: de::Error>(&mut self, reason: &'static str) -> E {
            let parts: Vec<&str> = self.path.iter().map(String::as_str).collect();
            self.failure = Some((pointer_of(&parts), reason));
            E::custom(reason)
        }
    }

    struct Node<'s> {
        depth: usize,
        state: &'s RefCell<State>,
    }

    impl<'de> DeserializeSeed<'de> for Node<'_> {
        type Value = Value;

        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Node<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| self.state.borrow_mut().fail("is not a finite number"))
        }

        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }

        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            if self.depth >= MAX_DEPTH {
                return Err(self.state.borrow_mut().fail("is nested too deeply"));
            }
            let mut items = Vec::new();
            loop {
                self.state.borrow_mut().path.push(items.len().to_string());
                let item = seq.next_element_seed(Node { depth: self.depth + 1, state: self.state })?;
                self.state.borrow_mut().path.pop();
                match item {
                    Some(v) => items.push(v),
                    None => return Ok(Value::Array(items)),
                }
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            if self.depth >= MAX_DEPTH {
                return Err(self.state.borrow_mut().fail("is nested too deeply"));
            }
            let mut members = Map::new();
            while let Some(name) = map.next_key::<String>()? {
                self.state.borrow_mut().path.push(name.clone());
                if members.contains_key(&name) {
                    return Err(self.state.borrow_mut().fail("is a duplicate member name"));
                }
                let value = map.next_value_seed(Node { depth: self.depth + 1, state: self.state })?;
                self.state.borrow_mut().path.pop();
                members.insert(name, value);
            }
            Ok(Value::Object(members))
        }
    }

    /// Parses `bytes` as one strict JSON document; the failure says where and why.
    pub fn parse(bytes: &[u8]) -> Result<Value, FieldError> {
        if std::str::from_utf8(bytes).is_err() {
            return Err(FieldError::new("body", String::new(), "is not valid UTF-8".into()));
        }
        let state = RefCell::new(State::default());
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = Node { depth: 0, state: &state }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
        match parsed {
            Ok(v) => Ok(v),
            Err(e) => Err(match state.into_inner().failure {
                Some((pointer, reason)) => FieldError::new("body", pointer, reason.into()),
                None => {
                    let what = if e.is_eof() { "ends too early" } else { "is not valid JSON" };
                    FieldError::new("body", String::new(), format!("{what} (line {}, column {})", e.line(), e.column()))
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_json_refuses_duplicates_bad_utf8_depth_and_trailing_data() {
        assert_eq!(strict::parse(br#"{"a": [1, {"b": 2.5}], "c": null}"#).unwrap(), json!({"a": [1, {"b": 2.5}], "c": null}));
        let e = strict::parse(br#"{"a": {"b": 1, "b": 2}}"#).unwrap_err();
        assert_eq!((e.pointer.as_str(), e.reason.as_str()), ("/a/b", "is a duplicate member name"));
        // The same name spelled with an escape is the same name.
        assert_eq!(strict::parse(br#"{"role": "user", "\u0072ole": "admin"}"#).unwrap_err().pointer, "/role");
        let e = strict::parse(br#"[0, {"x/y": [1, {"k": 1, "k": 1}]}]"#).unwrap_err();
        assert_eq!(e.pointer, "/1/x~1y/1/k");
        assert_eq!(strict::parse(b"{\"a\": \"\xff\"}").unwrap_err().reason, "is not valid UTF-8");
        assert_eq!(strict::parse(br#""\ud800""#).unwrap_err().pointer, "");
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(strict::parse(deep.as_bytes()).unwrap_err().reason, "is nested too deeply");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(strict::parse(ok.as_bytes()).is_ok());
        assert!(strict::parse(b"{} {}").unwrap_err().reason.starts_with("is not valid JSON"));
        assert!(strict::parse(b"1e400").is_err());
    }

    #[test]
    fn parameters_are_read_as_their_schema_types() {
        let p = Params::new(&json!({
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 1}, "tags": {"type": "array", "items": {"type": "integer"}}, "b": {"type": "boolean"}},
            "required": ["n"],
        }))
        .unwrap();
        let mut errors = Vec::new();
        p.check("query", [("n", "3"), ("tags", "1"), ("tags", "2"), ("b", "true")].into_iter(), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        p.check("query", [("n", "0"), ("tags", "x"), ("b", "yes"), ("b", "no")].into_iter(), &mut errors);
        let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.pointer.as_str(), e.reason.as_str())).collect();
        assert!(got.contains(&("/n", "must be at least 1")), "{got:?}");
        assert!(got.contains(&("/tags/0", "must be of type integer")), "{got:?}");
        assert!(got.contains(&("/b", "must be given once")), "{got:?}");
        errors.clear();
        p.check("query", std::iter::empty(), &mut errors);
        assert_eq!(errors[0].pointer, "/n");
        assert_eq!(errors[0].reason, "is required");
    }

    #[test]
    fn reasons_never_repeat_the_input() {
        let v = compile(&json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"enum": ["x"]}}})).unwrap();
        let huge = "z".repeat(10_000);
        let mut errors = Vec::new();
        schema_errors(&v, &json!({"a": huge, "b": huge}), "body", &mut errors);
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| !e.reason.contains("zzz") && e.reason.len() < 60), "{errors:?}");
    }

    #[test]
    fn remote_references_are_not_fetched() {
        assert!(compile(&json!({"$ref": "https://schemas.example/x.json"})).is_err());
        assert!(compile(&json!({"$ref": "file:///etc/passwd"})).is_err());
        assert!(compile(&json!({"$defs": {"a": {"type": "string"}}, "$ref": "#/$defs/a"})).is_ok());
        assert!(compile(&json!("string")).is_err());
    }
}
