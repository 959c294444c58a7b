//! The MDS's HTTP surface: the appc endpoints under
//! `/~<token>/acMetadata/v1/`. A request is served only when its source
//! address is a pod's and the token is that pod's; anything else is 403
//! with a fixed body and a log line, so a caller learns nothing (not even
//! whether the path exists). Bodies are bounded; sign and verify are POST.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use uuid::Uuid;

use super::counts::{endpoint_label, Counts, Refusal};
use super::{Index, Keys, PodRecord};

/// The largest request body (sign and verify) the MDS reads.
pub const MAX_BODY: usize = 64 * 1024;

struct Mds {
    index: Index,
    keys: Keys,
    counts: Arc<Counts>,
}

/// The service over `index`, signing with `keys`, counting into `counts`.
pub fn router(index: Index, keys: Keys, counts: Arc<Counts>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(Mds {
            index,
            keys,
            counts,
        }))
}

fn forbidden(mds: &Mds, source: SocketAddr, why: Refusal, detail: &str) -> Response {
    mds.counts.refused(why);
    // The path may hold a token: only the reason is logged.
    tracing::warn!(%source, "MDS refused a request: {detail}");
    (StatusCode::FORBIDDEN, "forbidden\n").into_response()
}

fn answer(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

fn json(value: &serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn handle(
    State(mds): State<Arc<Mds>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let IpAddr::V4(address) = source.ip() else {
        return forbidden(&mds, source, Refusal::Address, "not an IPv4 pod address");
    };
    let Some(pod) = mds.index.get(address) else {
        return forbidden(&mds, source, Refusal::Address, "no pod has this address");
    };
    let Some((token, rest)) = uri
        .path()
        .strip_prefix("/~")
        .and_then(|p| p.split_once('/'))
    else {
        return forbidden(&mds, source, Refusal::Token, "no token in the path");
    };
    if !mds.keys.token_is(&pod.uuid, token) {
        return forbidden(&mds, source, Refusal::Token, "not this pod's token");
    }
    let endpoint = rest.strip_prefix("acMetadata/v1/");
    let parts: Vec<&str> = endpoint.map_or_else(Vec::new, |e| e.split('/').collect());
    let response = respond(&mds, &pod, endpoint, &parts, method, &headers, &body);
    mds.counts
        .answered(endpoint_label(&parts), response.status().as_u16());
    response
}

/// The answer to an authorized request for `endpoint` (None: not under
/// `acMetadata/v1/`), `parts` its segments.
fn respond(
    mds: &Mds,
    pod: &PodRecord,
    endpoint: Option<&str>,
    parts: &[&str],
    method: Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Some(endpoint) = endpoint else {
        return answer(StatusCode::NOT_FOUND, "not an appc metadata path\n");
    };
    let post = matches!(parts, ["pod", "hmac", "sign" | "verify"]);
    let allowed = if post { Method::POST } else { Method::GET };
    if method != allowed {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, allowed.as_str())],
            format!("{endpoint} takes {allowed}\n"),
        )
            .into_response();
    }
    match parts {
        ["pod", "uuid"] => answer(StatusCode::OK, pod.uuid.hyphenated().to_string()),
        ["pod", "manifest"] => json(&pod.manifest),
        ["pod", "annotations"] => json(&pod.annotations),
        ["pod", "hmac", "sign"] => sign(mds, pod, headers, body),
        ["pod", "hmac", "verify"] => verify(mds, headers, body),
        ["apps", app, rest @ ..] => app_endpoint(pod, app, rest),
        _ => answer(StatusCode::NOT_FOUND, "no such metadata\n"),
    }
}

/// An appc app name (AC Name): lower-case letters and digits in words
/// joined by `-`; anything else (`..`, `/`, `%2e`) is refused before use.
fn is_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn app_endpoint(pod: &PodRecord, app: &str, rest: &[&str]) -> Response {
    if !is_app_name(app) {
        return answer(StatusCode::BAD_REQUEST, "invalid app name\n");
    }
    let Some(found) = pod.apps.iter().find(|a| a.name == app) else {
        return answer(StatusCode::NOT_FOUND, format!("no app {app} in this pod\n"));
    };
    match rest {
        ["image", "id"] => answer(StatusCode::OK, found.image_id.clone()),
        ["image", "manifest"] => json(&found.image_manifest),
        ["annotations"] => json(&found.annotations),
        _ => answer(StatusCode::NOT_FOUND, "no such metadata\n"),
    }
}

#[derive(Deserialize)]
struct Fields {
    content: Option<String>,
    uuid: Option<String>,
    signature: Option<String>,
}

