//! Reading a TOML table key by key, collecting every error instead of stopping at the first.
//!
//! The file is parsed into a `toml::Table`, environment overrides are laid over it as
//! strings, then each section's resolver pulls its keys through a [`Reader`]: typed getters
//! with defaults that record an error (with the key's full path and, for overrides, the
//! variable name) and go on. Whatever is left in a table afterwards is an unknown key.

use super::ConfigError;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use toml::{Table, Value};

/// Top-level keys that may be set as `WARDEN_<KEY>` (no section).
const TOP_LEVEL_ENV: &[&str] = &["trusted_proxies"];

/// Lays `WARDEN_<SECTION>__<KEY>=value` variables (and `WARDEN_<KEY>` for [`TOP_LEVEL_ENV`])
/// over `root` as string values. Other variables without `__` (`WARDEN_CONFIG`,
/// `WARDEN_DATA_DIR`, `WARDEN_MASTER_KEY`, …) are not config keys and are left alone. Returns
/// where each overridden path came from.
pub(super) fn overlay_env(
    root: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> HashMap<String, String> {
    let mut origins = HashMap::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("WARDEN_") else { continue };
        if !rest.contains("__") {
            let key = rest.to_ascii_lowercase();
            if TOP_LEVEL_ENV.contains(&key.as_str()) {
                root.insert(key.clone(), Value::String(value));
                origins.insert(key, name);
            }
            continue;
        }
        let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let mut table = &mut *root;
        for section in &parts[..parts.len() - 1] {
            let entry = table.entry(section.clone()).or_insert_with(|| Value::Table(Table::new()));
            if !entry.is_table() {
                *entry = Value::Table(Table::new());
            }
            table = entry.as_table_mut().expect("made a table above");
        }
        table.insert(parts[parts.len() - 1].clone(), Value::String(value));
        origins.insert(parts.join("."), name);
    }
    origins
}

/// Shared state of one resolution: the errors so far and every key path read.
#[derive(Default)]
pub(crate) struct Sink {
    pub errors: Vec<ConfigError>,
    pub seen: BTreeSet<String>,
    pub origins: HashMap<String, String>,
}

/// A cursor over one table.
pub(crate) struct Reader<'s> {
    prefix: String,
    table: Table,
    sink: &'s mut Sink,
}

impl<'s> Reader<'s> {
    pub(crate) fn new(table: Table, sink: &'s mut Sink) -> Self {
        Self { prefix: String::new(), table, sink }
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() { key.to_owned() } else { format!("{}.{key}", self.prefix) }
    }

    fn error(&mut self, key: &str, message: impl Into<String>) {
        let path = self.path(key);
        let origin = self.sink.origins.get(&path).cloned();
        self.sink.errors.push(ConfigError { key: path, origin, message: message.into() });
    }

    /// Records an error about `key` found by a later check (a value that parsed but is invalid).
    pub(crate) fn invalid(&mut self, key: &str, message: impl Into<String>) {
        self.error(key, message)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        let path = self.path(key);
        self.sink.seen.insert(path);
        self.table.remove(key)
    }

