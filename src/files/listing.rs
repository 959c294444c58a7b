//! Directory listings: HTML for browsers (every name escaped, links
//! percent-encoded, a CSP that allows no script), JSON for
//! `Accept: application/json` (scripts and RackHD-side tooling).

use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::resolve::Listing;

/// Whether the client prefers JSON: it names application/json, before
/// text/html if it names both.
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match (accept.find("application/json"), accept.find("text/html")) {
        (Some(j), Some(h)) => j < h,
        (Some(_), None) => true,
        _ => false,
    }
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// Seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonListing<'a> {
    path: &'a str,
    entries: Vec<JsonEntry<'a>>,
}

fn seconds(t: Option<SystemTime>) -> Option<u64> {
    t?.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Percent-encodes a name for one path segment: everything but RFC
/// 3986's unreserved characters.
pub fn encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(list: &Listing) -> String {
    let title = escape(&list.path);
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title>\
         <style>body{{font-family:sans-serif}}td{{padding:0 1em}}td.n{{text-align:right}}</style>\
         </head><body><h1>Index of {title}</h1>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"
    );
    if list.path != "/" {
        s.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for e in &list.entries {
        let slash = if e.dir { "/" } else { "" };
        let size = if e.dir {
            String::new()
        } else {
            e.size.to_string()
        };
        let modified = e.modified.map(httpdate::fmt_http_date).unwrap_or_default();
        s.push_str(&format!(
            "<tr><td><a href=\"{}{slash}\">{}{slash}</a></td><td class=\"n\">{size}</td><td>{}</td></tr>\n",
            escape(&encode_segment(&e.name)),
            escape(&e.name),
            escape(&modified)
        ));
    }
    s.push_str("</table></body></html>\n");
    s
}

fn json(list: &Listing) -> String {
    let doc = JsonListing {
        path: &list.path,
        entries: list
            .entries
            .iter()
            .map(|e| JsonEntry {
                name: &e.name,
                kind: if e.dir { "dir" } else { "file" },
                size: (!e.dir).then_some(e.size),
                modified: seconds(e.modified),
                sha256: e.sha256.as_deref(),
            })
            .collect(),
    };
    // A struct of strings and numbers always serializes.
    serde_json::to_string(&doc).unwrap_or_default()
}

pub fn respond(list: &Listing, headers: &HeaderMap, head: bool) -> Response {
    let (text, content_type) = if wants_json(headers) {
        (json(list), "application/json")
    } else {
        (html(list), "text/html; charset=utf-8")
    };
    let length = text.len();
    let body = if head {
        Body::empty()
    } else {
        Body::from(text)
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::super::resolve::Entry;
    use super::*;

    #[test]
    fn names_are_escaped_and_links_encoded() {
        let list = Listing {
            path: "/os/1/<b>/".into(),
            entries: vec![Entry {
                name: "<script>alert(1)</script>&\"x\" y".into(),
                dir: false,
                size: 3,
                modified: None,
                sha256: None,
            }],
        };
        let page = html(&list);
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;x&quot; y"));
        assert!(page.contains("href=\"%3Cscript%3Ealert%281%29%3C%2Fscript%3E%26%22x%22%20y\""));
        let doc: serde_json::Value = serde_json::from_str(&json(&list)).unwrap();
        assert_eq!(
            doc["entries"][0]["name"],
            "<script>alert(1)</script>&\"x\" y"
        );
        assert_eq!(doc["entries"][0]["size"], 3);
    }

    #[test]
    fn json_when_asked_before_html() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            h
        };
        assert!(wants_json(&with("application/json")));
        assert!(!wants_json(&with("text/html,application/xhtml+xml,*/*")));
        assert!(!wants_json(&with("*/*")));
        assert!(wants_json(&with("application/json, text/html;q=0.5")));
        assert!(!wants_json(&HeaderMap::new()));
    }
}
