//! Restart policies and their backoff, shared by the two kinds of
//! supervisor: a detached pod's (`process::supervise_detached`) and a
//! launched instance's (`launch::supervise`, which adds what a guest's
//! reboot means in `hypervisor`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// When a supervisor runs its command again (`--restart`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "&'static str")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure,
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown restart policy {0:?}: the known ones are no, on-failure, always")]
pub struct UnknownRestartPolicy(pub String);

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        }
    }

    /// Whether a run that ended, `failed` or not, is run again.
    pub fn restarts(self, failed: bool) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure => failed,
            RestartPolicy::Always => true,
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RestartPolicy {
    type Err = UnknownRestartPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            RestartPolicy::No,
            RestartPolicy::OnFailure,
            RestartPolicy::Always,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| UnknownRestartPolicy(s.to_string()))
    }
}

impl TryFrom<String> for RestartPolicy {
    type Error = UnknownRestartPolicy;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RestartPolicy> for &'static str {
    fn from(p: RestartPolicy) -> &'static str {
        p.as_str()
    }
}

/// Backoff between restarts: doubling from 1 s to 30 s, back to 1 s after
/// a run that lasted a minute, so a crash loop costs little and a service
/// that ran for a while comes back at once.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);
    const STEADY: Duration = Duration::from_secs(60);

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The wait before the next start, after a run of `ran`.
    pub fn after(&mut self, ran: Duration) -> Duration {
        if ran >= Self::STEADY {
            self.next = Self::FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_restart_as_named() {
        for (p, ok, failed) in [
            (RestartPolicy::No, false, false),
            (RestartPolicy::OnFailure, false, true),
            (RestartPolicy::Always, true, true),
        ] {
            assert_eq!(p.restarts(false), ok, "{p}");
            assert_eq!(p.restarts(true), failed, "{p}");
            assert_eq!(p.as_str().parse::<RestartPolicy>(), Ok(p));
        }
        assert!("sometimes".parse::<RestartPolicy>().is_err());
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_after_a_long_run() {
        let mut b = Backoff::new();
        let short = Duration::from_secs(1);
        let waits: Vec<u64> = (0..7).map(|_| b.after(short).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.after(Duration::from_secs(61)).as_secs(), 1);
    }
}
