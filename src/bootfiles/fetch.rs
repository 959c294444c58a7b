//! An OS image's ISO fetched from a URL into a staging file, hashed on
//! the way. The URL is checked by the runtime's SSRF policy
//! (`fetch_policy`: the addresses connected to, every redirect, no
//! scheme but http(s)); each read of the body is bounded by
//! `bootfiles.fetch.stall`, so a server that stops sending fails the job
//! instead of holding it. ftp is refused when the job is asked for: no
//! crate here does it through the same policy, and an unchecked client
//! would reach what the policy keeps out.
//!
//! A transfer that breaks off is resumed where it stopped (`Range` with
//! `If-Range`, so a file that changed meanwhile starts over whole) when
//! the server offers byte ranges, up to `RESUMES` times; the hash runs on
//! over the bytes kept. A restart of the server does not resume: the OS
//! image is failed and made again by the user (its staging file went with
//! the job).

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::BootFilesError;
/// A staged file (removed when dropped) and its digest: the same as a
/// base import's fetched archive.
pub use crate::runtime::archive::Staged;
use crate::runtime::fetch_policy::{
    self, redact_url, redact_urls, FetchFailure, FetchPolicy, Resume,
};
use crate::store::private;

/// Checks a URL a user gave before a job is made for it.
pub fn check_url(url: &str) -> Result<(), BootFilesError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("ftp://") || lower.starts_with("ftps://") {
        return Err(BootFilesError::Invalid(
            "ftp URLs are not supported (no FTP client here goes through the address \
             policy); download the ISO and upload it, or serve it over http(s)"
                .into(),
        ));
    }
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(BootFilesError::Invalid(format!(
            "{:?} is not an http(s) URL",
            redact_url(url)
        )));
    }
    if url.parse::<ureq::http::Uri>().is_err() {
        return Err(BootFilesError::Invalid(format!(
            "{:?} is not a valid URL",
            redact_url(url)
        )));
    }
    Ok(())
}

/// A sha256 a user gave: 64 hex digits, kept lower-case.
pub fn check_sha256(s: &str) -> Result<String, BootFilesError> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(BootFilesError::Invalid(format!(
            "{s:?} is not a sha256 (64 hex digits)"
        )))
    }
}

/// How many times one download is resumed after its transfer broke off.
pub const RESUMES: u32 = 10;

/// Downloads `url` into a new file of `staging`; `progress` gets (bytes,
/// announced length) and may stop it (`false`: cancelled); `note` hears
/// of each resumption (for the job's log).
pub fn download(
    url: &str,
    policy: &Arc<FetchPolicy>,
    stall: Duration,
    staging: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>) -> bool,
    note: &mut dyn FnMut(&str),
) -> Result<Staged, BootFilesError> {
    let name = redact_url(url);
    let path = staging.join(format!("{}.iso", uuid::Uuid::new_v4().simple()));
    let mut out = private::file_options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(super::io_err(format!("staging {}", path.display())))?;
    // Made now so that every way out below removes the file.
    let mut staged = Staged {
        path,
        sha256: String::new(),
        size: 0,
    };
    let staging_err = |p: &Path| super::io_err(format!("staging {}", p.display()));
    let mut hasher = Sha256::new();
    let mut validator: Option<String> = None;
    let mut resumes = 0;
    loop {
        let resume = validator
            .as_deref()
            .filter(|_| staged.size > 0)
            .map(|v| Resume {
                from: staged.size,
                validator: v,
            });
        let fetched = fetch_policy::open_from(url, policy, Some(stall), resume.as_ref())
            .map_err(|f| failure(&name, stall, f))?;
        if fetched.offset != staged.size {
            // Answered whole: the file changed, or ranges were refused.
            out.set_len(0).map_err(staging_err(&staged.path))?;
            out.seek(SeekFrom::Start(0))
                .map_err(staging_err(&staged.path))?;
            hasher = Sha256::new();
            staged.size = 0;
        }
        let total = fetched.length.map(|l| l + fetched.offset);
        validator = fetched.validator;
        let broke = match copy(
            fetched.body,
            &mut out,
            &mut hasher,
            &mut staged,
            total,
            progress,
        ) {
            Ok(()) => match total {
                Some(total) if staged.size < total => {
                    format!(
                        "the transfer broke off after {} of {total} bytes",
                        staged.size
                    )
                }
                _ => break,
            },
            Err(Copy::Broke(why)) => why,
            Err(Copy::Stalled) => {
                return Err(BootFilesError::Stalled {
                    url: name,
                    seconds: stall.as_secs(),
                })
            }
            Err(Copy::Failed(e)) => return Err(e),
        };
        if validator.is_none() || resumes >= RESUMES {
            return Err(BootFilesError::Fetch {
                url: name,
                why: broke,
            });
        }
        resumes += 1;
        note(&format!(
            "{broke}; resuming at byte {} ({resumes} of {RESUMES})",
            staged.size
        ));
        // A moment's pause, longer each time, that a cancel still ends.
        let until = Instant::now() + Duration::from_millis(250 * u64::from(resumes));
        while Instant::now() < until {
            if !progress(staged.size, total) {
                return Err(BootFilesError::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    out.sync_all().map_err(staging_err(&staged.path))?;
    staged.sha256 = hex::encode(hasher.finalize());
    Ok(staged)
}

/// How one transfer ended, short of its whole body.
enum Copy {
    /// The connection broke or closed early: worth resuming.
    Broke(String),
    Stalled,
    Failed(BootFilesError),
}

/// Appends a body to the staging file until it ends.
fn copy(
    mut body: Box<dyn Read>,
    out: &mut std::fs::File,
    hasher: &mut Sha256,
    staged: &mut Staged,
    total: Option<u64>,
    progress: &mut dyn FnMut(u64, Option<u64>) -> bool,
) -> Result<(), Copy> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Err(Copy::Stalled),
            Err(e) => {
                return Err(Copy::Broke(format!(
                    "the transfer broke off: {}",
                    redact_urls(&e.to_string())
                )))
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| {
            Copy::Failed(BootFilesError::Io {
                what: format!("staging {}", staged.path.display()),
                source: e,
            })
        })?;
        staged.size += n as u64;
        if !progress(staged.size, total) {
            return Err(Copy::Failed(BootFilesError::Cancelled));
        }
    }
}

/// A fetch that got no body, as the job's error.
fn failure(name: &str, stall: Duration, f: FetchFailure) -> BootFilesError {
    match f {
        FetchFailure::Unreachable(detail) if is_timeout_text(&detail) => BootFilesError::Stalled {
            url: name.to_string(),
            seconds: stall.as_secs(),
        },
        f => BootFilesError::Fetch {
            url: name.to_string(),
            why: f.why(name),
        },
    }
}

/// ureq reports a read timeout as an io error of kind TimedOut (or
/// WouldBlock where the platform's socket says so), sometimes wrapped.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) || is_timeout_text(&e.to_string())
}

fn is_timeout_text(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("timeout") || t.contains("timed out")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_taken_and_ftp_is_refused_clearly() {
        assert!(check_url("http://example.org/x.iso").is_ok());
        assert!(check_url("https://example.org/x.iso").is_ok());
        let e = check_url("ftp://example.org/x.iso")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ftp URLs are not supported"), "{e}");
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("gopher://x/").is_err());
        assert!(check_sha256(&"A".repeat(64)).is_ok());
        assert!(check_sha256("abc").is_err());
    }
}
