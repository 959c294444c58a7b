//! The API client: one HTTP agent (ureq, rustls) with Basic auth, the
//! server's base URL, TLS verification (webpki roots, a given CA file, or
//! none when asked), and typed errors made from the server's JSON error
//! body. Bodies stream both ways: uploads read the file as they send it,
//! downloads are staged beside their target and renamed when complete.
//! Nothing here prints; the CLI decides what people see.

pub mod login;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Digest;
use ureq::http::{header, Method, Request, Response};
use ureq::{AsSendBody, Body, SendBody};

pub use login::{Login, LoginError};

/// JSON and text answers larger than this are refused (lists of thousands
/// of objects stay far below it; binaries go through `download_to`).
const MAX_ANSWER: u64 = 64 << 20;

/// Read and write buffer of uploads and downloads.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status and (usually) its
    /// `{code, message}` body.
    #[error("{message} ({status})")]
    Http {
        status: u16,
        code: String,
        message: String,
        /// Per-line problems (an invalid NaCl): `{line, column, message}`.
        errors: Vec<serde_json::Value>,
    },
    /// No answer: the connection, TLS or the protocol failed.
    #[error("{0}")]
    Transport(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error("unexpected answer from {url}: {reason}")]
    BadResponse { url: String, reason: String },
}

impl ClientError {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn io(what: impl std::fmt::Display, source: io::Error) -> Self {
        ClientError::Io {
            what: what.to_string(),
            source,
        }
    }
}

/// A JSON answer as the server wrote it (for `-o json`, which prints the
/// server's document unchanged) and parsed (for tables and ids).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Where it came from (for error messages)
    pub url: String,
    pub text: String,
    pub value: serde_json::Value,
}

impl Answer {
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_value(self.value.clone()).map_err(|e| ClientError::BadResponse {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
    tls: bool,
}

impl Client {
    /// An agent for the server `login` describes. Reads the CA file now,
    /// so that a missing one is reported before any request.
    pub fn new(login: &Login) -> Result<Client, ClientError> {
        if login.host.contains("://") || login.host.contains('/') {
            return Err(ClientError::Transport(format!(
                "--host {:?}: give a host name or address, without a scheme or path (--notls for http)",
                login.host
            )));
        }
        let tls = if login.notls {
            ureq::tls::TlsConfig::builder().build()
        } else if login.insecure {
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build()
        } else if let Some(ca) = &login.cacert {
            let pem = std::fs::read(ca).map_err(|e| ClientError::io(ca.display(), e))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ClientError::Transport(format!("{}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(ClientError::Transport(format!(
                    "{}: no PEM certificate in it",
                    ca.display()
                )));
            }
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build()
        } else {
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::WebPki)
                .build()
        };
        let config = ureq::Agent::config_builder()
            // Error statuses carry the server's explanation in their body:
            // read it rather than stop at the number.
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_connect(Some(Duration::from_secs(30)))
            // The server answers `Expect: 100-continue` once it has judged
            // the headers (a bcrypt check among them, slow on a busy host);
            // sending the body sooner turns its refusal into a broken pipe.
            .timeout_await_100(Some(Duration::from_secs(15)))
            .user_agent(format!("jetpack/{}", env!("CARGO_PKG_VERSION")))
            // The server never redirects; following one would carry the
            // credentials somewhere we were not told to go.
            .max_redirects(0)
            .build();
        let host = if login.host.contains(':') && !login.host.starts_with('[') {
            format!("[{}]", login.host)
        } else {
            login.host.clone()
        };
        let scheme = if login.notls { "http" } else { "https" };
        let authorization = login.username.as_ref().map(|user| {
            let pair = format!("{user}:{}", login.password.as_deref().unwrap_or(""));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Ok(Client {
            agent: config.new_agent(),
            base: format!("{scheme}://{host}:{}", login.port),
            authorization,
            tls: !login.notls,
        })
    }

    /// `scheme://host:port` of the server.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: Method, path: &str, accept: &str) -> ureq::http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(self.url(path))
            .header(header::ACCEPT, accept);
        if let Some(a) = &self.authorization {
            b = b.header(header::AUTHORIZATION, a);
        }
        b
    }

