//! Security tests: inputs (issue 13, findings 3 and 5). A multipart form is
//! bounded while it streams (text fields, parts, part headers), searches
//! and query strings are bounded, an image tag cannot break the download's
//! Content-Disposition, and an uplink token a user gives must be strong.

use std::path::Path;
use std::process::Command;

use crate::common::server::{curl_result, fake_elf, TestServer};
use crate::common::tool;

/// The server makes its own certificate and admin: curl is the only peer.
fn peers() -> bool {
    tool("curl")
}

/// A `/proc/PID/status` field (VmHWM, VmRSS) of the server, in KiB.
fn memory_kib(server: &TestServer, field: &str) -> u64 {
    let pid = server.child.as_ref().expect("a running server").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// curl with the server's credentials, returning (status, body, bytes
/// curl sent).
fn curl_counting(server: &TestServer, args: &[&str], path: &str) -> (u16, String, u64) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "-o",
            "-",
            "-w",
            "\n%{size_upload}\n%{http_code}",
        ])
        .args(["-u", &format!("{}:{}", server.user, server.password)])
        .args(args)
        .arg(server.url(path))
        .output()
        .expect("running curl");
    let (status, rest) = curl_result(out);
    let (body, sent) = rest.rsplit_once('\n').unwrap_or(("", &rest));
    (status, body.to_string(), sent.trim().parse().unwrap_or(0))
}

/// `s` percent-encoded for a query string.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn elf(dir: &Path, salt: &str) -> String {
    let path = dir.join(format!("{salt}.elf"));
    fake_elf(&path, 4096, salt);
    format!("file=@{}", path.display())
}

#[test]
fn a_huge_multipart_text_field_is_refused_early_in_little_memory() {
    if !peers() {
        return;
    }
    // An upload limit far above the form, so that only the field's own
    // cap can refuse it (an announced length over the limit is refused
    // before any of the body is read).
    let server = TestServer::start(&["server.maxupload=17179869184"], &[]);
    let dir = tempfile::tempdir().unwrap();
    const FIELD: u64 = 256 << 20;
    let big = dir.path().join("big-field");
    // Sparse: the disk holds nothing, curl still sends every byte.
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(FIELD))
        .unwrap();
    // Warm the server (TLS, a first request) so the peak before is honest.
    assert_eq!(server.curl(&[], "/v1/images").0, 200);
    let before = memory_kib(&server, "VmHWM");
    let name = format!("name=<{}", big.display());
    let (status, body, sent) = curl_counting(
        &server,
        &["-F", &name, "-F", &elf(dir.path(), "a")],
        "/v1/images",
    );
    let grew_mib = memory_kib(&server, "VmHWM").saturating_sub(before) / 1024;
    assert!(
        grew_mib < 32,
        "the server's peak memory grew by {grew_mib} MiB for a {} MiB field",
        FIELD >> 20
    );
    // Refused early: the client did not get to send the field.
    assert!(sent < FIELD / 2, "curl sent {sent} of {FIELD} bytes");
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains(r#"form field \"name\" is longer than 4096 bytes"#),
        "{body}"
    );
    assert_eq!(server.json(&[], "/v1/images").1, serde_json::json!([]));
    // The server is fine afterwards, and a normal form still works.
    let (status, img) = server.json(
        &[
            "-F",
            "name=svc",
            "-F",
            "tag=v1",
            "-F",
            &elf(dir.path(), "b"),
        ],
        "/v1/images",
    );
    assert_eq!((status, img["tag"].as_str()), (201, Some("v1")), "{img}");
}

#[test]
fn forms_with_too_many_parts_or_long_part_headers_are_refused() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = elf(dir.path(), "many");
    let mut args: Vec<String> = (0..20).map(|i| format!("f{i}=v")).collect();
    args.push(file.clone());
    let args: Vec<&str> = args.iter().flat_map(|a| ["-F", a.as_str()]).collect();
    let (status, body) = server.curl(&args, "/v1/images?name=svc");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("more than 16 parts"), "{body}");

    let long_name = format!("{}=v", "n".repeat(9000));
    let (status, body) = server.curl(&["-F", &long_name, "-F", &file], "/v1/images?name=svc");
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("more than 8192 bytes in the headers of a part"),
        "{body}"
    );

    assert_eq!(server.json(&[], "/v1/images").1, serde_json::json!([]));
    // Sixteen parts are fine.
    let mut args: Vec<String> = (0..15).map(|i| format!("f{i}=v")).collect();
    args.push(file);
    let args: Vec<&str> = args.iter().flat_map(|a| ["-F", a.as_str()]).collect();
    let (status, body) = server.curl(&args, "/v1/images?name=svc");
    assert_eq!(status, 201, "{body}");
}

