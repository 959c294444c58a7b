//! A job's log followed while it runs, wherever it runs. The log is a
//! file on the host that runs the job; with several hosts on one store a
//! build waits in the fleet's queue with no host and any host may take it
//! later, so a follower that started here cannot know at first where the
//! log will be. It reads the job's row at each poll: while the job is this
//! host's (or nobody's yet) it reads the file here; once another host has
//! it, it copies that host's log from its API (`Peer::send`, the same
//! request), and looks again when that stream ends (the job went back to
//! the queue, the host went down). A follow another host asked for is
//! answered from here only: the asking host reads the row itself and
//! decides anew when it ends, so a request never goes from host to host.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::peer::{Peer, PeerError};
use super::Hosts;
use crate::jobs::Jobs;
use crate::names::JobId;
use crate::store::jobs::JobRow;

/// How often the row (and the file here) is looked at while nothing comes.
const POLL: Duration = Duration::from_millis(200);
/// How often a stream from another host that says nothing is checked
/// against the row: a host that went down may leave it open for ever.
const QUIET: Duration = Duration::from_secs(5);
/// The most read from the file here at once.
const CHUNK: u64 = 1 << 20;

/// Why the rest of a job's log cannot be read here; said as the stream's
/// last line.
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    #[error("this job ran on host {0}, which is down or gone: its log is there")]
    Down(String),
    #[error("this job's log is on host {host}, which cannot be reached: {source}")]
    Peer {
        host: String,
        #[source]
        source: PeerError,
    },
    #[error("this job's log is on host {host}, which answered {status}")]
    Status { host: String, status: u16 },
    #[error("this job's log from host {host} was cut off: {source}")]
    Cut {
        host: String,
        #[source]
        source: axum::Error,
    },
}

/// Where the next part of a followed job's log is.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    /// In the file here; the job may still write to it (it runs here, or
    /// waits in the queue and may be taken here).
    Here,
    /// In the file here, and nothing more will come: read what is left
    /// and end (the job has finished here or is gone, or, for another
    /// host's request, it is no longer this host's).
    HereToEnd,
    /// On another host.
    Host(&'a str),
}

/// Where to read next, from the job's row as it is now (`None`: gone).
fn step<'a>(row: Option<&'a JobRow>, me: &str, for_peer: bool) -> Step<'a> {
    let Some(row) = row else {
        return Step::HereToEnd;
    };
    match row.host.as_deref() {
        Some(host) if host == me => {
            if row.state.is_finished() {
                Step::HereToEnd
            } else {
                Step::Here
            }
        }
        // The asking host follows the row itself and asks where it went.
        _ if for_peer => Step::HereToEnd,
        Some(host) => Step::Host(host),
        None if row.state.is_finished() => Step::HereToEnd,
        None => Step::Here,
    }
}

/// The answer of another host being copied.
struct Remote {
    host: String,
    body: std::pin::Pin<Box<axum::body::BodyDataStream>>,
    /// Bytes of this answer seen so far.
    received: u64,
}

/// Follows a job's log: `next` gives its next part, `None` at its end.
pub struct JobLog {
    jobs: Arc<Jobs>,
    hosts: Arc<Hosts>,
    id: JobId,
    path: PathBuf,
    for_peer: bool,
    /// Read of the file here.
    offset: u64,
    remote: Option<Remote>,
    /// (host, bytes) copied of another host's log: a new request to it
    /// starts at its beginning, and this much of it is skipped.
    copied: Option<(String, u64)>,
    done: bool,
}

impl JobLog {
    /// Follows job `id`'s log; `for_peer`: another host asked (and
    /// decides itself where to read once this ends).
    pub fn new(jobs: Arc<Jobs>, hosts: Arc<Hosts>, id: JobId, for_peer: bool) -> JobLog {
        JobLog {
            path: jobs.log_path(&id),
            jobs,
            hosts,
            id,
            for_peer,
            offset: 0,
            remote: None,
            copied: None,
            done: false,
        }
    }

