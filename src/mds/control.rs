//! The MDS's control socket: how the hosts that make and remove pods keep
//! its index current, how `jetpack mds check` asks about it, and how a
//! server decides whether an MDS it finds running may serve its pods (and
//! stops it when not). One JSON request per line, one JSON answer per line,
//! on a Unix socket only root can open (the MDS made it before it dropped
//! its privileges).

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

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
    /// What it counted of its requests (`counts.rs`), for `/metrics`.
    Figures,
    /// End the MDS: it answers, then stops serving and exits.
    Stop,
}

/// What `status` answers. The fields after `pods` came later: an older
/// MDS leaves them out, and reads as one that cannot be adopted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub user: String,
    pub uid: u32,
    pub address: SocketAddr,
    pub pods: usize,
    /// The MDS's process id, to signal it when it will not stop.
    #[serde(default)]
    pub pid: Option<u32>,
    /// `Keys::fingerprint` of the keys it serves with.
    #[serde(default)]
    pub keys: Option<String>,
    /// The server whose child it is and with which it ends (its pid);
    /// None when it was started on its own (its rc.d script, or by hand).
    #[serde(default)]
    pub started_by: Option<u32>,
}

impl Status {
    /// Whether a server whose keys have `fingerprint` may hand its pods
    /// to this MDS: only when it runs on its own (a server's MDS ends with
    /// that server, so it is not another's to keep) and serves with those
    /// very keys (else the tokens the server's pods get are refused).
    /// Err says why not, for the log.
    pub fn adoptable(&self, fingerprint: &str) -> Result<(), String> {
        if let Some(server) = self.started_by {
            return Err(format!(
                "it was started by another server (pid {server}) and ends with that one"
            ));
        }
        match &self.keys {
            None => Err(format!(
                "it does not say which keys it has (jetpack {})",
                self.version
            )),
            Some(keys) if keys != fingerprint => {
                Err("its keys are not the ones in jetpack.conf".into())
            }
            Some(_) => Ok(()),
        }
    }
}

/// What `figures` answers: counters since the MDS started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub answered: Vec<Answered>,
    pub refused: Vec<Refused>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    pub endpoint: String,
    pub code: u16,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    Status(Status),
    Figures(Figures),
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
    #[error("the MDS running{} would not stop: {reason}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Unstoppable { pid: Option<u32>, reason: String },
}

/// Sends `request` to the MDS at `socket` and reads its answer.
pub fn send(socket: &Path, request: &Request) -> Result<Answer, ControlError> {
    ask(socket, request, Duration::from_secs(5))
}

/// `send`, waiting at most `within` for each read and write (a scrape
/// must not hang on a stuck MDS).
pub fn ask(socket: &Path, request: &Request, within: Duration) -> Result<Answer, ControlError> {
    let stream = UnixStream::connect(socket).map_err(|source| ControlError::NotRunning {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(within))?;
    stream.set_write_timeout(Some(within))?;
    let mut line =
        serde_json::to_string(request).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push('\n');
    (&stream).write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| ControlError::Protocol(format!("{e}: {answer:?}")))
}

/// How long a stopping MDS may take to drain its connections and exit
/// before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Ends the MDS that answered `status` on `socket` and returns once it is
/// gone: asked on the socket, else sent SIGTERM, killed when it takes
/// longer than `STOP_GRACE`. A process it is not the parent of is gone
/// when it no longer exists (or is a zombie, whose parent has yet to reap
/// it); without a pid, when the socket no longer answers.
pub fn stop(socket: &Path, status: &Status) -> Result<(), ControlError> {
    use nix::sys::signal::Signal;
    let pid = status.pid.or_else(|| peer_pid(socket));
    let unstoppable = |reason: String| ControlError::Unstoppable { pid, reason };
    let asked = matches!(send(socket, &Request::Stop), Ok(Answer::Done { ok: true }));
    if !asked {
        // An older MDS knows no `stop`.
        let pid = pid.ok_or_else(|| {
            unstoppable("it knows no stop request and does not say its pid".into())
        })?;
        signal(pid, Signal::SIGTERM).map_err(|e| unstoppable(format!("SIGTERM: {e}")))?;
    }
    let gone = || match pid {
        Some(pid) => !alive(pid),
        None => matches!(
            send(socket, &Request::Status),
            Err(ControlError::NotRunning { .. })
        ),
    };
    if wait_until(STOP_GRACE, gone) {
        return Ok(());
    }
    let pid = pid.ok_or_else(|| unstoppable(format!("still answering after {STOP_GRACE:?}")))?;
    signal(pid, Signal::SIGKILL).map_err(|e| unstoppable(format!("SIGKILL: {e}")))?;
    if wait_until(Duration::from_secs(2), gone) {
        return Ok(());
    }
    Err(unstoppable("it outlived SIGKILL".into()))
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) -> Result<(), nix::errno::Errno> {
    let pid = i32::try_from(pid).map_err(|_| nix::errno::Errno::ESRCH)?;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
        // Gone already: what was wanted.
        Err(nix::errno::Errno::ESRCH) => Ok(()),
        other => other,
    }
}

