//! Path normalisation: the one form of a request path that route matching sees and the
//! upstream receives. Pure string work, no HTTP types.
//!
//! A gateway that matches one spelling of a path and forwards another lets a caller reach a
//! route without that route's policies whenever the upstream decodes or resolves the path
//! more leniently than the gateway did (`/api/%61dmin` matched as `/api/%61dmin`, served as
//! `/api/admin`). So the path is brought to one canonical form *before* matching, and that
//! form is what the upstream gets. In order:
//!
//! 1. the path must start with `/`; a raw `\` or `;` (path parameters, which some servers
//!    strip and others keep) is refused;
//! 2. percent-escapes: an escape of an unreserved character (RFC 3986 §2.3: `A-Z a-z 0-9 - .
//!    _ ~`) is decoded; an escape of `/`, `\`, NUL or `%` (`%2F`, `%5C`, `%00`, `%25`) is
//!    refused (an encoded separator, or a second decoding round waiting to happen); a
//!    malformed escape is refused; every other escape is kept, upper-cased (§6.2.2.1);
//! 3. empty segments (`//`) are dropped;
//! 4. `.` segments are dropped and `..` removes the previous segment, never going above the
//!    root (§5.2.4) — after decoding, so `%2E%2E` is a `..` too;
//! 5. a trailing `/` is kept (`/api/` and `/api` stay different paths), also where a final
//!    `.` or `..` segment leaves a directory (`/a/b/..` → `/a/`).
//!
//! The result is idempotent: normalising it again returns it unchanged.

use std::fmt;

/// Why a path was refused. The message names the rule, never the path itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Not an origin-form path (`*`, empty, or not starting with `/`).
    NotAbsolute,
    /// `%2F`: an encoded `/`.
    EncodedSlash,
    /// `%5C` or a raw `\`.
    Backslash,
    /// `%00`.
    EncodedNul,
    /// `%25`: an encoded `%`, i.e. a double encoding.
    DoubleEncoding,
    /// `%` not followed by two hex digits.
    MalformedEscape,
    /// A `;` path parameter.
    PathParameter,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAbsolute => "the request path must start with /",
            Self::EncodedSlash => "the request path contains an encoded slash (%2F)",
            Self::Backslash => "the request path contains a backslash",
            Self::EncodedNul => "the request path contains an encoded NUL (%00)",
            Self::DoubleEncoding => "the request path contains an encoded percent sign (%25)",
            Self::MalformedEscape => "the request path contains a malformed percent-escape",
            Self::PathParameter => "the request path contains a ; path parameter",
        })
    }
}

impl std::error::Error for PathError {}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes the escapes of one segment as step 2 of the module doc says, appending to `out`.
fn decode_segment(seg: &str, out: &mut String) -> Result<(), PathError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = seg.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
                else {
                    return Err(PathError::MalformedEscape);
                };
                let v = hi << 4 | lo;
                match v {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::Backslash),
                    0 => return Err(PathError::EncodedNul),
                    b'%' => return Err(PathError::DoubleEncoding),
                    _ if is_unreserved(v) => out.push(char::from(v)),
                    _ => {
                        out.push('%');
                        out.push(char::from(HEX[usize::from(hi)]));
                        out.push(char::from(HEX[usize::from(lo)]));
                    }
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            _ => {
                // Copy the run of plain bytes up to the next special one (keeps UTF-8 intact;
                // a raw non-ASCII byte never reaches here through hyper's URI parser anyway).
                let run = bytes[i..].iter().position(|c| matches!(c, b'%' | b'\\' | b';')).map_or(bytes.len(), |n| i + n);
                out.push_str(&seg[i..run]);
                i = run;
            }
        }
    }
    Ok(())
}

