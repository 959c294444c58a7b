//! Owns the rules of logging in, with no HTTP in them: a user name and
//! password tried from an address come to a `Verdict` (in, refused, or
//! throttled for so long); the API turns it into 200, 401 or 429.
//!
//! A credential in the users' cache of verified ones passes at once: it is
//! never throttled and never waits for bcrypt, whatever floods the server.
//! Anything else costs a bcrypt (about 60 ms at cost 10), which is what an
//! attacker with bad passwords would make the server spend, so:
//!
//! - Failures are throttled per source address (an IPv6 /64, which one
//!   site owns whole: `throttled_addr`) and per user name: token buckets of
//!   `server.login.failburst` refilled at `server.login.failrate` a second.
//!   A try takes a token from both before bcrypt runs and gets them back
//!   when it succeeds; with no token left the verdict is `Throttled` at
//!   once, without bcrypt. Known and unknown names are throttled alike and
//!   both cost one bcrypt, so neither the time nor a throttle tells who
//!   exists.
//! - bcrypt runs on a bounded pool (`server.login.workers` permits around
//!   spawn_blocking, half the cores by default), so verification can never
//!   take every core from the requests of users already in.
//! - Tries from an address or for a name that failed lately (its bucket is
//!   not full) are suspects: they queue for the pool one at a time behind
//!   the others, and at most `SUSPECTS_PER_WORKER` per worker wait
//!   (beyond, `Throttled` at once, their tokens given back: nothing was
//!   checked). Throttling alone leaves a flood from many addresses more tries a second than the
//!   pool can check, and a FIFO queue behind them would make an honest
//!   first login wait as long as the flood has lasted; this way it waits
//!   for at most the bcrypts running and one suspect.
//!
//! A correct password for a throttled user name is not checked from just
//! anywhere: checking it means running bcrypt for every try at that name,
//! which is exactly what the name's bucket exists to stop (a guesser
//! spread over many addresses would get unlimited guesses at one account).
//! But an address the name logged in from recently (`PROVEN_TTL`) is
//! exempt from the name's bucket (not from its own): anyone can empty a
//! name's bucket, only someone sharing the user's address can empty that
//! address's. So flooding a name cannot lock its user out of a session
//! already open (cached) nor from where they logged in before; it delays
//! their first login from a new place only while the flood lasts, and the
//! verdict says when to try again (the API's Retry-After).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::users::Users;
use crate::config::LoginLimits;
use crate::throttle::TokenBuckets;

/// Addresses and names remembered per throttle (full buckets are forgotten
/// first when there are more).
const MAX_KEYS: usize = 100_000;
/// How long a successful login exempts its (address, name) pair from the
/// name's bucket.
const PROVEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Pairs remembered; only a correct password makes one, so this bounds
/// honest use, not an attack.
const MAX_PROVEN: usize = 10_000;
/// Suspect tries that may wait for the pool, per worker.
const SUSPECTS_PER_WORKER: usize = 8;
/// A logged user name is cut to this many characters (a header can hold
/// kilobytes of one).
const LOGGED_NAME_CHARS: usize = 64;

/// A user name as throttled: its SHA-256, so that a client's long names
/// cost the map 32 bytes each.
type NameKey = [u8; 32];

/// What a try at logging in came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    In,
    /// Bad user or password.
    Refused,
    /// Too many failures from the address or for the name: try again then.
    Throttled(Duration),
}

/// The throttles of failed logins and the bcrypt pool.
pub struct Logins {
    rate: f64,
    burst: f64,
    by_addr: TokenBuckets<Option<IpAddr>>,
    by_name: TokenBuckets<NameKey>,
    /// (address, name) -> when it last logged in with a correct password.
    proven: Mutex<HashMap<(Option<IpAddr>, NameKey), Instant>>,
    pool: Pool,
}

/// The bcrypt workers, with suspects queued behind everyone else.
struct Pool {
    workers: Arc<Semaphore>,
    /// Held by the one suspect waiting for a worker.
    suspect_turn: Semaphore,
    suspects_waiting: AtomicUsize,
    max_suspects: usize,
}

