//! The MDS's control socket: how the hosts that make and remove pods keep
//! its index current, and how `jetpack mds check` asks about it. One JSON
//! request per line, one JSON answer per line, on a Unix socket only root
//! can open (the MDS made it before it dropped its privileges).

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PodRecord;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Every pod at once.
    Replace {
        pods: Vec<PodRecord>,
    },
    /// One pod was made or started.
    Insert {
        pod: PodRecord,
    },
    /// The pod at this address is gone.
    Remove {
        address: Ipv4Addr,
    },
    Status,
}

/// What `status` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub user: String,
    pub uid: u32,
    pub address: SocketAddr,
    pub pods: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    Status(Status),
    Done { ok: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the MDS is not running (no answer on {path}: {source})")]
    NotRunning {
        path: String,
        source: std::io::Error,
    },
    #[error("talking to the MDS: {0}")]
    Io(#[from] std::io::Error),
    #[error("the MDS answered something else: {0}")]
    Protocol(String),
}

/// Sends `request` to the MDS at `socket` and reads its answer.
pub fn send(socket: &Path, request: &Request) -> Result<Answer, ControlError> {
    let stream = UnixStream::connect(socket).map_err(|source| ControlError::NotRunning {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line =
        serde_json::to_string(request).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push('\n');
    (&stream).write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| ControlError::Protocol(format!("{e}: {answer:?}")))
}
