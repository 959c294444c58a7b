//! `GET /boot/ipxe?tag=T | ?image=ID | ?mac=MAC`: the iPXE script that
//! boots a unikernel image from this server (iPXE loads multiboot ELF
//! kernels). Which image is asked of a `Boots` (the netboot service), so
//! this layer knows no store. The kernel's URL is built from the address
//! the machine reached: the request's Host header when it is a plain
//! host[:port], else the connection's local address; https when the file
//! server has TLS. A miss is answered 404 (400 for a malformed ask) with
//! a script that is itself valid iPXE, echoing the reason and exiting,
//! so that a booting console shows why.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::serve::LocalAddr;

/// What a booting machine asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootAsk {
    /// The newest image with the tag.
    Tag(String),
    /// An image by id or unique prefix.
    Image(String),
    /// Whatever the machine with this MAC is mapped to.
    Mac(String),
}

/// The image a machine boots: its whole id and the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootImage {
    pub id: String,
    pub append: String,
}

/// Why there is nothing to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootMiss {
    /// A malformed ask (400).
    Bad(String),
    /// Nothing matches (404).
    NotFound(String),
    /// Ours, logged by the implementation (500).
    Internal,
}

/// The choice of an image for a booting machine. Runs on a blocking
/// thread (implementations read a database).
pub trait Boots: Send + Sync + 'static {
    fn boot(&self, ask: &BootAsk) -> Result<BootImage, BootMiss>;
}

/// The path of the script on the file server.
pub const PATH: &str = "/boot/ipxe";

/// Longest query accepted: a tag is 128 characters, a MAC 17.
const MAX_QUERY: usize = 512;

/// Reads the query: exactly one of `tag`, `image`, `mac`, each once.
fn ask(query: Option<&str>) -> Result<BootAsk, String> {
    let query = query.unwrap_or("");
    if query.len() > MAX_QUERY {
        return Err("the query is too long".into());
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| "the query is not a form-encoded list".to_string())?;
    let mut asks = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "tag" => asks.push(BootAsk::Tag(value)),
            "image" => asks.push(BootAsk::Image(value)),
            "mac" => asks.push(BootAsk::Mac(value)),
            _ => return Err(format!("unknown parameter {:?}", short(&key))),
        }
    }
    match asks.len() {
        1 => Ok(asks.remove(0)),
        _ => Err("give exactly one of ?tag=, ?image=, ?mac=".into()),
    }
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A Host header fit to put in a URL: a DNS name, IPv4 address or a
/// bracketed IPv6 address, then an optional port. Anything else (a path,
/// a user, spaces, a newline) is ignored, not echoed into the script.
fn host_header(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    if host.is_empty() || host.len() > 255 {
        return None;
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (host, None),
            p => (&host[..v6.len() + 2], Some(p.strip_prefix(':')?)),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        port.parse::<u16>().ok().filter(|p| *p > 0)?;
    }
    if !name.starts_with('[')
        && (name.is_empty()
            || name.starts_with('-')
            || name.starts_with('.')
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return None;
    }
    Some(host.to_string())
}

/// One line for iPXE's `echo`: printable ASCII only, and no `$` (which
/// iPXE would expand).
fn echo_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '$' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn script(status: StatusCode, text: String, head: bool) -> Response {
    let len = text.len();
    let body = if head {
        Body::empty()
    } else {
        Body::from(text)
    };
    let mut r = (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Chosen at each boot: a cache must not keep yesterday's image.
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    r
}

/// The script that tells the console why nothing boots, and stops.
fn refusal(status: StatusCode, why: &str, head: bool) -> Response {
    let text = format!("#!ipxe\necho jetpack: {}\nexit 1\n", echo_safe(why));
    script(status, text, head)
}

/// The script booting `image` from `base` (scheme://host[:port]).
pub fn boot_script(base: &str, image: &BootImage) -> String {
    let mut kernel = format!("kernel {base}/images/{}", image.id);
    if !image.append.is_empty() {
        kernel.push(' ');
        kernel.push_str(&image.append);
    }
    format!("#!ipxe\n{kernel}\nboot\n")
}

/// Answers `GET|HEAD /boot/ipxe`.
pub async fn respond(
    boots: Option<std::sync::Arc<dyn Boots>>,
    https: bool,
    req: Request,
    head: bool,
) -> Response {
    let Some(boots) = boots else {
        return refusal(StatusCode::NOT_FOUND, "netboot is not served here", head);
    };
    let ask = match ask(req.uri().query()) {
        Ok(ask) => ask,
        Err(why) => return refusal(StatusCode::BAD_REQUEST, &why, head),
    };
    let host = host_header(req.headers()).or_else(|| {
        req.extensions()
            .get::<LocalAddr>()
            .map(|LocalAddr(at): &LocalAddr| SocketAddr::to_string(at))
    });
    let Some(host) = host else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "cannot tell this server's address: send a Host header",
            head,
        );
    };
    let chosen = tokio::task::spawn_blocking(move || boots.boot(&ask)).await;
    match chosen {
        Ok(Ok(image)) => {
            let scheme = if https { "https" } else { "http" };
            let text = boot_script(&format!("{scheme}://{host}"), &image);
            script(StatusCode::OK, text, head)
        }
        Ok(Err(BootMiss::Bad(why))) => refusal(StatusCode::BAD_REQUEST, &why, head),
        Ok(Err(BootMiss::NotFound(why))) => refusal(StatusCode::NOT_FOUND, &why, head),
        Ok(Err(BootMiss::Internal)) => refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (see the server's log)",
            head,
        ),
        Err(e) => {
            tracing::error!("files: choosing a netboot image failed: {e}");
            refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal error", head)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(v: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, v.parse().unwrap());
        host_header(&h)
    }

    #[test]
    fn host_headers_fit_for_a_url_only() {
        for ok in [
            "10.0.2.2:9091",
            "files.example.org",
            "files.example.org:80",
            "[::1]:9091",
            "[fe80::1]",
            "localhost",
        ] {
            assert_eq!(host(ok).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "evil/x",
            "a b",
            "user@host",
            "host:",
            "host:99999",
            "host:0",
            "host:80:81",
            "[::1",
            "[nothost]:80",
            "[::1]x",
            "-host",
            "",
        ] {
            assert_eq!(host(bad), None, "{bad}");
        }
    }

    #[test]
    fn asks_take_exactly_one_parameter() {
        assert_eq!(ask(Some("tag=web")), Ok(BootAsk::Tag("web".into())));
        assert_eq!(
            ask(Some("mac=52%3A54%3A00%3A12%3A34%3A56")),
            Ok(BootAsk::Mac("52:54:00:12:34:56".into()))
        );
        assert_eq!(ask(Some("image=abcd")), Ok(BootAsk::Image("abcd".into())));
        for bad in [
            None,
            Some(""),
            Some("tag=a&image=b"),
            Some("x=1"),
            Some("tag=a&tag=b"),
        ] {
            assert!(ask(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scripts_boot_or_explain() {
        let image = BootImage {
            id: "ab".repeat(20),
            append: "console=ttyS0".into(),
        };
        assert_eq!(
            boot_script("http://10.0.2.2:9091", &image),
            format!(
                "#!ipxe\nkernel http://10.0.2.2:9091/images/{} console=ttyS0\nboot\n",
                "ab".repeat(20)
            )
        );
        assert_eq!(
            echo_safe("no image \"${x}\"\nexit 0"),
            "no image \"?{x}\"?exit 0"
        );
    }
}