/// Counts a waiting suspect for as long as it waits, even when its client
/// goes away and its future is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    fn new(workers: usize) -> Pool {
        Pool {
            workers: Arc::new(Semaphore::new(workers)),
            suspect_turn: Semaphore::new(1),
            suspects_waiting: AtomicUsize::new(0),
            max_suspects: workers.saturating_mul(SUSPECTS_PER_WORKER),
        }
    }

    /// A worker, or None when too many suspects wait already. The waits
    /// are async: a client that goes away leaves the queue with its
    /// future, costing nothing.
    async fn worker(&self, suspect: bool) -> Option<OwnedSemaphorePermit> {
        if !suspect {
            return self.workers.clone().acquire_owned().await.ok();
        }
        if self.suspects_waiting.fetch_add(1, Ordering::Relaxed) >= self.max_suspects {
            self.suspects_waiting.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let _waiting = Waiting(&self.suspects_waiting);
        // One suspect at a time in the workers' (FIFO) queue, so that a
        // try that is no suspect finds at most one ahead of it.
        let _turn = self.suspect_turn.acquire().await.ok()?;
        self.workers.clone().acquire_owned().await.ok()
    }
}

impl Logins {
    pub fn new(limits: &LoginLimits) -> Logins {
        let workers = limits
            .workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get() / 2)
                    .unwrap_or(1)
            })
            .max(1);
        // Said once at start, so that an operator tuning `server.login.*`
        // sees what is in force.
        tracing::info!(
            "logins: bcrypt on {workers} worker(s); failed logins allowed per address and per user name: {} at once, then {}/s (429 beyond)",
            limits.fail_burst,
            limits.fail_rate
        );
        Logins {
            rate: limits.fail_rate,
            burst: limits.fail_burst.max(1.0),
            by_addr: TokenBuckets::new(MAX_KEYS),
            by_name: TokenBuckets::new(MAX_KEYS),
            proven: Mutex::new(HashMap::new()),
            pool: Pool::new(workers),
        }
    }

    /// Checks `user` and `password` from `from` (see the module's doc).
    pub async fn check(
        &self,
        users: &Arc<Users>,
        from: Option<IpAddr>,
        user: &str,
        password: &str,
    ) -> Verdict {
        if users.cached(user, password) {
            return Verdict::In;
        }
        let name = name_key(user);
        let proven = self.is_proven(from, &name);
        let suspect = !self.by_addr.is_full(&from, self.rate, self.burst)
            || (!proven && !self.by_name.is_full(&name, self.rate, self.burst));
        if let Err(wait) = self.reserve(from, &name, proven, user) {
            return Verdict::Throttled(wait);
        }
        let Some(ok) = self.bcrypt(users, user, password, suspect).await else {
            // Not checked, so not a failure.
            self.give_back(from, &name, proven);
            return Verdict::Throttled(Duration::from_secs(1));
        };
        if !ok {
            return Verdict::Refused;
        }
        // A success is not a failure either.
        self.give_back(from, &name, proven);
        self.prove(from, name);
        Verdict::In
    }

    fn give_back(&self, from: Option<IpAddr>, name: &NameKey, proven: bool) {
        self.by_addr.give_back(&from, self.burst);
        if !proven {
            self.by_name.give_back(name, self.burst);
        }
    }

    /// Takes a token from the address's bucket and, unless the pair is
    /// proven, from the name's; both or neither.
    fn reserve(
        &self,
        from: Option<IpAddr>,
        name: &NameKey,
        proven: bool,
        user: &str,
    ) -> Result<(), Duration> {
        if let Err(refused) = self.by_addr.take(from, self.rate, self.burst) {
            if refused.first {
                tracing::warn!(
                    from = %shown_addr(from),
                    "too many failed logins from this address: answering 429 until it slows down"
                );
            }
            return Err(refused.retry_after);
        }
        if !proven {
            if let Err(refused) = self.by_name.take(*name, self.rate, self.burst) {
                self.by_addr.give_back(&from, self.burst);
                if refused.first {
                    tracing::warn!(
                        user = %shown_name(user),
                        from = %shown_addr(from),
                        "too many failed logins for this user name: answering 429 until it slows down"
                    );
                }
                return Err(refused.retry_after);
            }
        }
        Ok(())
    }

    /// bcrypt on the pool; None when the pool turned the try away.
    async fn bcrypt(
        &self,
        users: &Arc<Users>,
        user: &str,
        password: &str,
        suspect: bool,
    ) -> Option<bool> {
        let permit = self.pool.worker(suspect).await?;
        let (users, user, password) = (users.clone(), user.to_string(), password.to_string());
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            users.verify(&user, &password)
        })
        .await
        .unwrap_or(false);
        Some(ok)
    }

    fn is_proven(&self, from: Option<IpAddr>, name: &NameKey) -> bool {
        let proven = self.proven.lock().unwrap_or_else(|p| p.into_inner());
        proven
            .get(&(from, *name))
            .is_some_and(|at| at.elapsed() < PROVEN_TTL)
    }

    fn prove(&self, from: Option<IpAddr>, name: NameKey) {
        let mut proven = self.proven.lock().unwrap_or_else(|p| p.into_inner());
        if proven.len() >= MAX_PROVEN {
            proven.retain(|_, at| at.elapsed() < PROVEN_TTL);
            if proven.len() >= MAX_PROVEN {
                // Honest users only, and that many: forget the oldest half.
                let mut ages: Vec<Instant> = proven.values().copied().collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                proven.retain(|_, at| *at > cut);
            }
        }
        proven.insert((from, name), Instant::now());
    }
}

