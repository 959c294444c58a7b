//! The request path, read once: split on `/`, each segment percent-decoded
//! exactly once, and refused (400) when a decoded segment could name
//! something outside the served trees or another segment: `.` and `..`
//! (so `%2e%2e` too), an encoded `/` (`%2F`), a backslash, NUL or another
//! control character, an empty segment (`//`, which also covers a path
//! that looks absolute once joined), invalid UTF-8 or a broken escape.
//! What a segment then names is `resolve`'s concern.

use super::{FilesError, StoreKind};

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: the stores and the OS images.
    Root,
    /// `/isos/`, `/microkernels/`.
    StoreList(StoreKind),
    Stored(StoreKind, String),
    /// `/images/<id>`.
    Image(String),
    /// `/images/by-tag/<tag>`.
    ImageByTag(String),
    /// `/<name>/`: the versions of one OS image; `dir`: asked with the
    /// final `/` (else a redirect, when the name exists).
    OsVersions {
        name: String,
        dir: bool,
    },
    /// `/<name>/<version>/<rest...>`; `dir`: the path ended with `/`.
    OsTree {
        name: String,
        version: String,
        rest: Vec<String>,
        dir: bool,
    },
    /// A folder asked for without its final `/`: answered with a
    /// redirect, so that a listing's relative links resolve.
    AddSlash(String),
}

fn bad(why: &'static str) -> FilesError {
    FilesError::BadPath(why)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One segment, decoded once and checked.
fn segment(raw: &str) -> Result<String, FilesError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(bad("a broken %-escape"));
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| bad("not UTF-8 once decoded"))?;
    if s.is_empty() {
        return Err(bad("an empty segment (//)"));
    }
    if s == "." || s == ".." {
        return Err(bad("a . or .. segment"));
    }
    if s.contains('/') {
        return Err(bad("an encoded / inside a segment"));
    }
    if s.contains('\\') {
        return Err(bad("a backslash"));
    }
    if s.chars().any(char::is_control) {
        return Err(bad("NUL or a control character"));
    }
    Ok(s)
}

/// Reads a request path (the URI's path, query excluded).
pub fn route(path: &str) -> Result<Route, FilesError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(bad("not an absolute path"));
    };
    if rest.is_empty() {
        return Ok(Route::Root);
    }
    let (rest, dir) = match rest.strip_suffix('/') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let segments = rest
        .split('/')
        .map(segment)
        .collect::<Result<Vec<_>, _>>()?;
    let slash = || Route::AddSlash(format!("{path}/"));
    let first = segments[0].as_str();
    let store = match first {
        "isos" => Some(StoreKind::Iso),
        "microkernels" => Some(StoreKind::Microkernel),
        _ => None,
    };
    Ok(match (store, first, &segments[1..], dir) {
        (Some(kind), _, [], true) => Route::StoreList(kind),
        (Some(_), _, [], false) => slash(),
        (Some(kind), _, [name], false) => Route::Stored(kind, name.clone()),
        (Some(_), _, _, _) => return Err(FilesError::NotFound),
        (None, "images", [id], false) if id != "by-tag" => Route::Image(id.clone()),
        (None, "images", [by, tag], false) if by == "by-tag" => Route::ImageByTag(tag.clone()),
        (None, "images", _, _) => return Err(FilesError::NotFound),
        (None, name, [], dir) => Route::OsVersions {
            name: name.to_string(),
            dir,
        },
        (None, name, [version, rest @ ..], dir) => Route::OsTree {
            name: name.to_string(),
            version: version.clone(),
            rest: rest.to_vec(),
            dir,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str, version: &str, rest: &[&str], dir: bool) -> Route {
        Route::OsTree {
            name: name.into(),
            version: version.into(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
            dir,
        }
    }

    #[test]
    fn routes_each_family() {
        assert_eq!(route("/").unwrap(), Route::Root);
        assert_eq!(route("/isos/").unwrap(), Route::StoreList(StoreKind::Iso));
        assert_eq!(route("/isos").unwrap(), Route::AddSlash("/isos/".into()));
        assert_eq!(
            route("/microkernels/vmlinuz").unwrap(),
            Route::Stored(StoreKind::Microkernel, "vmlinuz".into())
        );
        assert_eq!(route("/images/abc").unwrap(), Route::Image("abc".into()));
        assert_eq!(
            route("/images/by-tag/v1").unwrap(),
            Route::ImageByTag("v1".into())
        );
        assert_eq!(
            route("/ubuntu/").unwrap(),
            Route::OsVersions {
                name: "ubuntu".into(),
                dir: true
            }
        );
        assert_eq!(
            route("/ubuntu/14.04").unwrap(),
            tree("ubuntu", "14.04", &[], false)
        );
        assert_eq!(
            route("/ubuntu/14.04/").unwrap(),
            tree("ubuntu", "14.04", &[], true)
        );
        assert_eq!(
            route("/ubuntu/14.04/a%20b/c.txt").unwrap(),
            tree("ubuntu", "14.04", &["a b", "c.txt"], false)
        );
        assert!(matches!(route("/isos/a/b"), Err(FilesError::NotFound)));
    }

    #[test]
    fn refuses_whatever_could_leave_a_tree() {
        for p in [
            "/u/1/../../etc/passwd",
            "/u/1/%2e%2e/x",
            "/u/1/%2E%2e/x",
            "/u/1/./x",
            "/u/1/a%2Fb",
            "/u/1/a%2fb",
            "/u/1/a%5Cb",
            "/u/1/a\\b",
            "/u/1/a%00b",
            "/u/1//etc/passwd",
            "//etc/passwd",
            "/u/1/%zz",
            "/u/1/%2",
            "/u/1/%ff",
            "/isos/..",
            "/images/%2e%2e",
            "etc/passwd",
        ] {
            assert!(
                matches!(route(p), Err(FilesError::BadPath(_))),
                "{p}: {:?}",
                route(p)
            );
        }
        // Decoded once: %252e%252e is the literal name "%2e%2e", harmless.
        assert_eq!(
            route("/u/1/%252e%252e").unwrap(),
            tree("u", "1", &["%2e%2e"], false)
        );
    }
}