    /// The next part of the log; waits while the job may write more.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            if self.remote.is_some() {
                match self.copy().await {
                    Some(chunk) => return Some(chunk),
                    None => continue,
                }
            }
            // Look at the row before reading, so that lines written just
            // before the end are read in this round.
            let row = self.row().await;
            let me = self.hosts.name();
            match step(row.as_ref(), me, self.for_peer) {
                Step::Here => {
                    if let Some(chunk) = self.read_here().await {
                        return Some(chunk);
                    }
                }
                Step::HereToEnd => {
                    let chunk = self.read_here().await;
                    self.done = chunk.is_none();
                    return chunk;
                }
                Step::Host(host) => {
                    let finished = row.as_ref().is_some_and(|r| r.state.is_finished());
                    match self.connect(host).await {
                        Ok(true) => continue,
                        // Down: the fleet fails what it ran; wait for that.
                        Ok(false) if !finished => {}
                        Ok(false) => return self.end(Unreadable::Down(host.to_string())),
                        Err(why) => return self.end(why),
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ends the stream with a line saying why the rest is not here.
    fn end(&mut self, why: Unreadable) -> Option<Bytes> {
        self.done = true;
        Some(Bytes::from(format!("jetpack: {why}\n")))
    }

    /// The job's row now (`None`: gone). Owns what it reads: a `&self`
    /// held across an await would need `JobLog: Sync`, which the body of
    /// an answer being copied is not.
    fn row(&self) -> impl std::future::Future<Output = Option<JobRow>> + Send + 'static {
        let (jobs, id) = (self.jobs.clone(), self.id.clone());
        async move {
            tokio::task::spawn_blocking(move || jobs.get(id.as_str()))
                .await
                .ok()
                .and_then(Result::ok)
        }
    }

    /// Host `name` to send requests to, if it is up (see `row`).
    fn peer(&self, name: &str) -> impl std::future::Future<Output = Option<Peer>> + Send + 'static {
        let (hosts, name) = (self.hosts.clone(), name.to_string());
        async move {
            tokio::task::spawn_blocking(move || hosts.peer(&name))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
        }
    }

    async fn read_here(&mut self) -> Option<Bytes> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut buf = Vec::new();
        // No file yet: the job has written nothing here (yet).
        if let Ok(mut file) = tokio::fs::File::open(&self.path).await {
            if file
                .seek(std::io::SeekFrom::Start(self.offset))
                .await
                .is_ok()
            {
                let _ = file.take(CHUNK).read_to_end(&mut buf).await;
            }
        }
        self.offset += buf.len() as u64;
        (!buf.is_empty()).then(|| Bytes::from(buf))
    }

    /// Asks `host` for the log; `Ok(false)` when it is down or gone.
    async fn connect(&mut self, host: &str) -> Result<bool, Unreadable> {
        let Some(peer) = self.peer(host).await else {
            return Ok(false);
        };
        let answer =
            ask(&self.hosts, &self.id, &peer)
                .await
                .map_err(|source| Unreadable::Peer {
                    host: host.to_string(),
                    source,
                })?;
        if answer.status() != hyper::StatusCode::OK {
            return Err(Unreadable::Status {
                host: host.to_string(),
                status: answer.status().as_u16(),
            });
        }
        self.remote = Some(Remote {
            host: host.to_string(),
            body: Box::pin(axum::body::Body::new(answer.into_body()).into_data_stream()),
            received: 0,
        });
        Ok(true)
    }

    /// The next new part of the answer being copied; `None` once it has
    /// ended (or was dropped: see `QUIET`), when the row is read again.
    async fn copy(&mut self) -> Option<Bytes> {
        let remote = self.remote.as_mut()?;
        let next = tokio::time::timeout(QUIET, remote.body.next()).await;
        let chunk = match next {
            Ok(Some(Ok(chunk))) => chunk,
            // Its end, or cut off: the row says what now.
            Ok(None) => return self.ended_remote(None).await,
            Ok(Some(Err(e))) => return self.ended_remote(Some(e)).await,
            Err(_) => {
                if !self.still_there().await {
                    self.remote = None;
                }
                return None;
            }
        };
        let start = remote.received;
        remote.received += chunk.len() as u64;
        let copied = match &mut self.copied {
            Some((host, n)) if *host == remote.host => n,
            _ => &mut self.copied.insert((remote.host.clone(), 0)).1,
        };
        // What an earlier answer of the same host gave already is skipped.
        if remote.received <= *copied {
            return None;
        }
        let skip = (*copied).saturating_sub(start) as usize;
        *copied = remote.received;
        Some(chunk.slice(skip..))
    }

    /// After another host's answer ended (`cut`: with an error): the end
    /// of the log if the job has finished (that host read its log to the
    /// end, or the rest is lost and the last line says so), else nothing
    /// yet and the row decides where to read next (it went back to the
    /// queue, or elsewhere).
    async fn ended_remote(&mut self, cut: Option<axum::Error>) -> Option<Bytes> {
        let host = self.remote.take().map(|r| r.host).unwrap_or_default();
        if !self.row().await.is_none_or(|r| r.state.is_finished()) {
            tokio::time::sleep(POLL).await;
            return None;
        }
        match cut {
            Some(source) => self.end(Unreadable::Cut { host, source }),
            None => {
                self.done = true;
                None
            }
        }
    }

    /// Whether the host being copied from still has the job and is up.
    async fn still_there(&mut self) -> bool {
        let Some(host) = self.remote.as_ref().map(|r| r.host.clone()) else {
            return false;
        };
        let row = self.row().await;
        if step(row.as_ref(), self.hosts.name(), self.for_peer) != Step::Host(&host) {
            return false;
        }
        self.peer(&host).await.is_some()
    }
}

