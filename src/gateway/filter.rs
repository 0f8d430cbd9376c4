//! Response field filtering (issue #7 item 7; OWASP API3:2023, "don't return too much
//! data"): a JSON response keeps only what the route declares, by a JSON Schema
//! (`response_schema`), an allow-list of fields (`response_fields`), or both (both apply).
//!
//! The schema, as a filter (pure; no validation — a response is never refused for not
//! matching, only trimmed):
//! - an object keeps the properties some applicable schema lists in `properties`, each
//!   filtered by the schemas given for it; other properties are removed, unless a schema's
//!   `additionalProperties` is a schema (they are kept, filtered by it) or `true` (kept
//!   whole); a schema that declares no properties leaves `{}`;
//! - an array's elements are filtered by `items`;
//! - scalars are kept;
//! - `$ref` (to `#`, `#/$defs/…`, `#/definitions/…` or any pointer into the same document),
//!   `allOf`, `anyOf` and `oneOf` are followed: a property is kept when any branch lists it;
//! - the schema `true` keeps the value whole.
//!
//! The allow-list: each entry is a JSON pointer (`/user/name`) or a dotted path
//! (`user.name`); arrays are transparent (`orders.id` keeps the `id` of every element of
//! `orders`); an entry keeps its value whole; a value where an entry expects an object
//! (a scalar at `user` for `user.name`) is removed.
//!
//! A filtered body is re-serialised: its object keys come out sorted (`serde_json` without
//! `preserve_order`), which JSON does not give meaning to.

use serde_json::{Map, Value};
use std::collections::HashMap;

/// How deep `$ref`, `allOf`, `anyOf` and `oneOf` are followed from one value (a `$ref`
/// cycle stops here instead of looping).
const MAX_EXPANSION: u8 = 32;

/// A response schema, checked at load: every `$ref` is local and resolves.
#[derive(Debug, Clone)]
pub struct Schema {
    root: Value,
}

impl Schema {
    /// Checks the schema; the error says which `$ref` is unusable.
    pub fn new(root: Value) -> Result<Schema, String> {
        if !root.is_object() && !root.is_boolean() {
            return Err("must be a JSON Schema object".into());
        }
        let s = Schema { root };
        s.check_refs(&s.root)?;
        Ok(s)
    }

    fn check_refs(&self, v: &Value) -> Result<(), String> {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref") {
                    let r = r.as_str().ok_or("$ref must be a string")?;
                    if self.lookup(r).is_none() {
                        return Err(format!("$ref \"{r}\" does not resolve within the schema (only local references, e.g. \"#/$defs/Item\")"));
                    }
                }
                m.values().try_for_each(|x| self.check_refs(x))
            }
            Value::Array(a) => a.iter().try_for_each(|x| self.check_refs(x)),
            _ => Ok(()),
        }
    }

    fn lookup(&self, r: &str) -> Option<&Value> {
        let pointer = r.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(&self.root);
        }
        self.root.pointer(pointer)
    }

    /// The schemas that apply where `s` applies: `s` itself and what its `$ref`, `allOf`,
    /// `anyOf` and `oneOf` lead to.
    fn expand<'a>(&'a self, s: &'a Value, out: &mut Vec<&'a Value>, depth: u8) {
        if depth > MAX_EXPANSION {
            return;
        }
        let Value::Object(m) = s else {
            if s == &Value::Bool(true) {
                out.push(s);
            }
            return;
        };
        if let Some(target) = m.get("$ref").and_then(Value::as_str).and_then(|r| self.lookup(r)) {
            self.expand(target, out, depth + 1);
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = m.get(key) {
                for b in branches {
                    self.expand(b, out, depth + 1);
                }
            }
        }
        out.push(s);
    }

    /// Trims `value` to what the schema declares (module doc).
    pub fn filter(&self, value: &mut Value) {
        self.filter_with(value, &[&self.root]);
    }

    fn filter_with(&self, value: &mut Value, schemas: &[&Value]) {
        let mut applicable = Vec::new();
        for s in schemas {
            self.expand(s, &mut applicable, 0);
        }
        if applicable.iter().any(|s| **s == Value::Bool(true)) {
            return;
        }
        match value {
            Value::Object(obj) => {
                let keys: Vec<String> = obj.keys().cloned().collect();
                for key in keys {
                    let declared: Vec<&Value> = applicable.iter().filter_map(|s| s.get("properties")?.get(&key)).collect();
                    let subs = if declared.is_empty() {
                        applicable.iter().filter_map(|s| s.get("additionalProperties")).filter(|a| a.is_object() || **a == Value::Bool(true)).collect()
                    } else {
                        declared
                    };
                    if subs.is_empty() {
                        obj.remove(&key);
                    } else if let Some(v) = obj.get_mut(&key) {
                        self.filter_with(v, &subs);
                    }
                }
            }
            Value::Array(items) => {
                let subs: Vec<&Value> = applicable.iter().filter_map(|s| s.get("items")).filter(|i| i.is_object() || **i == Value::Bool(true)).collect();
                for item in items {
                    self.filter_with(item, &subs);
                }
            }
            _ => {}
        }
    }
}

/// An allow-list of fields, as a tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    /// This node is listed itself: keep its value whole.
    whole: bool,
    children: HashMap<String, Fields>,
}

