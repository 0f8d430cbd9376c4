//! Dependency-direction rules (ARCHITECTURE.md), checked on the source text so a violation
//! fails `cargo test` rather than a review.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Code lines only: doc and line comments may name other modules.
fn code(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

#[test]
fn modules_depend_only_in_the_allowed_directions() {
    // (module prefix, crate paths it must not use)
    let rules: &[(&str, &[&str])] = &[
        ("oauth/", &["crate::gateway", "crate::admin", "crate::cli", "crate::app", "crate::config"]),
        ("gateway/", &["crate::oauth", "crate::admin", "crate::cli", "crate::app", "crate::config"]),
        ("admin/", &["crate::cli", "crate::app"]),
        ("store/", &["crate::oauth", "crate::gateway", "crate::admin", "crate::http", "crate::jose", "crate::config", "crate::app", "crate::secrets"]),
        ("jose/", &["crate::oauth", "crate::gateway", "crate::admin", "crate::http", "crate::store", "crate::app", "crate::config"]),
        ("model/", &["crate::oauth", "crate::gateway", "crate::admin", "crate::http", "crate::store", "crate::jose", "crate::app", "crate::config", "crate::secrets"]),
        ("secrets/", &["crate::oauth", "crate::gateway", "crate::admin", "crate::http", "crate::store", "crate::jose", "crate::app", "crate::config"]),
        ("http/", &["crate::oauth", "crate::gateway", "crate::admin", "crate::store", "crate::app", "crate::config"]),
    ];
    let mut violations = Vec::new();
    for (file, text) in sources() {
        let body = code(&text);
        for (prefix, banned) in rules {
            if file.starts_with(prefix) {
                for b in *banned {
                    if body.contains(b) {
                        violations.push(format!("{file} uses {b}"));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "dependency rules broken:\n{}", violations.join("\n"));
}

#[test]
fn only_the_http_edge_knows_axum() {
    let allowed = |f: &str| {
        f.starts_with("http/") || f.ends_with("handler.rs") || f.starts_with("admin/") || f == "gateway/mod.rs" || f == "app.rs"
    };
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(f, text)| !allowed(f) && code(text).contains("axum"))
        .map(|(f, _)| f)
        .collect();
    assert!(offenders.is_empty(), "protocol code must not use axum: {offenders:?}");
}

#[test]
fn no_sql_compile_time_macros_and_no_unsafe() {
    for (file, text) in sources() {
        let body = code(&text);
        assert!(!body.contains("sqlx::query!") && !body.contains("query_as!"), "{file} uses sqlx macros");
        assert!(!body.contains("unsafe "), "{file} uses unsafe");
    }
}

/// hyper is the HTTP edge: the listeners' accept loop (`http/`) and the gateway, which speaks
/// HTTP to upstreams through hyper's client and so works on hyper's request, response and
/// header types throughout (`gateway/mod.rs` stays its only axum file). Everything else —
/// the provider's protocol code included — sees neither. The path normaliser is pure string
/// work, so the rule it implements can be read and tested without any HTTP type.
#[test]
fn only_the_http_edge_and_the_gateway_know_hyper() {
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(f, text)| {
            let uses = code(text).contains("hyper");
            (uses && !(f.starts_with("http/") || f.starts_with("gateway/"))) || (f == "gateway/path.rs" && (uses || code(text).contains("axum")))
        })
        .map(|(f, _)| f)
        .collect();
    assert!(offenders.is_empty(), "hyper outside the HTTP edge and the gateway: {offenders:?}");
}