/// Asks `peer` for job `id`'s log, as this host (`hosts`).
async fn ask(
    hosts: &Hosts,
    id: &JobId,
    peer: &Peer,
) -> Result<hyper::Response<hyper::body::Incoming>, PeerError> {
    let req = hyper::Request::get(format!("/v1/jobs/{id}/log"))
        .header(hyper::header::ACCEPT, "text/plain")
        .body(axum::body::Body::empty())
        .map_err(|e| PeerError::Unreachable {
            host: peer.name.clone(),
            url: peer.api_url.clone(),
            why: e.to_string(),
        })?;
    peer.send(hosts.secret(), hosts.name(), req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobKind, JobState};

    fn row(host: Option<&str>, state: JobState) -> JobRow {
        JobRow {
            id: JobId::random(),
            kind: JobKind::Build,
            target: None,
            state,
            progress: 0.0,
            result: None,
            error: None,
            created_at: 0,
            started_at: None,
            finished_at: None,
            host: host.map(str::to_string),
            spec: None,
            affinity: None,
        }
    }

    #[test]
    fn a_follow_moves_to_the_host_that_took_the_job() {
        use JobState::*;
        // Waiting in the queue: here, where it may be taken.
        assert_eq!(step(Some(&row(None, Queued)), "h0", false), Step::Here);
        // Taken by h1 while h0 followed it: h1's log from now on, running
        // or finished.
        for state in [Queued, Running, Succeeded, Failed] {
            let taken = row(Some("h1"), state);
            assert_eq!(step(Some(&taken), "h0", false), Step::Host("h1"));
        }
        // This host's: here, to the end once it has finished.
        assert_eq!(
            step(Some(&row(Some("h0"), Running)), "h0", false),
            Step::Here
        );
        assert_eq!(
            step(Some(&row(Some("h0"), Failed)), "h0", false),
            Step::HereToEnd
        );
        // Cancelled while it waited, or gone: nothing more comes.
        assert_eq!(
            step(Some(&row(None, Cancelled)), "h0", false),
            Step::HereToEnd
        );
        assert_eq!(step(None, "h0", false), Step::HereToEnd);
    }

    #[test]
    fn a_follow_another_host_asked_for_never_goes_on() {
        use JobState::*;
        assert_eq!(
            step(Some(&row(Some("h1"), Running)), "h1", true),
            Step::Here
        );
        // Back in the queue or taken by a third host: the asking host
        // decides; this one ends what it has.
        for host in [None, Some("h2"), Some("h0")] {
            assert_eq!(
                step(Some(&row(host, Running)), "h1", true),
                Step::HereToEnd,
                "{host:?}"
            );
        }
    }
}