    /// Sends a request; an error status becomes `ClientError::Http`.
    fn run(
        &self,
        builder: ureq::http::request::Builder,
        body: impl AsSendBody,
    ) -> Result<Response<Body>, ClientError> {
        let request = builder.body(body).map_err(|e| ClientError::BadResponse {
            url: self.base.clone(),
            reason: format!("cannot make the request: {e}"),
        })?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| ClientError::Transport(self.unreachable(&e)))?;
        let status = response.status().as_u16();
        if status >= 400 {
            let text = response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .lossy_utf8(true)
                .read_to_string()
                .unwrap_or_default();
            return Err(self.http_error(status, &text));
        }
        Ok(response)
    }

    fn http_error(&self, status: u16, text: &str) -> ClientError {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            code: Option<String>,
            message: Option<String>,
            #[serde(default)]
            errors: Vec<serde_json::Value>,
        }
        let body: Option<ErrorBody> = serde_json::from_str(text).ok();
        let code = body
            .as_ref()
            .and_then(|b| b.code.clone())
            .unwrap_or_default();
        let errors = body.as_ref().map(|b| b.errors.clone()).unwrap_or_default();
        let mut message = body
            .and_then(|b| b.message)
            .or_else(|| {
                let t = text.trim();
                (!t.is_empty() && t.len() < 200 && !t.contains('\n')).then(|| t.to_string())
            })
            .unwrap_or_else(|| {
                ureq::http::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_lowercase()
            });
        if status == 401 && self.authorization.is_none() {
            message = format!(
                "{message} by {}: run `jetpack login` or give --username and --password",
                self.base
            );
        }
        ClientError::Http {
            status,
            code,
            message,
            errors,
        }
    }

    /// What to tell people when the server gave no answer at all.
    fn unreachable(&self, e: &ureq::Error) -> String {
        let reason = match e {
            ureq::Error::Io(io) => io.to_string(),
            ureq::Error::HostNotFound => "host not found".to_string(),
            other => other.to_string(),
        };
        // rustls reports handshake failures through the socket's io::Error.
        let tls_error = match e {
            ureq::Error::Rustls(r) => Some(r),
            ureq::Error::Io(io) => io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
            _ => None,
        };
        let hint = match (e, tls_error) {
            (_, Some(rustls::Error::InvalidCertificate(_))) => {
                " (the server's certificate is not trusted: give --cacert with the server's \
                 cert.pem, or --tlsInsecureSkipVerify)"
            }
            (_, Some(_)) => " (does the server speak plain HTTP? try --notls)",
            (ureq::Error::Protocol(_), _) if !self.tls => {
                " (does the server use TLS? drop --notls)"
            }
            (ureq::Error::Io(io), _)
                if !self.tls
                    && matches!(
                        io.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                    ) =>
            {
                " (does the server use TLS? drop --notls)"
            }
            _ => "",
        };
        format!("cannot reach {}: {reason}{hint}", self.base)
    }

    fn read_text(&self, path: &str, mut response: Response<Body>) -> Result<String, ClientError> {
        response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| ClientError::BadResponse {
                url: self.url(path),
                reason: e.to_string(),
            })
    }

    fn answer(&self, path: &str, response: Response<Body>) -> Result<Answer, ClientError> {
        let status = response.status().as_u16();
        let text = self.read_text(path, response)?;
        let value = serde_json::from_str(&text).map_err(|e| ClientError::BadResponse {
            url: self.url(path),
            reason: format!("not JSON: {e}"),
        })?;
        Ok(Answer {
            status,
            url: self.url(path),
            text,
            value,
        })
    }

    /// GET a JSON document, kept as written and parsed.
    pub fn get(&self, path: &str) -> Result<Answer, ClientError> {
        let response = self.run(self.request(Method::GET, path, "application/json"), ())?;
        self.answer(path, response)
    }

    /// GET a JSON document into `T`.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.get(path)?.decode()
    }

    /// POST, PUT, PATCH or DELETE with a JSON body; the JSON answer.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Answer, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::BadResponse {
            url: self.url(path),
            reason: format!("cannot encode the request: {e}"),
        })?;
        let builder = self
            .request(method, path, "application/json")
            .header(header::CONTENT_TYPE, "application/json");
        let response = self.run(builder, bytes.as_slice())?;
        self.answer(path, response)
    }

    /// `send` with the answer decoded into `T`.
    pub fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        self.send(method, path, body)?.decode()
    }

    /// GET a text resource (`Accept: text/plain`), byte for byte.
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let response = self.run(self.request(Method::GET, path, "text/plain"), ())?;
        self.read_text(path, response)
    }

    /// DELETE without a body; the JSON answer (the object removed).
    pub fn delete(&self, path: &str) -> Result<Answer, ClientError> {
        let response = self.run(self.request(Method::DELETE, path, "application/json"), ())?;
        self.answer(path, response)
    }

    /// POSTs the file at `file` as the raw body (`application/octet-stream`),
    /// read as it is sent; `progress` gets the bytes sent so far and the
    /// total. Content-Length is given so that a server over its limit can
    /// refuse before the file travels.
    pub fn upload_file(
        &self,
        file: &Path,
        path: &str,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Answer, ClientError> {
        let f = File::open(file).map_err(|e| ClientError::io(file.display(), e))?;
        let size = f
            .metadata()
            .map_err(|e| ClientError::io(file.display(), e))?
            .len();
        let mut reader = Counting {
            inner: io::BufReader::with_capacity(CHUNK, f),
            done: 0,
            total: Some(size),
            progress,
        };
        // `Expect: 100-continue`: a server that refuses the upload from its
        // headers (too large, bad name, bad credentials) answers before the
        // body is sent, instead of closing a socket we are still writing to.
        let builder = self
            .request(Method::POST, path, "application/json")
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, size)
            .header(header::EXPECT, "100-continue");
        let response = self.run(builder, SendBody::from_reader(&mut reader))?;
        self.answer(path, response)
    }

    /// GETs `path` (asking for `accept`) into the file `target`: written to
    /// a staging file beside it, synced, then renamed, so that a failed or
    /// interrupted download leaves nothing. `progress` gets the bytes so far
    /// and the total when the server said it. Returns the size.
    pub fn download_to(
        &self,
        target: &Path,
        path: &str,
        accept: &str,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<u64, ClientError> {
        let response = self.run(self.request(Method::GET, path, accept), ())?;
        let total = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        // This server's ETag is the quoted sha256 of the blob: checking it
        // catches a corrupted transfer that still had the right length.
        let expected = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_ascii_lowercase())
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        let stage = staging_path(target);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&stage)
            .map_err(|e| ClientError::io(stage.display(), e))?;
        let written = (|| {
            let mut reader = response.into_body().into_reader();
            let mut hasher = sha2::Sha256::new();
            let mut done = 0u64;
            let url = self.url(path);
            each_chunk(&mut reader, CHUNK, &url, "download", &mut |chunk| {
                file.write_all(chunk)
                    .map_err(|e| ClientError::io(stage.display(), e))?;
                hasher.update(chunk);
                done += chunk.len() as u64;
                progress(done, total);
                Ok(())
            })?;
            if let Some(expected) = &expected {
                let actual = hex::encode(hasher.finalize());
                if &actual != expected {
                    return Err(ClientError::BadResponse {
                        url: self.url(path),
                        reason: format!(
                            "the download's sha256 is {actual}, the server said {expected}"
                        ),
                    });
                }
            }
            file.sync_all()
                .map_err(|e| ClientError::io(stage.display(), e))?;
            std::fs::rename(&stage, target).map_err(|e| ClientError::io(target.display(), e))?;
            Ok(done)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&stage);
        }
        written
    }

    /// GETs a streamed text resource (a job's log) and copies it to `out`
    /// as it arrives, until the server ends it.
    pub fn stream_text(&self, path: &str, out: &mut dyn Write) -> Result<u64, ClientError> {
        let response = self.run(self.request(Method::GET, path, "text/plain"), ())?;
        let mut reader = response.into_body().into_reader();
        each_chunk(
            &mut reader,
            64 * 1024,
            &self.url(path),
            "stream",
            &mut |chunk| {
                out.write_all(chunk)
                    .and_then(|()| out.flush())
                    .map_err(|e| ClientError::io("writing the log", e))
            },
        )
    }
}