    /// A sub-table; a missing one reads as empty.
    pub(crate) fn section(&mut self, name: &str) -> Reader<'_> {
        let table = match self.take(name) {
            None => Table::new(),
            Some(Value::Table(t)) => t,
            Some(_) => {
                self.error(name, "must be a table");
                Table::new()
            }
        };
        Reader { prefix: self.path(name), table, sink: self.sink }
    }

    fn typed<T>(
        &mut self,
        key: &str,
        default: T,
        expected: &str,
        convert: impl FnOnce(&Value) -> Option<T>,
    ) -> T {
        match self.take(key) {
            None => default,
            Some(v) => match convert(&v) {
                Some(t) => t,
                None => {
                    self.error(key, format!("expected {expected}, found {}", describe(&v)));
                    default
                }
            },
        }
    }

    pub(crate) fn string(&mut self, key: &str, default: &str) -> String {
        self.typed(key, default.to_owned(), "a string", |v| v.as_str().map(str::to_owned))
    }

    pub(crate) fn u64(&mut self, key: &str, default: u64) -> u64 {
        self.typed(key, default, "a non-negative integer", |v| match v {
            Value::Integer(i) => u64::try_from(*i).ok(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    /// An integer that must lie in `range`; out of range is an error, never a silent clamp or
    /// truncation.
    pub(crate) fn uint(&mut self, key: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
        let v = self.u64(key, default);
        if range.contains(&v) {
            v
        } else {
            self.error(key, format!("must be between {} and {}, found {v}", range.start(), range.end()));
            default
        }
    }

    /// A boolean (`true`/`false`; from the environment also as a string).
    pub(crate) fn bool(&mut self, key: &str, default: bool) -> bool {
        self.typed(key, default, "true or false", |v| match v {
            Value::Boolean(b) => Some(*b),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    pub(crate) fn duration(&mut self, key: &str, default: &str) -> Duration {
        let fallback = humantime::parse_duration(default).expect("defaults are valid durations");
        self.typed(key, fallback, "a duration such as \"30s\", \"10m\" or \"1h\"", |v| {
            v.as_str().and_then(|s| humantime::parse_duration(s.trim()).ok())
        })
    }

    pub(crate) fn strings(&mut self, key: &str, default: &[&str]) -> Vec<String> {
        let default: Vec<String> = default.iter().map(|s| (*s).to_owned()).collect();
        self.typed(key, default, "a list of strings", |v| match v {
            Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_owned)).collect(),
            // From the environment: comma-separated.
            Value::String(s) => Some(
                s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            ),
            _ => None,
        })
    }

    /// A string that must be one of `allowed`.
    pub(crate) fn choice(&mut self, key: &str, default: &str, allowed: &[&str]) -> String {
        let v = self.string(key, default);
        if allowed.contains(&v.as_str()) {
            v
        } else {
            self.error(key, format!("must be one of {}, found \"{v}\"", allowed.join(", ")));
            default.to_owned()
        }
    }

    pub(crate) fn socket_addr(&mut self, key: &str, default: &str) -> std::net::SocketAddr {
        let fallback = default.parse().expect("defaults are valid addresses");
        self.typed(key, fallback, "an address such as \"127.0.0.1:8080\"", |v| {
            v.as_str().and_then(|s| s.trim().parse().ok())
        })
    }

    /// A duration that may be absent (`None`).
    pub(crate) fn duration_opt(&mut self, key: &str) -> Option<Duration> {
        self.typed(key, None, "a duration such as \"30s\", \"10m\" or \"1h\"", |v| {
            v.as_str().and_then(|s| humantime::parse_duration(s.trim()).ok()).map(Some)
        })
    }

    /// A value of any type, as written (`None` when absent); the caller checks its shape.
    pub(crate) fn value(&mut self, key: &str) -> Option<Value> {
        self.take(key)
    }

    /// The keys of this table (for tables whose keys are names, like `plans = { gold = 1000 }`).
    pub(crate) fn keys(&self) -> Vec<String> {
        self.table.keys().cloned().collect()
    }

    /// Whether the table has `key` (without reading it).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// An array of tables (`[[section.key]]`): `each` reads entry `i` under the path
    /// `section.key[i]`.
    pub(crate) fn tables(&mut self, key: &str, mut each: impl FnMut(usize, Reader<'_>)) {
        match self.take(key) {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    let entry = format!("{key}[{i}]");
                    match item {
                        Value::Table(table) => each(i, Reader { prefix: self.path(&entry), table, sink: self.sink }),
                        _ => self.error(&entry, "must be a table"),
                    }
                }
            }
            Some(_) => self.error(key, "must be a list of tables ([[...]] entries)"),
        }
    }

    /// Reports every key nobody asked for.
    pub(crate) fn finish(mut self) {
        let unknown: Vec<String> = self.table.keys().cloned().collect();
        for key in unknown {
            self.error(&key, "unknown key");
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Table(_) => "a table".into(),
        Value::Array(_) => "a list".into(),
        other => other.to_string(),
    }
}