impl Fields {
    /// Parses the entries (module doc); the error names the bad one.
    pub fn new(entries: &[String]) -> Result<Fields, String> {
        let mut root = Fields::default();
        for entry in entries {
            let segments: Vec<String> = match entry.strip_prefix('/') {
                Some(pointer) => pointer.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect(),
                None => entry.split('.').map(str::to_owned).collect(),
            };
            if entry.is_empty() || segments.iter().any(String::is_empty) {
                return Err(format!("\"{entry}\" is not a field path (e.g. \"/user/name\" or \"user.name\")"));
            }
            let mut node = &mut root;
            for s in segments {
                node = node.children.entry(s).or_default();
            }
            node.whole = true;
        }
        Ok(root)
    }

    /// Trims `value` to the listed fields.
    pub fn filter(&self, value: &mut Value) {
        self.keep(value);
    }

    /// Filters `value` in place; `false`: remove it altogether.
    fn keep(&self, value: &mut Value) -> bool {
        if self.whole {
            return true;
        }
        match value {
            Value::Object(obj) => {
                let old = std::mem::take(obj);
                let mut kept = Map::new();
                for (k, mut v) in old {
                    if let Some(child) = self.children.get(&k)
                        && child.keep(&mut v)
                    {
                        kept.insert(k, v);
                    }
                }
                *obj = kept;
                true
            }
            Value::Array(items) => {
                items.retain_mut(|item| self.keep(item));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> Schema {
        Schema::new(v).unwrap()
    }

    #[test]
    fn undeclared_properties_go_recursively_and_through_arrays() {
        let s = schema(json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "owner": {"type": "object", "properties": {"name": {"type": "string"}}},
                "orders": {"type": "array", "items": {"type": "object", "properties": {"id": {}}}}
            }
        }));
        let mut v = json!({
            "id": "1", "password_hash": "$argon2id$…",
            "owner": {"name": "Ann", "ssn": "123-45-6789"},
            "orders": [{"id": 1, "card": "4111"}, {"id": 2, "card": "5500"}]
        });
        s.filter(&mut v);
        assert_eq!(v, json!({"id": "1", "owner": {"name": "Ann"}, "orders": [{"id": 1}, {"id": 2}]}));
    }

    #[test]
    fn refs_and_combinators_are_followed_and_cycles_end() {
        let s = schema(json!({
            "$ref": "#/$defs/Node",
            "$defs": {
                "Node": {
                    "allOf": [{"properties": {"name": {}}}, {"$ref": "#/definitions/Kids"}]
                }
            },
            "definitions": {"Kids": {"properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}}
        }));
        let mut v = json!({"name": "a", "secret": 1, "kids": [{"name": "b", "secret": 2, "kids": []}]});
        s.filter(&mut v);
        assert_eq!(v, json!({"name": "a", "kids": [{"name": "b", "kids": []}]}));
        // A self-reference that never reaches properties: everything goes, nothing loops.
        let s = schema(json!({"$ref": "#"}));
        let mut v = json!({"a": 1});
        s.filter(&mut v);
        assert_eq!(v, json!({}));
    }

    #[test]
    fn additional_properties_and_true_keep_what_they_say() {
        let s = schema(json!({"properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {}}}},
            "blob": true,
            "open": {"additionalProperties": true},
            "empty": {}
        }}));
        let mut v = json!({"labels": {"x": {"v": 1, "w": 2}}, "blob": {"any": [1]}, "open": {"k": {"deep": 1}}, "empty": {"a": 1}});
        s.filter(&mut v);
        assert_eq!(v, json!({"labels": {"x": {"v": 1}}, "blob": {"any": [1]}, "open": {"k": {"deep": 1}}, "empty": {}}));
    }

    #[test]
    fn unresolvable_or_remote_refs_are_configuration_errors() {
        assert!(Schema::new(json!({"$ref": "#/$defs/Missing"})).is_err());
        assert!(Schema::new(json!({"properties": {"a": {"$ref": "https://evil.example/s.json"}}})).is_err());
        assert!(Schema::new(json!("string")).is_err());
        assert!(Schema::new(json!({"$defs": {"a/b": {}}, "$ref": "#/$defs/a~1b"})).is_ok());
    }

    #[test]
    fn allow_lists_take_pointers_and_dotted_paths_and_see_through_arrays() {
        let f = Fields::new(&["/id".into(), "owner.name".into(), "orders.id".into(), "/a~1b".into()]).unwrap();
        let mut v = json!({
            "id": 1, "token": "t", "a/b": 2,
            "owner": {"name": "Ann", "ssn": "x"},
            "orders": [{"id": 1, "card": "4111"}, "scalar"],
        });
        f.filter(&mut v);
        assert_eq!(v, json!({"id": 1, "a/b": 2, "owner": {"name": "Ann"}, "orders": [{"id": 1}]}));
        // A scalar where an object is expected is removed, not passed.
        let mut v = json!({"owner": "secret", "id": {"deep": true}});
        f.filter(&mut v);
        assert_eq!(v, json!({"id": {"deep": true}}));
        // A top-level array of objects.
        let mut v = json!([{"id": 1, "x": 2}]);
        f.filter(&mut v);
        assert_eq!(v, json!([{"id": 1}]));
        for bad in ["", "a..b", "/a//b", "/"] {
            assert!(Fields::new(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