/// A reader that reports how much has been read (what an upload has sent).
struct Counting<'a, R> {
    inner: R,
    done: u64,
    total: Option<u64>,
    progress: &'a mut dyn FnMut(u64, Option<u64>),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done, self.total);
        Ok(n)
    }
}

/// Reads a response body to its end in chunks of `size`, handing each to
/// `each`; returns the bytes read. A body cut off is one error naming `url`
/// and what it was (a download, a stream).
fn each_chunk(
    reader: &mut impl Read,
    size: usize,
    url: &str,
    what: &str,
    each: &mut dyn FnMut(&[u8]) -> Result<(), ClientError>,
) -> Result<u64, ClientError> {
    let mut buf = vec![0u8; size];
    let mut done = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(done),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ClientError::Transport(format!(
                    "{url}: the {what} was cut off: {e}"
                )))
            }
        };
        each(&buf[..n])?;
        done += n as u64;
    }
}

/// `.NAME.part-PID` beside `target`: same directory, so the rename is
/// atomic; hidden and unique to this process.
fn staging_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    target.with_file_name(format!(".{name}.part-{}", std::process::id()))
}

/// Percent-encodes one path segment or query value (everything but the
/// unreserved characters of RFC 3986), so that ids and names given on the
/// command line cannot change the path.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(enc("abc-1.2_x~"), "abc-1.2_x~");
        assert_eq!(enc("../a b?c#d"), "..%2Fa%20b%3Fc%23d");
        assert_eq!(enc("é"), "%C3%A9");
    }

    #[test]
    fn staging_is_beside_the_target() {
        let p = staging_path(Path::new("/tmp/x/image.elf"));
        assert_eq!(p.parent(), Some(Path::new("/tmp/x")));
        assert!(p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(".image.elf.part-"));
    }

    #[test]
    fn error_bodies_become_messages() {
        let c = Client::new(&Login::default()).unwrap();
        let e = c.http_error(404, r#"{"code":"not_found","message":"no image \"abc\""}"#);
        assert_eq!(e.to_string(), "no image \"abc\" (404)");
        assert_eq!(e.status(), Some(404));
        let e = c.http_error(502, "");
        assert_eq!(e.to_string(), "bad gateway (502)");
        let e = c.http_error(
            401,
            r#"{"code":"unauthorized","message":"authentication required (HTTP Basic)"}"#,
        );
        assert!(e.to_string().contains("jetpack login"), "{e}");
    }

    #[test]
    fn hosts_are_checked_and_bracketed() {
        let with = |host: &str| Login {
            host: host.into(),
            ..Default::default()
        };
        assert!(Client::new(&with("https://x")).is_err());
        assert_eq!(
            Client::new(&with("::1")).unwrap().base(),
            "https://[::1]:8080"
        );
        let plain = Login {
            notls: true,
            port: 81,
            ..with("h")
        };
        assert_eq!(Client::new(&plain).unwrap().base(), "http://h:81");
    }
}