fn name_key(user: &str) -> NameKey {
    Sha256::digest(user.as_bytes()).into()
}

/// An address as throttled: IPv4 (an IPv4-mapped IPv6 address too), or
/// the /64 of an IPv6 one, since one site owns a /64 whole.
pub fn throttled_addr(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

pub fn shown_addr(from: Option<IpAddr>) -> String {
    from.map(|a| a.to_string())
        .unwrap_or_else(|| "an unknown address".into())
}

/// A client's user name as logged: cut short, quoted and escaped (Debug),
/// so that it cannot forge a log line even before the log writer's own
/// escaping.
pub fn shown_name(user: &str) -> String {
    let mut cut: String = user.chars().take(LOGGED_NAME_CHARS).collect();
    if cut.len() < user.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::users::Htpasswd;

    fn users(dir: &std::path::Path) -> Arc<Users> {
        let path = dir.join("htpasswd");
        let mut h = Htpasswd::default();
        h.set("alice", "wonderland").unwrap();
        h.save(&path).unwrap();
        Arc::new(Users::open(&path).unwrap())
    }

    /// A rate so slow that no token comes back while a test runs, however
    /// slow bcrypt is on the machine.
    fn logins(burst: f64) -> Logins {
        Logins::new(&LoginLimits {
            fail_rate: 0.001,
            fail_burst: burst,
            workers: Some(1),
        })
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[tokio::test]
    async fn failures_are_throttled_per_address_and_per_name() {
        let dir = tempfile::tempdir().unwrap();
        let users = users(dir.path());
        let l = logins(2.0);
        let a = ip("10.0.0.1");
        // Two failures from one address, each under a new name: the third
        // is refused without bcrypt, whatever the name.
        assert_eq!(l.check(&users, a, "x1", "bad").await, Verdict::Refused);
        assert_eq!(l.check(&users, a, "x2", "bad").await, Verdict::Refused);
        assert!(matches!(
            l.check(&users, a, "x3", "bad").await,
            Verdict::Throttled(w) if w > Duration::from_secs(900)
        ));
        // One name from new addresses each time: the same.
        assert_eq!(
            l.check(&users, ip("10.0.1.1"), "bob", "bad").await,
            Verdict::Refused
        );
        assert_eq!(
            l.check(&users, ip("10.0.1.2"), "bob", "bad").await,
            Verdict::Refused
        );
        assert!(matches!(
            l.check(&users, ip("10.0.1.3"), "bob", "bad").await,
            Verdict::Throttled(_)
        ));
        // The address of that last try was not charged for the refusal.
        assert_eq!(
            l.check(&users, ip("10.0.1.3"), "carol", "bad").await,
            Verdict::Refused
        );
        assert_eq!(
            l.check(&users, ip("10.0.1.3"), "carol", "bad").await,
            Verdict::Refused
        );
    }

    #[tokio::test]
    async fn a_good_login_gives_its_tokens_back() {
        let dir = tempfile::tempdir().unwrap();
        let users = users(dir.path());
        let l = logins(2.0);
        let a = ip("192.0.2.1");
        assert_eq!(l.check(&users, a, "alice", "wonderland").await, Verdict::In);
        assert_eq!(l.check(&users, a, "nobody", "x").await, Verdict::Refused);
        assert_eq!(l.check(&users, a, "nobody", "x").await, Verdict::Refused);
        assert!(matches!(
            l.check(&users, a, "nobody", "x").await,
            Verdict::Throttled(_)
        ));
    }

    #[tokio::test]
    async fn a_flood_on_a_name_locks_out_neither_cached_nor_proven_logins() {
        let dir = tempfile::tempdir().unwrap();
        let users = users(dir.path());
        let l = logins(2.0);
        let home = ip("192.0.2.1");
        let elsewhere = ip("198.51.100.7");
        assert_eq!(
            l.check(&users, home, "alice", "wonderland").await,
            Verdict::In
        );
        // Forget the cached credential (as 60 s or a changed file would).
        users.reload().unwrap();
        // Someone spread over many addresses empties alice's bucket.
        for n in 0..4 {
            let _ = l
                .check(&users, ip(&format!("203.0.113.{n}")), "alice", "guess")
                .await;
        }
        assert!(
            matches!(
                l.check(&users, elsewhere, "alice", "wonderland").await,
                Verdict::Throttled(_)
            ),
            "a correct password from a new place waits: no bcrypt for the name"
        );
        assert_eq!(
            l.check(&users, home, "alice", "wonderland").await,
            Verdict::In,
            "the address alice logged in from is exempt from the name's bucket"
        );
        assert_eq!(
            l.check(&users, elsewhere, "alice", "wonderland").await,
            Verdict::In,
            "a cached credential passes from anywhere"
        );
        assert_eq!(
            l.check(&users, home, "alice", "guess").await,
            Verdict::Refused,
            "a wrong password from the proven address is still refused"
        );
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn suspects_queue_behind_other_tries_and_are_bounded() {
        let pool = Arc::new(Pool::new(1));
        let busy = pool.worker(false).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, suspect) in [("s1", true), ("s2", true), ("honest", false)] {
            let (pool, order) = (pool.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let permit = pool.worker(suspect).await;
                order.lock().unwrap().push(name);
                drop(permit);
            }));
            settle().await;
        }
        drop(busy);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec!["s1", "honest", "s2"]);

        // At most 8 suspects per worker wait; one that goes away stops
        // counting.
        let busy = pool.worker(false).await.unwrap();
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.worker(true).await.is_some() })
            })
            .collect();
        settle().await;
        assert!(pool.worker(true).await.is_none(), "a ninth is turned away");
        for w in &waiting {
            w.abort();
        }
        settle().await;
        assert_eq!(pool.suspects_waiting.load(Ordering::Relaxed), 0);
        drop(busy);
        assert!(pool.worker(true).await.is_some());
    }

    #[test]
    fn logged_names_are_quoted_escaped_and_cut() {
        assert_eq!(shown_name("eve\n\x1b[31m"), r#""eve\n\u{1b}[31m""#);
        let long = shown_name(&"a".repeat(1000));
        assert!(long.len() < 80 && long.contains('…'), "{long}");
    }
}