#[test]
fn long_searches_and_query_strings_are_refused_on_every_list() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let long = "a".repeat(50_000);
    let at_most = "a".repeat(256);
    let over = "é".repeat(257);
    for list in [
        "/v1/images",
        "/v1/uplinks",
        "/v1/nacls",
        "/v1/snippets",
        "/v1/jobs",
        "/v1/instances",
        "/v1/bases",
        "/v1/pods",
    ] {
        // Past the whole query string's bound, and past the search's.
        let (status, err) = server.json(&[], &format!("{list}?q={long}"));
        assert_eq!(status, 400, "{list}: {err}");
        assert!(
            err["message"]
                .as_str()
                .is_some_and(|m| m.contains("at most 8192 are allowed")),
            "{list}: {err}"
        );
        let (status, err) = server.json(&["-G", "--data-urlencode", &format!("q={over}")], list);
        assert_eq!(status, 400, "{list}: {err}");
        assert_eq!(
            err["message"], "the search ?q= is 257 characters long; at most 256 are allowed",
            "{list}"
        );
        let (status, ok) = server.json(&[], &format!("{list}?q={at_most}"));
        assert_eq!((status, ok), (200, serde_json::json!([])), "{list}");
    }
    // Other routes' query strings are bounded too.
    let (status, err) = server.json(&[], &format!("/v1/images?name=svc&x={long}"));
    assert_eq!(status, 400, "{err}");
}

#[test]
fn tags_that_could_break_a_header_are_refused_and_downloads_name_files_safely() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = elf(dir.path(), "tagged");
    for tag in ["a\"b", "x;y", "a/b", "v1\r\nX-Injected: 1", ".."] {
        // As a query parameter and as a form field.
        let (status, err) = server.json(
            &["-F", &file],
            &format!("/v1/images?name=svc&tag={}", percent(tag)),
        );
        assert_eq!(status, 400, "{tag:?}: {err}");
        assert!(
            err["message"].as_str().is_some_and(|m| m.contains("tag")),
            "{tag:?}: {err}"
        );
        let (status, err) = server.json(
            &["-F", &file, "--form-string", &format!("tag={tag}")],
            "/v1/images?name=svc",
        );
        assert_eq!(status, 400, "{tag:?}: {err}");
    }
    for uplink_tag in [r#""a\"b""#, r#""x;y""#] {
        let (status, err) = server.json(
            &[
                "-H",
                "Content-Type: application/json",
                "-d",
                &format!(r#"{{"name":"lab","url":"http://h:1","tag":{uplink_tag}}}"#),
            ],
            "/v1/uplinks",
        );
        assert_eq!(status, 400, "{uplink_tag}: {err}");
    }
    assert_eq!(server.json(&[], "/v1/images").1, serde_json::json!([]));

    let (status, img) = server.json(&["-F", &file], "/v1/images?name=svc&tag=v1.2_rc-3");
    assert_eq!(status, 201, "{img}");
    let out = Command::new("curl")
        .args(["-sSk", "-o", "/dev/null", "-D", "-"])
        .args(["-u", &format!("{}:{}", server.user, server.password)])
        .args(["-H", "Accept: application/octet-stream"])
        .arg(server.url(&format!("/v1/images/{}", img["id"].as_str().unwrap())))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout);
    let disposition = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-disposition")
                .then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no Content-Disposition: {head}"));
    assert_eq!(
        disposition,
        r#"attachment; filename="svc-v1.2_rc-3"; filename*=UTF-8''svc-v1.2_rc-3"#
    );
}

#[test]
fn weak_uplink_tokens_are_refused_with_the_reason() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let post = |method: &str, path: &str, token: &str| {
        server.json(
            &[
                "-X",
                method,
                "-H",
                "Content-Type: application/json",
                "-d",
                &serde_json::json!({"name": "lab", "url": "http://10.0.0.1:9090", "token": token})
                    .to_string(),
            ],
            path,
        )
    };
    for (token, reason) in [
        (".", "it is 1 character(s) long; at least 16 are needed"),
        ("-rf", "it is 3 character(s) long; at least 16 are needed"),
        ("a/b", "it is 3 character(s) long; at least 16 are needed"),
        ("aaaaaaaaaaaaaaaaaaaa", "it is too guessable"),
        ("0123456789abcdef", "it is too guessable"),
        ("Zk4rT9qWm2 Xv7LpB3nHs", "no spaces"),
    ] {
        let (status, err) = post("POST", "/v1/uplinks", token);
        assert_eq!(status, 400, "{token:?}: {err}");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("uplink token refused: ") && message.contains(reason),
            "{token:?}: {err}"
        );
    }
    let strong = "3f9c2a7e51d84b06c7e19a5f2d3b8c40";
    let (status, made) = post("POST", "/v1/uplinks", strong);
    assert_eq!(
        (status, made["token"].as_str()),
        (201, Some(strong)),
        "{made}"
    );
    let (status, err) = post("PUT", "/v1/uplinks/lab", "aaaaaaaaaaaaaaaaaaaa");
    assert_eq!(status, 400, "{err}");
    assert_eq!(server.json(&[], "/v1/uplinks/lab").1["token"], strong);
    // The default uplink's token is the server's own: 192 random bits.
    let (_, default) = server.json(&[], "/v1/uplinks/default");
    let token = default["token"].as_str().unwrap();
    assert!(
        token.len() == 48 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{default}"
    );
}