/// Polls `done` until it holds or `within` has passed; whether it held.
fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` exists and has not ended: a zombie (ended, its
/// parent yet to reap it) holds no socket or port any more, so it counts
/// as ended.
pub fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        // EPERM: it exists, as someone we may not signal.
        Ok(()) | Err(nix::errno::Errno::EPERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

#[cfg(target_os = "linux")]
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat_state(&stat))
        .is_some_and(|state| state == 'Z' || state == 'X')
}

#[cfg(target_os = "freebsd")]
fn is_zombie(pid: u32) -> bool {
    let Ok(pid) = libc::c_int::try_from(pid) else {
        return false;
    };
    let mut mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, pid];
    // SAFETY: kinfo_proc is plain data (zeroes are a valid value), and
    // sysctl writes at most `len` bytes into it.
    unsafe {
        let mut info: libc::kinfo_proc = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::kinfo_proc>();
        libc::sysctl(
            mib.as_mut_ptr(),
            mib.len() as libc::c_uint,
            (&mut info as *mut libc::kinfo_proc).cast(),
            &mut len,
            std::ptr::null(),
            0,
        ) == 0
            && len > 0
            && info.ki_stat == libc::SZOMB
    }
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn is_zombie(_pid: u32) -> bool {
    false
}

/// The state letter of a /proc/PID/stat line: the field after the command
/// name, which is in parentheses and may itself hold spaces and parentheses.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn stat_state(stat: &str) -> Option<char> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// The pid of the process listening on `socket`, as the kernel knows it
/// (an MDS too old to report its own). Linux only.
#[cfg(target_os = "linux")]
fn peer_pid(socket: &Path) -> Option<u32> {
    let stream = UnixStream::connect(socket).ok()?;
    let creds =
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    u32::try_from(creds.pid()).ok().filter(|p| *p > 0)
}

#[cfg(not(target_os = "linux"))]
fn peer_pid(_socket: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(keys: Option<&str>, started_by: Option<u32>) -> Status {
        Status {
            version: "1.0.0".into(),
            user: "_jetpack".into(),
            uid: 101,
            address: "10.0.0.1:1104".parse().unwrap(),
            pods: 0,
            pid: Some(4242),
            keys: keys.map(str::to_string),
            started_by,
        }
    }

    #[test]
    fn only_an_mds_on_its_own_with_the_same_keys_is_adopted() {
        let ours = "00112233445566778899aabbccddeeff";
        assert_eq!(status(Some(ours), None).adoptable(ours), Ok(()));
        let other = status(Some("ffeeddccbbaa99887766554433221100"), None);
        assert!(other.adoptable(ours).unwrap_err().contains("keys"));
        let a_servers = status(Some(ours), Some(77)).adoptable(ours).unwrap_err();
        assert!(a_servers.contains("another server (pid 77)"), "{a_servers}");
        let unknown = status(None, None).adoptable(ours).unwrap_err();
        assert!(unknown.contains("which keys"), "{unknown}");
    }

    #[test]
    fn an_older_mds_status_reads_as_one_that_says_nothing_of_its_keys() {
        let old =
            r#"{"version":"0.9.0","user":"_jetpack","uid":101,"address":"10.0.0.1:1104","pods":3}"#;
        let Answer::Status(s) = serde_json::from_str(old).unwrap() else {
            panic!("a status");
        };
        assert_eq!((s.pid, s.keys, s.started_by), (None, None, None));
        let done: Answer = serde_json::from_str(r#"{"ok":true}"#).unwrap();
        assert!(matches!(done, Answer::Done { ok: true }));
        assert_eq!(
            serde_json::to_string(&Request::Stop).unwrap(),
            r#"{"op":"stop"}"#
        );
    }

    #[test]
    fn the_state_of_a_proc_stat_line() {
        assert_eq!(stat_state("123 (jetpack) S 1 123 123 0"), Some('S'));
        assert_eq!(stat_state("9 (a) b) (c) Z 1 2"), Some('Z'));
        assert_eq!(stat_state("9 (x y"), None);
        assert_eq!(stat_state(""), None);
    }

    #[test]
    fn a_process_is_alive_until_it_ends_and_not_as_a_zombie() {
        assert!(alive(std::process::id()));
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        assert!(alive(child.id()));
        child.kill().unwrap();
        // Not reaped yet: a zombie, ended all the same.
        assert!(wait_until(Duration::from_secs(5), || !alive(child.id())));
        child.wait().unwrap();
        assert!(!alive(child.id()));
        assert!(!alive(u32::MAX));
    }
}
