//! What every listener shares: a gate that caps connections per source
//! address and in total (the excess is refused at accept, counted, and
//! logged once per interval), the split of the process's descriptors
//! between the API and the hangar so that neither can starve the other,
//! and the accept both listeners share (`accept.rs`: admission through the
//! gate, TCP_NODELAY, errors logged once per interval rather than per
//! attempt, a pause when out of descriptors), and the HTTP validators of
//! the listeners that serve files (`conditional.rs`).

mod accept;
pub mod conditional;
mod gate;
pub mod publish;

pub use accept::{Admitted, GatedListener};
pub use gate::{ConnGate, ConnPermit, Refusal};

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Descriptors kept for everything that is not a client connection:
/// the state database, blobs being written, job logs, pods' pipes.
const RESERVED_FDS: u64 = 64;

/// How many connections the API and the hangar may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub api: usize,
    pub hangar: usize,
}

/// Splits a descriptor limit: the API gets a quarter (at most 4096), a
/// reserve stays free (64 and a sixteenth), the hangar gets the rest,
/// since docked instances are the many. An explicit count wins.
pub fn budget(fd_limit: u64, api: Option<usize>, hangar: Option<usize>) -> Budget {
    let reserve = RESERVED_FDS + fd_limit / 16;
    let usable = fd_limit.saturating_sub(reserve).max(2);
    let api = api.unwrap_or_else(|| (usable / 4).clamp(1, 4096) as usize);
    let hangar = hangar.unwrap_or_else(|| (usable.saturating_sub(api as u64)).max(1) as usize);
    Budget { api, hangar }
}

/// Every docked instance (and every simulated one) holds a descriptor:
/// lifts the soft limit to the hard one, and the hard one, as root with
/// CAP_SYS_RESOURCE, to a million. Returns the soft limit then in force.
pub fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    // rlim_t is unsigned on Linux, signed on FreeBSD.
    let wanted = 1 << 20;
    let limit = if hard < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        wanted
    } else if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    #[allow(clippy::useless_conversion)]
    u64::try_from(limit).ok()
}

/// Counts events and says when one is worth a log line: the first at
/// once, then at most one per interval carrying how many were not logged.
pub struct Occasional {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Occasional {
    pub fn new(interval: Duration) -> Occasional {
        Occasional {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one event; Some(events not logged since the last line) when
    /// this one should be logged.
    pub fn tick(&self) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                state.1 += 1;
                None
            }
            _ => {
                let quiet = state.1;
                *state = (Some(now), 0);
                Some(quiet)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_a_reserve_and_gives_the_hangar_the_most() {
        let b = budget(256, None, None);
        assert_eq!(
            b,
            Budget {
                api: 44,
                hangar: 132
            }
        );
        assert!(b.api as u64 + b.hangar as u64 + RESERVED_FDS <= 256);
        let big = budget(1 << 20, None, None);
        assert_eq!(big.api, 4096);
        assert!(big.hangar > 900_000);
        assert_eq!(
            budget(256, Some(10), Some(20)),
            Budget {
                api: 10,
                hangar: 20
            }
        );
        let tiny = budget(8, None, None);
        assert!(tiny.api >= 1 && tiny.hangar >= 1);
    }

    #[test]
    fn occasional_logs_the_first_then_once_per_interval_with_a_count() {
        let o = Occasional::new(Duration::from_millis(200));
        assert_eq!(o.tick(), Some(0));
        for _ in 0..9 {
            assert_eq!(o.tick(), None);
        }
        // Wait on the condition (the interval passing), not a fixed sleep.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(n) = o.tick() {
                assert!(n >= 9, "{n}");
                break;
            }
            assert!(Instant::now() < deadline);
            std::thread::yield_now();
        }
    }
}