/// The form (appc's encoding) or JSON fields of a sign or verify body.
fn fields(headers: &HeaderMap, body: &[u8]) -> Result<Fields, (StatusCode, String)> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    let parsed = if kind.starts_with("application/json") {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    } else if kind.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body).map_err(|e| e.to_string())
    } else {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/x-www-form-urlencoded or application/json\n".into(),
        ));
    };
    parsed.map_err(|e| (StatusCode::BAD_REQUEST, format!("bad body: {e}\n")))
}

fn sign(mds: &Mds, pod: &PodRecord, headers: &HeaderMap, body: &[u8]) -> Response {
    let f = match fields(headers, body) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    // Jetpack signed a missing content as the empty string; that signs
    // what nobody meant.
    let Some(content) = f.content else {
        return answer(StatusCode::BAD_REQUEST, "content is required\n");
    };
    answer(StatusCode::OK, mds.keys.sign(&pod.uuid, content.as_bytes()))
}

fn verify(mds: &Mds, headers: &HeaderMap, body: &[u8]) -> Response {
    let f = match fields(headers, body) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let (Some(uuid), Some(signature), Some(content)) = (f.uuid, f.signature, f.content) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "uuid, signature and content are required\n",
        );
    };
    let Ok(uuid) = Uuid::parse_str(&uuid) else {
        return answer(StatusCode::BAD_REQUEST, "uuid is not a UUID\n");
    };
    let Some(tag) = super::keys::decode_signature(&signature) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "signature is neither base64 nor hex\n",
        );
    };
    if mds.keys.tag_is(&uuid, content.as_bytes(), &tag) {
        answer(StatusCode::OK, "valid\n")
    } else {
        answer(StatusCode::FORBIDDEN, "invalid\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mds::AppRecord;
    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::Request;
    use std::net::Ipv4Addr;
    use tower::ServiceExt;

    const K: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn pod(last: u8) -> PodRecord {
        PodRecord {
            uuid: Uuid::new_v4(),
            address: Ipv4Addr::new(10, 23, 0, last),
            manifest: serde_json::json!({"acKind": "PodManifest", "acVersion": "0.8.11"}),
            annotations: serde_json::json!([{"name": "jetpack/build", "value": "Starbase"}]),
            apps: vec![AppRecord {
                name: "build".into(),
                image_id: "sha512-00ff".into(),
                image_manifest: serde_json::json!({"name": "jetpack/test-builder"}),
                annotations: serde_json::json!([]),
            }],
        }
    }

    struct Fixture {
        index: Index,
        keys: Keys,
        counts: Arc<Counts>,
        a: PodRecord,
        b: PodRecord,
    }

    fn fixture() -> Fixture {
        let index = Index::default();
        let (a, b) = (pod(2), pod(3));
        index.insert(a.clone());
        index.insert(b.clone());
        Fixture {
            index,
            keys: Keys::new(K, &K.replace('0', "f")).unwrap(),
            counts: Arc::default(),
            a,
            b,
        }
    }

    impl Fixture {
        async fn call(
            &self,
            from: Ipv4Addr,
            method: &str,
            path: &str,
            body: &str,
        ) -> (u16, String) {
            let keys = Keys::new(K, &K.replace('0', "f")).unwrap();
            let app = router(self.index.clone(), keys, self.counts.clone())
                .layer(MockConnectInfo(SocketAddr::from((from, 40000))));
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body.to_string()))
                .unwrap();
            let res = app.oneshot(req).await.unwrap();
            let status = res.status().as_u16();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }

        fn url(&self, pod: &PodRecord, endpoint: &str) -> String {
            format!("/~{}/acMetadata/v1/{endpoint}", self.keys.token(&pod.uuid))
        }
    }

    #[tokio::test]
    async fn a_pod_reads_its_own_metadata_with_its_token_from_its_address() {
        let f = fixture();
        let (a, b) = (&f.a, &f.b);
        assert_eq!(
            f.call(a.address, "GET", &f.url(a, "pod/uuid"), "").await,
            (200, a.uuid.to_string())
        );
        let (status, manifest) = f
            .call(a.address, "GET", &f.url(a, "pod/manifest"), "")
            .await;
        assert_eq!((status, manifest.contains("PodManifest")), (200, true));
        let (status, notes) = f
            .call(a.address, "GET", &f.url(a, "pod/annotations"), "")
            .await;
        assert_eq!((status, notes.contains("Starbase")), (200, true));
        assert_eq!(
            f.call(a.address, "GET", &f.url(a, "apps/build/image/id"), "")
                .await,
            (200, "sha512-00ff".into())
        );
        // Another pod's token from this address, this pod's token from
        // another address, any token from an address no pod has: 403, the
        // same body every time.
        let refused = (403, "forbidden\n".to_string());
        assert_eq!(
            f.call(a.address, "GET", &f.url(b, "pod/uuid"), "").await,
            refused
        );
        assert_eq!(
            f.call(b.address, "GET", &f.url(a, "pod/uuid"), "").await,
            refused
        );
        assert_eq!(
            f.call(Ipv4Addr::LOCALHOST, "GET", &f.url(a, "pod/uuid"), "")
                .await,
            refused
        );
        assert_eq!(
            f.call(a.address, "GET", "/~/acMetadata/v1/pod/uuid", "")
                .await,
            refused
        );
        assert_eq!(
            f.call(
                a.address,
                "GET",
                &f.url(a, "nope").replace("/acMetadata", ""),
                ""
            )
            .await
            .0,
            404
        );
        // A removed pod's token stops working at once.
        f.index.remove(a.address);
        assert_eq!(
            f.call(a.address, "GET", &f.url(a, "pod/uuid"), "").await,
            refused
        );
        // Counted: answers by endpoint and status, refusals by reason.
        let figures = f.counts.read();
        let answered = |endpoint: &str, code: u16| {
            figures
                .answered
                .iter()
                .find(|x| x.endpoint == endpoint && x.code == code)
                .map_or(0, |x| x.count)
        };
        assert_eq!(
            (
                answered("uuid", 200),
                answered("apps", 200),
                answered("other", 404)
            ),
            (1, 1, 1)
        );
        let refused: Vec<(String, u64)> = figures
            .refused
            .into_iter()
            .map(|r| (r.reason, r.count))
            .collect();
        assert_eq!(refused, vec![("address".into(), 2), ("token".into(), 3)]);
    }

    #[tokio::test]
    async fn sign_in_one_pod_verify_in_another() {
        let f = fixture();
        let (a, b) = (&f.a, &f.b);
        let (status, sig) = f
            .call(
                a.address,
                "POST",
                &f.url(a, "pod/hmac/sign"),
                "content=built%20image",
            )
            .await;
        assert_eq!(status, 200, "{sig}");
        let form = |uuid: &Uuid, sig: &str, content: &str| {
            serde_urlencoded::to_string([
                ("uuid", uuid.to_string()),
                ("signature", sig.to_string()),
                ("content", content.to_string()),
            ])
            .unwrap()
        };
        let verify = f.url(b, "pod/hmac/verify");
        let wrong = "A".repeat(88);
        for (uuid, signature, content, expected) in [
            (&a.uuid, sig.as_str(), "built image", 200),
            (&a.uuid, sig.as_str(), "built imagE", 403),
            (&b.uuid, sig.as_str(), "built image", 403),
            (&a.uuid, "not base64!", "built image", 400),
            (&a.uuid, wrong.as_str(), "built image", 403),
        ] {
            let (status, body) = f
                .call(b.address, "POST", &verify, &form(uuid, signature, content))
                .await;
            assert_eq!(
                status, expected,
                "verify {uuid} {signature} {content:?}: {body}"
            );
        }
        // Bad requests: a clear status each.
        assert_eq!(
            f.call(a.address, "POST", &f.url(a, "pod/hmac/sign"), "")
                .await
                .0,
            400
        );
        assert_eq!(
            f.call(a.address, "GET", &f.url(a, "pod/hmac/sign"), "")
                .await
                .0,
            405
        );
        assert_eq!(
            f.call(a.address, "POST", &f.url(a, "pod/uuid"), "").await.0,
            405
        );
        assert_eq!(
            f.call(b.address, "POST", &verify, "uuid=x&signature=y&content=z")
                .await
                .0,
            400
        );
        let big = format!("content={}", "x".repeat(MAX_BODY + 1));
        assert_eq!(
            f.call(a.address, "POST", &f.url(a, "pod/hmac/sign"), &big)
                .await
                .0,
            413
        );
    }

    #[tokio::test]
    async fn app_names_are_checked_before_use() {
        let f = fixture();
        let a = &f.a;
        assert_eq!(
            f.call(a.address, "GET", &f.url(a, "apps/web/image/id"), "")
                .await
                .0,
            404
        );
        assert_eq!(
            f.call(a.address, "GET", &f.url(a, "apps/../image/id"), "")
                .await
                .0,
            400
        );
        assert_eq!(
            f.call(a.address, "GET", &f.url(a, "apps/%2e%2e/image/id"), "")
                .await
                .0,
            400
        );
        assert_eq!(
            f.call(a.address, "GET", &f.url(a, "apps/Build/annotations"), "")
                .await
                .0,
            400
        );
    }

    #[test]
    fn app_names_are_ac_names() {
        for ok in ["build", "web-1", "a"] {
            assert!(is_app_name(ok), "{ok}");
        }
        for bad in [
            "", "..", "a/b", "A", "a--b", "-a", "a-", "%2e%2e", "a.b", "a_b",
        ] {
            assert!(!is_app_name(bad), "{bad}");
        }
    }
}