/// Normalises an origin-form request path (without the query). See the module doc.
pub fn normalise(path: &str) -> Result<String, PathError> {
    let Some(rest) = path.strip_prefix('/') else { return Err(PathError::NotAbsolute) };
    let mut out = String::with_capacity(path.len());
    // Byte offsets into `out` where each kept segment starts (at its leading '/').
    let mut starts: Vec<usize> = Vec::new();
    let mut trailing = false;
    let mut seg = String::new();
    for raw in rest.split('/') {
        seg.clear();
        decode_segment(raw, &mut seg)?;
        match seg.as_str() {
            "" => trailing = true,
            "." => trailing = true,
            ".." => {
                if let Some(start) = starts.pop() {
                    out.truncate(start);
                }
                trailing = true;
            }
            s => {
                starts.push(out.len());
                out.push('/');
                out.push_str(s);
                trailing = false;
            }
        }
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalise(p)
    }

    /// The tricks of issue #7 item 2: each either becomes the plain path (so the route that
    /// guards it applies) or is refused.
    #[test]
    fn the_issue_examples() {
        assert_eq!(n("/api/./admin").unwrap(), "/api/admin");
        assert_eq!(n("/api//admin").unwrap(), "/api/admin");
        assert_eq!(n("/api/%61dmin").unwrap(), "/api/admin");
        assert_eq!(n("/api/%2561dmin"), Err(PathError::DoubleEncoding));
        assert_eq!(n("/api/items/../admin").unwrap(), "/api/admin");
        assert_eq!(n("/api/admin;x=1/stats"), Err(PathError::PathParameter));
    }

    #[test]
    fn dot_segments_resolve_and_never_climb_above_the_root() {
        assert_eq!(n("/../../etc/passwd").unwrap(), "/etc/passwd");
        assert_eq!(n("/a/b/..").unwrap(), "/a/");
        assert_eq!(n("/a/b/.").unwrap(), "/a/b/");
        assert_eq!(n("/a/%2E%2E/b").unwrap(), "/b");
        assert_eq!(n("/a/.%2e/b").unwrap(), "/b");
        assert_eq!(n("/..").unwrap(), "/");
        assert_eq!(n("/.").unwrap(), "/");
        assert_eq!(n("/").unwrap(), "/");
        assert_eq!(n("/a/...").unwrap(), "/a/...", "three dots are a name");
    }

    #[test]
    fn slashes_merge_and_a_trailing_slash_is_kept() {
        assert_eq!(n("//a///b//").unwrap(), "/a/b/");
        assert_eq!(n("/api/").unwrap(), "/api/");
        assert_eq!(n("/api").unwrap(), "/api");
        assert_eq!(n("//").unwrap(), "/");
    }

    #[test]
    fn escapes_of_unreserved_characters_are_decoded_others_kept_upper_case() {
        assert_eq!(n("/%41%7a%30%2D%2e%5F%7E").unwrap(), "/Az0-._~");
        assert_eq!(n("/caf%c3%a9/a%20b").unwrap(), "/caf%C3%A9/a%20b");
        assert_eq!(n("/a%3fb%23c").unwrap(), "/a%3Fb%23c", "? and # stay encoded");
    }

    #[test]
    fn dangerous_or_malformed_escapes_are_refused() {
        for (p, e) in [
            ("/a%2Fb", PathError::EncodedSlash),
            ("/a%2fb", PathError::EncodedSlash),
            ("/a%5Cb", PathError::Backslash),
            ("/a%5cb", PathError::Backslash),
            ("/a\\b", PathError::Backslash),
            ("/a%00", PathError::EncodedNul),
            ("/a%25", PathError::DoubleEncoding),
            ("/a%", PathError::MalformedEscape),
            ("/a%4", PathError::MalformedEscape),
            ("/a%zz", PathError::MalformedEscape),
            ("/a%%41", PathError::MalformedEscape),
            ("/a;b", PathError::PathParameter),
            ("/a/;", PathError::PathParameter),
            ("*", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            ("a/b", PathError::NotAbsolute),
        ] {
            assert_eq!(n(p), Err(e), "{p}");
            assert!(!e.to_string().contains(p.trim_start_matches('/')) || p.len() < 3, "the message does not echo the path");
        }
    }

    /// A path segment made of characters that exercise every rule.
    fn segment() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just(".".to_owned()),
                Just("..".to_owned()),
                Just("%2E".to_owned()),
                Just("%2e".to_owned()),
                Just("%41".to_owned()),
                Just("%7e".to_owned()),
                Just("%20".to_owned()),
                Just("%c3%a9".to_owned()),
                Just("%3f".to_owned()),
                "[a-zA-Z0-9._~!$&'()*+,=:@-]{1,3}",
            ],
            0..4,
        )
        .prop_map(|parts| parts.concat())
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 0..8).prop_map(|segs| format!("/{}", segs.join("/")))
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent_and_canonical(p in path()) {
            let once = normalise(&p).unwrap();
            prop_assert_eq!(normalise(&once).unwrap(), once.clone());
            prop_assert!(once.starts_with('/'));
            prop_assert!(!once.contains("//"), "{} → {}", p, once);
            for seg in once.split('/') {
                prop_assert!(seg != "." && seg != "..", "{} → {}", p, once);
            }
            let bytes = once.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'%' {
                    let v = u8::from_str_radix(&once[i + 1..i + 3], 16).unwrap();
                    prop_assert!(!is_unreserved(v), "{} → {} keeps an encoded unreserved character", p, once);
                    prop_assert!(once[i + 1..i + 3].bytes().all(|c| !c.is_ascii_lowercase()));
                }
            }
        }

        #[test]
        fn arbitrary_input_never_panics_and_results_are_fixed_points(p in "/[ -~]{0,40}") {
            if let Ok(once) = normalise(&p) {
                prop_assert_eq!(normalise(&once).unwrap(), once.clone());
                prop_assert!(!once.contains("//"));
            }
        }
    }
}
