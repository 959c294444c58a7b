//! The HTTP validators every file-serving listener shares (the API's
//! downloads and console, the southbound file server): one reading of
//! `If-None-Match`, so that they cannot drift apart.

use axum::http::{header, HeaderMap};

/// Whether the request's `If-None-Match` matches `etag` (a quoted strong
/// tag, `"..."`): any listed tag equal to it, its weak form (`W/"..."`,
/// since If-None-Match compares weakly, RFC 9110 13.1.2), or `*` (the
/// resource exists: its caller has it). A matching GET or HEAD is 304.
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn matches_any_listed_tag_its_weak_form_and_star() {
        let tag = "\"abc\"";
        assert!(if_none_match(&with(&["\"abc\""]), tag));
        assert!(if_none_match(&with(&["\"x\", \"abc\""]), tag));
        assert!(if_none_match(&with(&["\"x\"", "\"abc\""]), tag));
        assert!(if_none_match(&with(&["W/\"abc\""]), tag));
        assert!(if_none_match(&with(&["*"]), tag));
        assert!(!if_none_match(&with(&["\"abd\""]), tag));
        assert!(!if_none_match(&with(&["abc"]), tag));
        assert!(!if_none_match(&HeaderMap::new(), tag));
    }
}
